// The node type operation (kNodeTypeOperation): makes, scales, restarts,
// reimages, deletes and rolls out a node type's nodes through a node driver,
// and the automatic OS upgrade controller that starts its rollouts
// (doc/servicefabric.md). The rollout itself is the fleet layer's engine
// (fleet/rollout.h) over a NodeSet, one upgrade domain per batch.
#include <cstdio>
#include <set>

#include "api/arm_error.h"
#include "api/etag.h"
#include "api/image_export.h"
#include "api/provider_util.h"
#include "api/sf_internal.h"
#include "api/template_internal.h"
#include "base/data_dir.h"
#include "base/sha256.h"
#include "base/strings.h"
#include "builder/distribute.h"
#include "fleet/node_driver.h"
#include "fleet/node_set.h"
#include "fleet/regional_disks.h"
#include "gallery/names.h"
#include "gallery/resources.h"
#include "store/store.h"

namespace imagesmith::api::sf {

Json& Ext(meta::Resource& r) {
  Json* e = r.properties.Find("imagesmith");
  if (e == nullptr || !e->is_object()) return r.properties.Set("imagesmith", Json::MakeObject());
  return *e;
}
const Json* ExtFind(const meta::Resource& r, std::string_view key) {
  const Json* e = r.properties.Find("imagesmith");
  return e != nullptr && e->is_object() ? e->Find(key) : nullptr;
}
std::string ExtString(const meta::Resource& r, std::string_view key) {
  const Json* v = ExtFind(r, key);
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

StatusOr<ImageKind> ClassifyImage(const ResourceId& id, const std::string& path) {
  if (id.kind() == ResourceId::Kind::kResource) {
    if (id.IsType(gallery::kManagedImageType)) return ImageKind::kManagedImage;
    if (id.IsType(gallery::kImageDefinitionType)) return ImageKind::kDefinition;
    if (id.IsType(gallery::kImageVersionType)) return ImageKind::kVersion;
  }
  return InvalidArgumentError(path + ": " + id.ToString() +
                              " is not a managed image (Microsoft.Compute/images), a gallery "
                              "image definition (Microsoft.Compute/galleries/images) or a gallery "
                              "image version (Microsoft.Compute/galleries/images/versions)");
}

StatusOr<std::string> ResolveNodeImage(meta::Transaction& txn, const ResourceId& image_ref,
                                       const std::string& region) {
  ASSIGN_OR_RETURN(ImageKind kind, ClassifyImage(image_ref, "vmImageResourceId"));
  ASSIGN_OR_RETURN(Region where, Region::Parse(region));
  switch (kind) {
    case ImageKind::kManagedImage:
      RETURN_IF_ERROR(gallery::GetManagedImage(txn, image_ref).status());
      return image_ref.ToString();
    case ImageKind::kDefinition: {
      ASSIGN_OR_RETURN(meta::Resource v, gallery::ResolveLatestVersion(txn, image_ref, where));
      return v.id.ToString();
    }
    case ImageKind::kVersion: {
      ASSIGN_OR_RETURN(meta::Resource v, gallery::GetVersion(txn, image_ref));
      ASSIGN_OR_RETURN(gallery::VersionRecord rec, gallery::VersionRecord::FromResource(v));
      const gallery::ReplicaStatus* replica = rec.Replica(where);
      if (replica == nullptr || replica->state != gallery::ReplicaState::kCompleted) {
        return FailedPreconditionError("the image version " + image_ref.ToString() +
                                       " is not replicated to " + region +
                                       " (the cluster's region); add it to the version's target "
                                       "regions");
      }
      return v.id.ToString();
    }
  }
  return InternalError("unreachable");
}

namespace {

std::string Input(const Operation& op, const char* key) {
  const Json* v = op.input.Find(key);
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

int64_t IntProp(const meta::Resource& r, const char* key, int64_t def) {
  const Json* v = r.properties.Find(key);
  return v != nullptr ? v->AsInt64().value_or(def) : def;
}

// A node of the node type, as its record keeps it.
struct NodeRecord {
  std::string id;
  int index = 0;
  std::string image;
  Json runtime;
};

std::vector<NodeRecord> Nodes(const meta::Resource& r) {
  std::vector<NodeRecord> out;
  const Json* nodes = ExtFind(r, "nodes");
  if (nodes == nullptr || !nodes->is_array()) return out;
  for (const Json& n : nodes->array_items()) {
    NodeRecord rec;
    if (const Json* v = n.Find("id"); v != nullptr && v->is_string()) rec.id = v->string_value();
    if (const Json* v = n.Find("index"); v != nullptr)
      rec.index = static_cast<int>(v->AsInt64().value_or(0));
    if (const Json* v = n.Find("image"); v != nullptr && v->is_string())
      rec.image = v->string_value();
    if (const Json* v = n.Find("runtime"); v != nullptr) rec.runtime = *v;
    out.push_back(rec);
  }
  return out;
}

Json NodesJson(const std::vector<NodeRecord>& nodes) {
  Json arr = Json::MakeArray();
  for (const NodeRecord& n : nodes) {
    Json o = Json::MakeObject();
    o.Set("id", Json::String(n.id));
    o.Set("index", Json::Int(n.index));
    o.Set("upgradeDomain", Json::Int(n.index % kUpgradeDomains));
    o.Set("image", Json::String(n.image));
    o.Set("runtime", n.runtime);
    arr.Append(o);
  }
  return arr;
}

uint64_t Fnv(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= static_cast<unsigned char>(std::tolower(c));
    h *= 1099511628211ull;
  }
  return h;
}

std::string NodeId(const ResourceId& nt, int index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "sf%08llx-%d",
                static_cast<unsigned long long>(Fnv(nt.ToString()) & 0xffffffffull), index);
  return buf;
}

std::string Mac(const std::string& node_id) {
  uint64_t h = Fnv(node_id);
  char buf[32];
  std::snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x", static_cast<unsigned>((h >> 16) & 0xff),
                static_cast<unsigned>((h >> 8) & 0xff), static_cast<unsigned>(h & 0xff));
  return buf;
}

// Everything one run of the operation needs about its node type.
class Fleet {
 public:
  Fleet(Services& s, const meta::Resource& nt) : s_(s), nt_(nt) {}

  Status Open() {
    driver_name_ = ExtString(nt_, "nodeDriver");
    if (driver_name_ == "sim") {
      ASSIGN_OR_RETURN(fleet::SimSettings settings, fleet::SimSettings::ParseEnv());
      driver_ = fleet::MakeSimDriver(*s_.env, std::move(settings));
    } else {
      driver_ =
          fleet::MakeQemuDriver(*s_.env, s_.data_dir + "/fleet", VmAccelCacheFile(s_.data_dir));
    }
    auto size = fleet::LookupVmSize(nt_.properties.Find("vmSize") != nullptr
                                        ? nt_.properties.Find("vmSize")->string_value()
                                        : "Standard_D2s_v3");
    RETURN_IF_ERROR(size.status());
    size_ = *size;
    nodes_ = Nodes(nt_);
    for (const NodeRecord& n : nodes_) {
      ASSIGN_OR_RETURN(fleet::NodeSpec spec, Spec(n.index, n.image));
      auto runtime = fleet::NodeRuntime::FromJson(n.runtime);
      // A node whose machine is gone shows as unhealthy; the rollout and the
      // provisioning deal with it.
      if (runtime.ok()) (void)driver_->Adopt(spec, *runtime);
    }
    return Status::Ok();
  }

  StatusOr<fleet::NodeImage> ImageFor(const std::string& image_id) {
    fleet::NodeImage out;
    out.image_id = image_id;
    if (driver_name_ == "sim") return out;
    // qemu: the version's regional disk in the node type's region.
    Caller owner;
    owner.principal.is_owner = true;
    ASSIGN_OR_RETURN(ResourceId rid, ResourceId::Parse(image_id));
    ASSIGN_OR_RETURN(gallery::SourceImage src, ResolveExportImage(s_, owner, rid, nt_.location));
    out.uefi = src.hyper_v_generation == "V2";
    ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store,
                     store::Store::Open(*s_.env, s_.data_dir + "/store"));
    fleet::RegionalDisks disks(*s_.env, s_.data_dir + "/fleet");
    ASSIGN_OR_RETURN(
        out.disk, disks.Acquire(image_id, nt_.location, DiskUser(), [&](const std::string& path) {
          return build::ExportStoredImage(*s_.env, *store, src.region, src.image,
                                          disk::DiskFormat::kRaw, path, nullptr);
        }));
    return out;
  }

  // The name the node type's regional disks count it by: one user per node
  // type (not per node), so each image's disk is acquired once.
  std::string DiskUser() const {
    char user[32];
    std::snprintf(user, sizeof user, "nt%08llx",
                  static_cast<unsigned long long>(Fnv(nt_.id.ToString()) & 0xffffffffull));
    return user;
  }

  // Lets go of the regional disks of every image the node type holds except
  // those in `keep` (when the last user goes, the disk is removed). Used
  // after a rollout (the old image's disk) and on delete (all of them).
  Status ReleaseDisks(const std::set<std::string>& keep) {
    if (driver_name_ == "sim") return Status::Ok();
    fleet::RegionalDisks disks(*s_.env, s_.data_dir + "/fleet");
    ASSIGN_OR_RETURN(std::vector<fleet::RegionalDisks::Held> held, disks.HeldBy(DiskUser()));
    for (const fleet::RegionalDisks::Held& h : held) {
      bool kept = false;
      for (const std::string& k : keep) kept = kept || EqualsIgnoreCase(k, h.image_id);
      if (!kept) RETURN_IF_ERROR(disks.Release(h.image_id, h.region, DiskUser()));
    }
    return Status::Ok();
  }

  // The images the node type's nodes run.
  std::set<std::string> ImagesInUse() const {
    std::set<std::string> out;
    for (const NodeRecord& n : nodes_) out.insert(n.image);
    return out;
  }

  // Deletes a node's machine and its work directory.
  Status DeleteNode(const std::string& id) {
    RETURN_IF_ERROR(driver_->Delete(id));
    return s_.env->RemoveAll(s_.data_dir + "/fleet/nodes/" + id);
  }

  StatusOr<fleet::NodeSpec> Spec(int index, const std::string& image_id) {
    fleet::NodeSpec spec;
    spec.node_id = NodeId(nt_.id, index);
    spec.hostname = nt_.id.name() + "00000" + std::to_string(index);
    spec.mac = Mac(spec.node_id);
    if (driver_name_ == "sim") {
      spec.image.image_id = image_id;
    } else {
      ASSIGN_OR_RETURN(spec.image, ImageFor(image_id));
    }
    spec.size = size_;
    spec.data_disk_gb = IntProp(nt_, "dataDiskSizeGB", 0);
    spec.work_dir = s_.data_dir + "/fleet/nodes/" + spec.node_id;
    RETURN_IF_ERROR(s_.env->CreateDirs(spec.work_dir));
    return spec;
  }

  // Waits until every node in `ids` is Ready; FailedPrecondition naming the
  // nodes that are not after `deadline_us`.
  Status WaitReady(const std::vector<std::string>& ids, int64_t deadline_us,
                   const std::atomic<bool>& cancel) {
    const int64_t end = s_.env->NowMicros() + deadline_us;
    while (true) {
      std::string not_ready;
      for (const std::string& id : ids) {
        fleet::NodeObservation o = driver_->Observe(id);
        if (o.machine != fleet::NodeObservation::Machine::kReady) {
          not_ready += (not_ready.empty() ? "" : ", ") + id +
                       (o.detail.empty() ? "" : " (" + o.detail + ")");
        }
      }
      if (not_ready.empty()) return Status::Ok();
      if (cancel.load()) return CancelledError("cancelled while nodes were starting");
      if (s_.env->NowMicros() > end) {
        return FailedPreconditionError("nodes not ready after " +
                                       fleet::FormatIsoDuration(deadline_us) + ": " + not_ready);
      }
      s_.env->SleepFor(std::chrono::milliseconds(250));
    }
  }

  Status SaveNodes() {
    return s_.meta->Update([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource r, txn.Get(nt_.id));
      for (NodeRecord& n : nodes_) {
        auto rt = driver_->Runtime(n.id);
        if (rt.ok()) n.runtime = rt->ToJson();
      }
      Ext(r).Set("nodes", NodesJson(nodes_));
      return txn.Replace(r);
    });
  }

  fleet::NodeDriver& driver() { return *driver_; }
  std::vector<NodeRecord>& nodes() { return nodes_; }
  const meta::Resource& nt() const { return nt_; }

 private:
  Services& s_;
  meta::Resource nt_;
  std::string driver_name_;
  std::unique_ptr<fleet::NodeDriver> driver_;
  fleet::VmSize size_;
  std::vector<NodeRecord> nodes_;
};

constexpr int64_t kReadyDeadlineUs = 15LL * 60 * 1'000'000;

OperationOutcome Failed(const std::string& code, const Status& why) {
  OperationOutcome out;
  out.status =
      why.code() == StatusCode::kCancelled ? OperationStatus::kCanceled : OperationStatus::kFailed;
  ArmError e = ToArmError(why);
  if (!code.empty()) e.code = code;
  out.error = e;
  return out;
}

Status SetState(Services& s, const ResourceId& id, const std::string& state) {
  return s.meta->Update([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
    r.properties.Set("provisioningState", Json::String(state));
    RETURN_IF_ERROR(txn.Replace(r));
    if (state != "Succeeded") return Status::Ok();
    const Json* primary = r.properties.Find("isPrimary");
    if (primary == nullptr || !primary->is_bool() || !primary->bool_value()) return Status::Ok();
    ASSIGN_OR_RETURN(meta::Resource cluster, txn.Get(id.Parent()));
    cluster.properties.Set("clusterState", Json::String("Ready"));
    return txn.Replace(cluster);
  });
}

OperationOutcome Provision(OperationContext& ctx, Fleet& f) {
  Services& s = ctx.services();
  const int64_t desired = IntProp(f.nt(), "vmInstanceCount", 0);
  const std::string image = ExtString(f.nt(), "currentImage");
  std::vector<NodeRecord> keep;
  for (const NodeRecord& n : f.nodes()) {
    if (n.index < desired) {
      keep.push_back(n);
    } else if (Status d = f.DeleteNode(n.id); !d.ok()) {
      return Failed("NodeDeleteFailed", d);
    }
  }
  std::vector<std::string> made;
  std::vector<NodeRecord> all;
  for (int i = 0; i < desired; ++i) {
    auto it =
        std::find_if(keep.begin(), keep.end(), [&](const NodeRecord& n) { return n.index == i; });
    if (it != keep.end()) {
      all.push_back(*it);
      continue;
    }
    auto spec = f.Spec(i, image);
    if (!spec.ok()) return Failed("ImageNotAvailable", spec.status());
    auto runtime = f.driver().Create(*spec);
    if (!runtime.ok()) return Failed("NodeCreateFailed", runtime.status());
    NodeRecord rec{spec->node_id, i, image, runtime->ToJson()};
    all.push_back(rec);
    made.push_back(rec.id);
    ctx.Line(ProgressKind::kStatus, "node " + rec.id + " created");
  }
  f.nodes() = all;
  if (Status st = f.SaveNodes(); !st.ok()) return Failed("", st);
  if (Status w = f.WaitReady(made, kReadyDeadlineUs, ctx.cancel()); !w.ok()) {
    (void)SetState(s, f.nt().id, "Failed");
    return Failed("NodesNotReady", w);
  }
  if (Status st = SetState(s, f.nt().id, "Succeeded"); !st.ok()) return Failed("", st);
  OperationOutcome out;
  out.result.Set("vmInstanceCount", Json::Int(desired));
  out.result.Set("nodesCreated", Json::Int(static_cast<int64_t>(made.size())));
  return out;
}

// restart / reimage: one upgrade domain at a time, waiting for each.
OperationOutcome RestartOrReimage(OperationContext& ctx, Fleet& f, bool reimage) {
  std::vector<std::string> only;
  if (const Json* n = ctx.operation().input.Find("nodes"); n != nullptr && n->is_array()) {
    for (const Json& x : n->array_items()) {
      if (x.is_string()) only.push_back(x.string_value());
    }
  }
  int done = 0;
  for (int d = 0; d < kUpgradeDomains; ++d) {
    std::vector<std::string> ids;
    for (NodeRecord& n : f.nodes()) {
      if (n.index % kUpgradeDomains != d) continue;
      if (!only.empty() && std::find(only.begin(), only.end(), n.id) == only.end()) continue;
      Status st;
      if (reimage) {
        auto image = f.Spec(n.index, n.image);
        st = image.ok() ? f.driver().Reimage(n.id, image->image) : image.status();
      } else {
        st = f.driver().Reboot(n.id);
      }
      if (!st.ok()) return Failed(reimage ? "ReimageFailed" : "RestartFailed", st);
      ids.push_back(n.id);
    }
    if (ids.empty()) continue;
    ctx.Line(ProgressKind::kStatus, std::string(reimage ? "reimaging" : "restarting") +
                                        " upgrade domain " + std::to_string(d));
    if (Status w = f.WaitReady(ids, kReadyDeadlineUs, ctx.cancel()); !w.ok()) {
      (void)f.SaveNodes();
      return Failed("NodesNotReady", w);
    }
    done += static_cast<int>(ids.size());
  }
  if (Status st = f.SaveNodes(); !st.ok()) return Failed("", st);
  OperationOutcome out;
  out.result.Set(reimage ? "reimaged" : "restarted", Json::Int(done));
  return out;
}

OperationOutcome DeleteNodes(OperationContext& ctx, Fleet& f) {
  Services& s = ctx.services();
  for (const NodeRecord& n : f.nodes()) {
    if (Status d = f.DeleteNode(n.id); !d.ok()) return Failed("NodeDeleteFailed", d);
  }
  // The regional disks go with their last user (doc/servicefabric.md).
  if (Status d = f.ReleaseDisks({}); !d.ok()) return Failed("NodeDeleteFailed", d);
  Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
    RETURN_IF_ERROR(txn.Delete(f.nt().id));
    ASSIGN_OR_RETURN(std::vector<meta::Resource> left,
                     txn.ListChildren(f.nt().id.Parent(), kNodeTypeType));
    if (!left.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(meta::Resource cluster, txn.Get(f.nt().id.Parent()));
    cluster.properties.Set("clusterState", Json::String("WaitingForNodes"));
    return txn.Replace(cluster);
  });
  if (!st.ok()) return Failed("", st);
  return OperationOutcome{};
}

OperationOutcome RollOut(OperationContext& ctx, Fleet& f) {
  Services& s = ctx.services();
  const Operation& op = ctx.operation();
  const std::string target = Input(op, "targetImage");
  const std::string started_by = Input(op, "startedBy");
  const Json* pj = ExtFind(f.nt(), "rollingUpgradePolicy");
  auto policy = fleet::UpgradePolicy::FromJson(pj, nullptr, "properties.imagesmith");
  if (!policy.ok()) return Failed("", policy.status());
  policy->batch_by_upgrade_domain = true;

  std::map<std::string, int> domain;
  for (const NodeRecord& n : f.nodes()) domain[n.id] = n.index % kUpgradeDomains;
  fleet::NodeSetOptions opts;
  opts.resolve_image = [&](const std::string& image) -> StatusOr<fleet::NodeImage> {
    return f.ImageFor(image);
  };
  opts.image_exists = [&](const std::string& image) {
    auto id = ResourceId::Parse(image);
    if (!id.ok()) return false;
    bool exists = false;
    Status st = s.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(exists, txn.Exists(*id));
      return Status::Ok();
    });
    return !st.ok() || exists;  // a database hiccup is not a deleted image
  };
  opts.upgrade_domain = [&](const std::string& id) {
    auto it = domain.find(id);
    return it == domain.end() ? 0 : it->second;
  };
  opts.health_command = ExtString(f.nt(), "healthCommand");
  opts.health_dir = s.data_dir + "/fleet/health";
  (void)s.env->CreateDirs(opts.health_dir);
  fleet::NodeSet set(*s.env, f.driver(), opts);
  for (const NodeRecord& n : f.nodes()) set.Add(n.id, n.image);

  // The target's regional disk is made before the first batch, so that a
  // batch's health deadline is the nodes' boot and not the disk's export.
  // (An error here shows again, and is handled, where the rollout needs it.)
  if (ExtString(f.nt(), "nodeDriver") != "sim") {
    ctx.Line(ProgressKind::kStatus, "preparing the regional disk of " + target);
    (void)f.ImageFor(target);
  }
  auto begun = fleet::Rollout::Begin(set, op.id, target, *policy, s.env->NowMicros());
  fleet::RolloutState state;
  if (begun.ok()) {
    state = *begun;
  } else {
    // The target cannot be booted (deleted before the rollout began): a
    // Faulted rollout in the history, as the engine would record it.
    state.id = op.id;
    state.target_image = target;
    state.policy = *policy;
    state.start_us = state.end_us = s.env->NowMicros();
    state.status = fleet::RunningStatus::kFaulted;
    state.error_code = "TargetImageDeleted";
    state.error_message = begun.status().message();
  }
  state.started_by = started_by.empty() ? "User" : started_by;

  auto save = [&](bool final) {
    return s.meta->Update([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource r, txn.Get(f.nt().id));
      Ext(r).Set("rollout", state.ToJson(/*resumable=*/true));
      for (NodeRecord& n : f.nodes()) {
        auto it = set.images().find(n.id);
        if (it != set.images().end()) n.image = it->second;
        auto rt = f.driver().Runtime(n.id);
        if (rt.ok()) n.runtime = rt->ToJson();
      }
      Ext(r).Set("nodes", NodesJson(f.nodes()));
      if (final) {
        Json history = ExtFind(r, "rolloutHistory") != nullptr ? *ExtFind(r, "rolloutHistory")
                                                               : Json::MakeArray();
        fleet::RecordHistory(history, state);
        Ext(r).Set("rolloutHistory", history);
        if (state.status == fleet::RunningStatus::kCompleted) {
          Ext(r).Set("currentImage", Json::String(state.target_image));
        }
        if (state.started_by == "Platform") {
          Json au = ExtFind(r, "autoUpgrade") != nullptr ? *ExtFind(r, "autoUpgrade")
                                                         : Json::MakeObject();
          bool ok = state.status == fleet::RunningStatus::kCompleted;
          au.Set("result", Json::String(std::string(fleet::RunningStatusName(state.status))));
          au.Set("nextRetryUs", Json::Int(ok ? 0 : state.end_us + kAutoUpgradeRetryUs));
          Ext(r).Set("autoUpgrade", au);
        }
      }
      return txn.Replace(r);
    });
  };
  bool cancelled = false;
  while (!state.done()) {
    if (ctx.cancel().load() && !cancelled) {
      fleet::Rollout::Cancel(state, s.env->NowMicros());
      cancelled = true;
      break;
    }
    Status st = fleet::Rollout::Step(set, state, s.env->NowMicros());
    if (!st.ok()) ctx.Line(ProgressKind::kLog, "rollout step: " + st.message());
    if (Status sv = save(false); !sv.ok()) return Failed("", sv);
    if (!state.waiting.empty()) ctx.Line(ProgressKind::kStatus, state.waiting);
    if (!state.done()) s.env->SleepFor(std::chrono::milliseconds(500));
  }
  if (Status sv = save(true); !sv.ok()) return Failed("", sv);
  // Disks of images no node runs any more (the old image after a completed
  // rollout, the target after a rollback) are let go.
  if (Status r = f.ReleaseDisks(f.ImagesInUse()); !r.ok()) {
    ctx.Line(ProgressKind::kLog, "releasing regional disks: " + r.message());
  }
  OperationOutcome out;
  out.result = state.ToJson();
  if (state.status == fleet::RunningStatus::kCompleted) return out;
  if (state.status == fleet::RunningStatus::kCancelled) {
    out.status = OperationStatus::kCanceled;
    out.error = ArmError{409, "OperationCanceled", "the rollout was cancelled", "", {}};
    return out;
  }
  out.status = OperationStatus::kFailed;
  out.error = ArmError{409,
                       state.error_code.empty() ? "RollingUpgradeFaulted" : state.error_code,
                       state.error_message,
                       f.nt().id.ToString(),
                       {}};
  return out;
}

class NodeTypeHandler final : public OperationHandler {
 public:
  std::string_view Type() const override { return kNodeTypeOperation; }

  OperationOutcome Run(OperationContext& ctx) override {
    Services& s = ctx.services();
    const Operation& op = ctx.operation();
    std::optional<meta::Resource> nt;
    Status st = s.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(nt, txn.Get(op.target));
      return Status::Ok();
    });
    if (!st.ok()) return Failed("", st);
    Fleet f(s, *nt);
    if (Status o = f.Open(); !o.ok()) return Failed("NodeDriverUnavailable", o);
    const std::string kind = Input(op, "kind");
    if (kind == "provision") return Provision(ctx, f);
    if (kind == "rollout") return RollOut(ctx, f);
    if (kind == "restart") return RestartOrReimage(ctx, f, false);
    if (kind == "reimage") return RestartOrReimage(ctx, f, true);
    if (kind == "delete") return DeleteNodes(ctx, f);
    return Failed("", InvalidArgumentError("unknown node type operation " + kind));
  }

  // Every kind is idempotent from the node records: a new worker starts again.
  bool Resumable(const Operation&) const override { return true; }
};

bool Busy(meta::Transaction& txn, const meta::Resource& r, int64_t now_us) {
  const std::string op_id = ExtString(r, "operationId");
  if (op_id.empty()) return false;
  auto row = txn.GetOperation(op_id);
  if (!row.ok()) return false;
  Operation op = OperationFromRow(*row);
  return !op.done() && !Operations::Abandoned(op, now_us);
}

}  // namespace

Json NodeTypeJson(const meta::Resource& r) {
  Json j = r.ToJson();
  Json props = r.properties;
  if (Json* ext = props.Find("imagesmith"); ext != nullptr && ext->is_object()) {
    if (Json* ro = ext->Find("rollout"); ro != nullptr && !ro->is_null()) {
      auto state = fleet::RolloutState::FromJson(*ro);
      if (state.ok()) *ro = state->ToJson();
    }
  }
  j.Set("properties", props);
  return j;
}

StatusOr<Operation> StartNodeTypeOperation(Services& services, meta::Transaction& txn,
                                           meta::Resource& node_type, const std::string& kind,
                                           const Json& extra, bool held) {
  if (Busy(txn, node_type, services.env->NowMicros())) {
    return ArmStatus(StatusCode::kAborted, "Conflict",
                     "the node type " + node_type.id.name() + " is busy: operation " +
                         ExtString(node_type, "operationId") +
                         " is in progress (see 'imagesmith operation show')",
                     node_type.id.ToString());
  }
  Json input = extra.is_object() ? extra : Json::MakeObject();
  input.Set("kind", Json::String(kind));
  ASSIGN_OR_RETURN(Operation op, services.operations->StartIn(txn, kNodeTypeOperation, node_type.id,
                                                              node_type.location, input, held));
  Ext(node_type).Set("operationId", Json::String(op.id));
  RETURN_IF_ERROR(txn.Replace(node_type));
  return op;
}

StatusOr<Response> FinishNodeTypeOperation(Services& services, const Request& request,
                                           const Operation& op, const ResourceId& node_type) {
  Response resp;
  resp.operation_id = op.id;
  if (!request.wait) {
    resp.http_status = 202;
    resp.body = op.ToJson();
    return resp;
  }
  ASSIGN_OR_RETURN(Operation done,
                   services.operations->Execute(op.id, request.progress, request.interrupt));
  bool exists = false;
  RETURN_IF_TXN_ERROR(services.meta->Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(exists, txn.Exists(node_type));
    if (!exists) return Status::Ok();
    ASSIGN_OR_RETURN(meta::Resource r, txn.Get(node_type));
    resp.body = NodeTypeJson(r);
    resp.etag = EtagOf(r);
    return Status::Ok();
  }));
  RETURN_IF_ERROR(done.Outcome(node_type.ToString()));
  return resp;
}

StatusOr<Json> RunAutoOsUpgrade(Services& services, const Request& request,
                                const ResourceId& cluster) {
  std::vector<meta::Resource> node_types;
  bool enabled = false;
  RETURN_IF_TXN_ERROR(services.meta->Read([&](meta::Transaction& txn) -> Status {
    RETURN_IF_ERROR(Allow(txn, request, "Microsoft.ServiceFabric/managedClusters/write", cluster));
    ASSIGN_OR_RETURN(meta::Resource c, txn.Get(cluster));
    const Json* e = c.properties.Find("enableAutoOSUpgrade");
    enabled = e != nullptr && e->is_bool() && e->bool_value();
    ASSIGN_OR_RETURN(node_types, txn.ListChildren(cluster, kNodeTypeType));
    return Status::Ok();
  }));
  Json result = Json::MakeObject();
  Json entries = Json::MakeArray();
  for (const meta::Resource& listed : node_types) {
    Json entry = Json::MakeObject();
    entry.Set("name", Json::String(listed.id.name()));
    std::string action = "None", detail;
    std::optional<Operation> op;
    Status st = services.meta->Update([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource r, txn.Get(listed.id));
      const int64_t now = services.env->NowMicros();
      const Json* ref_j = r.properties.Find("vmImageResourceId");
      ASSIGN_OR_RETURN(
          ResourceId ref,
          ResourceId::Parse(ref_j != nullptr && ref_j->is_string() ? ref_j->string_value() : ""));
      if (!enabled) {
        detail = "the cluster's enableAutoOSUpgrade is false";
        return Status::Ok();
      }
      ASSIGN_OR_RETURN(ImageKind kind, ClassifyImage(ref, "vmImageResourceId"));
      if (kind != ImageKind::kDefinition) {
        detail = "pinned to " + ref.ToString() +
                 "; only a node type on a gallery image definition upgrades automatically";
        return Status::Ok();
      }
      auto latest = ResolveNodeImage(txn, ref, r.location);
      if (!latest.ok()) {
        detail = latest.status().message();
        return Status::Ok();
      }
      if (EqualsIgnoreCase(*latest, ExtString(r, "currentImage"))) {
        action = "UpToDate";
        detail = "runs " + *latest + ", the latest in " + r.location;
        return Status::Ok();
      }
      if (Busy(txn, r, now)) {
        action = "Busy";
        detail = "operation " + ExtString(r, "operationId") + " is in progress";
        return Status::Ok();
      }
      // Node types upgrade one at a time.
      ASSIGN_OR_RETURN(std::vector<meta::Resource> siblings,
                       txn.ListChildren(cluster, kNodeTypeType));
      for (const meta::Resource& other : siblings) {
        if (other.id == r.id || !Busy(txn, other, now)) continue;
        action = "Waiting";
        detail = "node type " + other.id.name() +
                 " has an operation in progress; node types upgrade one at a time";
        return Status::Ok();
      }
      Json au =
          ExtFind(r, "autoUpgrade") != nullptr ? *ExtFind(r, "autoUpgrade") : Json::MakeObject();
      int64_t attempts = 0;
      const Json* t = au.Find("targetImage");
      if (t != nullptr && t->is_string() && EqualsIgnoreCase(t->string_value(), *latest)) {
        attempts = au.Find("attempts") != nullptr ? au.Find("attempts")->AsInt64().value_or(0) : 0;
        const Json* res = au.Find("result");
        std::string last = res != nullptr && res->is_string() ? res->string_value() : "";
        if (last != "Completed" && attempts > 0) {
          if (attempts > kMaxAutoUpgradeRetries) {
            action = "GaveUp";
            detail = "the upgrade to " + *latest + " failed " + std::to_string(attempts) +
                     " times (the first try and " + std::to_string(kMaxAutoUpgradeRetries) +
                     " retries); it is not tried again until a newer version is published";
            return Status::Ok();
          }
          int64_t next =
              au.Find("nextRetryUs") != nullptr ? au.Find("nextRetryUs")->AsInt64().value_or(0) : 0;
          if (now < next) {
            action = "WaitingForRetry";
            detail = "the upgrade to " + *latest + " failed; retry " + std::to_string(attempts) +
                     " of " + std::to_string(kMaxAutoUpgradeRetries) + " is due in " +
                     fleet::FormatIsoDuration(next - now);
            return Status::Ok();
          }
        }
      }
      au = Json::MakeObject();
      au.Set("targetImage", Json::String(*latest));
      au.Set("attempts", Json::Int(attempts + 1));
      au.Set("lastAttemptUs", Json::Int(now));
      au.Set("result", Json::String("RollingForward"));
      Ext(r).Set("autoUpgrade", au);
      Json extra = Json::MakeObject();
      extra.Set("targetImage", Json::String(*latest));
      extra.Set("startedBy", Json::String("Platform"));
      ASSIGN_OR_RETURN(op,
                       StartNodeTypeOperation(services, txn, r, "rollout", extra, request.wait));
      action = attempts == 0 ? "Started" : "Retried";
      detail = "rollout to " + *latest +
               (attempts == 0 ? "" : " (retry " + std::to_string(attempts) + ")");
      return Status::Ok();
    });
    if (!st.ok()) return WithTarget(st, listed.id.ToString());
    entry.Set("action", Json::String(action));
    entry.Set("detail", Json::String(detail));
    if (op) {
      entry.Set("operationId", Json::String(op->id));
      if (request.wait) {
        // One node type at a time: this rollout ends before the next starts.
        ASSIGN_OR_RETURN(Operation done,
                         services.operations->Execute(op->id, request.progress, request.interrupt));
        entry.Set("rollout", done.result);
      } else {
        entries.Append(entry);
        break;  // the next node type waits for this rollout (the next check)
      }
    }
    entries.Append(entry);
  }
  result.Set("nodeTypes", entries);
  return result;
}

std::unique_ptr<OperationHandler> NewNodeTypeOperationHandler() {
  return std::make_unique<NodeTypeHandler>();
}

}  // namespace imagesmith::api::sf
