// The cluster operation (kClusterOperation): moves a CycleCloud cluster's
// Acquiring nodes to Ready (or Failed) and its Terminating nodes to Off (or
// away) through a node driver, then settles the cluster's state
// (doc/cyclecloud.md, "Starting and stopping").
//
//   Acquiring   resolve the node's image (now, as CycleCloud does), its size
//               and the agent attributes; driver.Create  -> Preparing
//               (any of them failing -> Failed, naming the node and the image)
//   Preparing   the agent's hello (AwaitInstallation)    -> Ready, hostname
//               machine gone, or no hello in time         -> Failed
//   Terminating driver.Delete, regional disk released     -> Off ([[node]]) or removed
//
// Every pass re-reads the records and writes back only the nodes it moved,
// so a re-import (a new ImageName) while it runs changes what the next
// Acquiring node boots and nothing else. Resumable: a new worker adopts the
// nodes that have a runtime and carries on.
#include <cstdio>
#include <cstdlib>

#include "api/arm_error.h"
#include "api/cluster_internal.h"
#include "api/image_export.h"
#include "api/sf_internal.h"
#include "base/strings.h"
#include "builder/distribute.h"
#include "catalog/boot_disk.h"
#include "catalog/catalog.h"
#include "cyclecloud/cluster.h"
#include "cyclecloud/image_resolution.h"
#include "fleet/node_driver.h"
#include "fleet/regional_disks.h"
#include "store/store.h"

namespace imagesmith::api::cc {
namespace {

std::string Str(const Json& j, const char* key) {
  const Json* v = j.is_object() ? j.Find(key) : nullptr;
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

void Erase(Json& obj, std::string_view key) {
  if (!obj.is_object()) return;
  auto& items = obj.object_items();
  std::erase_if(items, [&](const JsonMember& m) { return m.key == key; });
}

int64_t EnvSeconds(const char* name, int64_t fallback_us) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback_us;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (end == v || d <= 0) return fallback_us;
  return static_cast<int64_t>(d * 1e6);
}

// What one node needs from the outside while it is made.
struct Prepared {
  fleet::NodeSpec spec;
  std::string image;      // the resolved image (resource ID or URN)
  std::string reference;  // the template's image attributes
  bool await_hello = true;
};

class ClusterWork {
 public:
  ClusterWork(OperationContext& ctx, const meta::Resource& cluster)
      : ctx_(ctx), s_(ctx.services()), id_(cluster.id), region_(cluster.location) {
    hello_deadline_us_ =
        EnvSeconds("IMAGESMITH_CYCLECLOUD_HELLO_DEADLINE_SECONDS", 600LL * 1'000'000);
  }

  Status Open(const meta::Resource& cluster) {
    driver_name_ = Str(cluster.properties, "nodeDriver");
    if (driver_name_.empty()) driver_name_ = "qemu";
    if (driver_name_ == "sim") {
      ASSIGN_OR_RETURN(fleet::SimSettings settings, fleet::SimSettings::ParseEnv());
      driver_ = fleet::MakeSimDriver(*s_.env, std::move(settings));
    } else {
      RETURN_IF_ERROR(s_.env->CreateDirs(s_.data_dir + "/fleet"));
      driver_ = fleet::MakeQemuDriver(*s_.env, s_.data_dir + "/fleet");
    }
    // Nodes an earlier process made: adopt them so they can be watched and
    // deleted. One whose machine is gone shows as kGone and fails.
    const Json* nodes = cluster.properties.Find("nodes");
    if (nodes == nullptr || !nodes->is_array()) return Status::Ok();
    for (const Json& n : nodes->array_items()) {
      const Json* rt = n.Find("runtime");
      if (rt == nullptr || rt->is_null()) continue;
      auto runtime = fleet::NodeRuntime::FromJson(*rt);
      if (!runtime.ok()) continue;
      fleet::NodeSpec spec;
      spec.node_id = Str(n, "nodeId");
      spec.hostname = Str(n, "hostname");
      spec.mac = Mac(spec.node_id);
      spec.work_dir = NodeDir(spec.node_id);
      spec.image.image_id = Str(n, "image");
      auto size = fleet::LookupVmSize(Str(n, "machineType"));
      if (size.ok()) spec.size = *size;
      Status adopted = driver_->Adopt(spec, *runtime);
      if (!adopted.ok() && adopted.code() != StatusCode::kNotFound) {
        // Not a machine that is gone: one this process cannot stop would
        // be left running, so say so.
        ctx_.Line(ProgressKind::kNotice,
                  "node " + Str(n, "name") + ": cannot adopt its machine: " + adopted.message());
      }
    }
    return Status::Ok();
  }

  // Runs passes until no node is Acquiring, Preparing or Terminating.
  OperationOutcome Run() {
    while (true) {
      bool done = false;
      Status st = Pass(done);
      if (!st.ok()) return Failed(st);
      if (done) break;
      if (ctx_.cancel().load())
        return Failed(CancelledError("the cluster operation was cancelled"));
      s_.env->SleepFor(std::chrono::milliseconds(250));
    }
    OperationOutcome out;
    out.result.Set("cluster", Json::String(id_.name()));
    out.result.Set("state", Json::String(final_state_));
    return out;
  }

 private:
  static OperationOutcome Failed(const Status& why) {
    OperationOutcome out;
    out.status = why.code() == StatusCode::kCancelled ? OperationStatus::kCanceled
                                                      : OperationStatus::kFailed;
    out.error = ToArmError(why);
    return out;
  }

  std::string NodeDir(const std::string& node_id) const {
    return s_.data_dir + "/fleet/nodes/" + node_id;
  }

  // One pass over the records: act on every node in a moving state, write
  // the moved ones back, settle the cluster when nothing moves any more.
  Status Pass(bool& done) {
    std::optional<meta::Resource> loaded;
    RETURN_IF_ERROR(s_.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(loaded, txn.Get(id_));
      return Status::Ok();
    }));
    const meta::Resource& cluster = *loaded;
    ASSIGN_OR_RETURN(cyclecloud::ClusterSpec spec,
                     cyclecloud::ClusterSpec::FromJson(*cluster.properties.Find("cluster")));
    std::map<std::string, Json> moved;  // name -> the new record (null: removed)
    bool waiting = false;               // a node was in a moving state
    const Json* nodes = cluster.properties.Find("nodes");
    if (nodes != nullptr && nodes->is_array()) {
      for (const Json& n : nodes->array_items()) {
        const std::string state = Str(n, "state");
        Json rec = n;
        bool changed = false;
        if (state == "Acquiring") {
          changed = Acquire(spec, cluster, rec);
        } else if (state == "Preparing") {
          changed = Watch(rec);
        } else if (state == "Terminating") {
          changed = true;
          if (!Terminate(rec)) rec = Json();
        }
        if (changed) moved[Str(n, "name")] = std::move(rec);
        if (state == "Acquiring" || state == "Preparing" || state == "Terminating") {
          waiting = true;
        }
      }
    }
    // Nothing moved while nodes still boot: no write (the record and its
    // ETag change only when something happens).
    if (moved.empty() && waiting) return Status::Ok();
    return s_.meta->Update([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource fresh, txn.Get(id_));
      Json out = Json::MakeArray();
      bool moving = false, any_running = false;
      if (const Json* cur = fresh.properties.Find("nodes"); cur != nullptr && cur->is_array()) {
        for (const Json& n : cur->array_items()) {
          Json rec = n;
          auto it = moved.find(Str(n, "name"));
          if (it != moved.end()) {
            // A terminate that arrived while the node was being made wins,
            // but the machine this pass made is kept so it can be stopped.
            if (Str(n, "state") == "Terminating" &&
                Str(*NodeBefore(it->first, cluster), "state") != "Terminating") {
              if (!it->second.is_null()) {
                rec = it->second;
                rec.Set("state", Json::String("Terminating"));
              }
            } else if (it->second.is_null()) {
              continue;
            } else {
              rec = it->second;
            }
          }
          std::string st = Str(rec, "state");
          if (st == "Acquiring" || st == "Preparing" || st == "Terminating") moving = true;
          if (st != "Off") any_running = true;
          out.Append(std::move(rec));
        }
      }
      fresh.properties.Set("nodes", std::move(out));
      if (!moving) {
        std::string state = Str(fresh.properties, "state");
        if (state == "Starting") state = "Started";
        if (state == "Terminating") state = any_running ? "Started" : "Terminated";
        fresh.properties.Set("state", Json::String(state));
        Erase(fresh.properties, "operationId");
        final_state_ = state;
        done = true;
      }
      return txn.Replace(fresh);
    });
  }

  static const Json* NodeBefore(const std::string& name, const meta::Resource& cluster) {
    static const Json kNone = Json::MakeObject();
    const Json* nodes = cluster.properties.Find("nodes");
    if (nodes == nullptr || !nodes->is_array()) return &kNone;
    for (const Json& n : nodes->array_items()) {
      if (Str(n, "name") == name) return &n;
    }
    return &kNone;
  }

  void Fail(Json& rec, const std::string& message) {
    rec.Set("state", Json::String("Failed"));
    rec.Set("statusMessage", Json::String(message));
    ctx_.Line(ProgressKind::kNotice, "Failed: " + message);
  }

  // Acquiring -> Preparing (or Ready without AwaitInstallation), or Failed.
  bool Acquire(const cyclecloud::ClusterSpec& spec, const meta::Resource& cluster, Json& rec) {
    const std::string name = Str(rec, "name");
    const cyclecloud::NodeSpec* def = spec.FindNode(Str(rec, "template"));
    if (def == nullptr) {
      Fail(rec, "node " + name + ": the template has no node or nodearray " +
                    QuoteForMessage(Str(rec, "template")) + " any more");
      return true;
    }
    // A Failed node started again: stop what is left of its old machine.
    if (const Json* restart = rec.Find("restart"); restart != nullptr) {
      if (!Str(rec, "nodeId").empty()) (void)driver_->Delete(Str(rec, "nodeId"));
      ReleaseDisk(rec);
      for (const char* key : {"restart", "runtime", "image", "imageReference"}) Erase(rec, key);
    }
    // A record that already has a runtime was made by a worker that died
    // before it wrote Preparing: watch it.
    if (const Json* rt = rec.Find("runtime"); rt != nullptr && !rt->is_null()) {
      rec.Set("state", Json::String("Preparing"));
      return true;
    }
    StatusOr<Prepared> p = Prepare(*def, cluster, rec);
    if (!p.ok()) {
      Fail(rec, p.status().message());
      return true;
    }
    rec.Set("image", Json::String(p->image));
    rec.Set("imageReference", Json::String(p->reference));
    rec.Set("nodeId", Json::String(p->spec.node_id));
    rec.Set("machineType", Json::String(p->spec.size.name));
    rec.Set("cores", Json::Int(p->spec.size.cpus));
    rec.Set("awaitInstallation", Json::Bool(p->await_hello));
    StatusOr<fleet::NodeRuntime> runtime = driver_->Create(p->spec);
    if (!runtime.ok()) {
      ReleaseDisk(rec);
      Fail(rec, "node " + name + ": " + runtime.status().message());
      return true;
    }
    rec.Set("runtime", runtime->ToJson());
    rec.Set("state", Json::String(p->await_hello ? "Preparing" : "Ready"));
    Erase(rec, "statusMessage");
    ctx_.Line(ProgressKind::kStatus, "node " + name + ": " + Str(rec, "state") + " on " + p->image);
    return true;
  }

  StatusOr<Prepared> Prepare(const cyclecloud::NodeSpec& def, const meta::Resource& cluster,
                             const Json& rec) {
    const std::string name = Str(rec, "name");
    cyclecloud::NodeSpec node = def;
    node.name = name;  // errors name the node, not only its nodearray
    Prepared p;
    p.reference = cyclecloud::DescribeNodeImage(node);
    ASSIGN_OR_RETURN(cyclecloud::AgentPlan agent, cyclecloud::PlanAgent(node, AgentVersion()));
    // The qemu driver always injects the agent (it is how the node is
    // watched); AwaitInstallation decides whether Ready waits for its hello.
    p.await_hello = agent.await_hello || agent.inject_agent || driver_name_ == "qemu";
    std::string machine = "Standard_D2s_v3";
    if (const cyclecloud::Value* v = cyclecloud::FindAttribute(node.attributes, "MachineType")) {
      machine = v->kind() == cyclecloud::Value::Kind::kList && !v->list_items().empty()
                    ? v->list_items()[0].ToText()
                    : v->ToText();
    }
    StatusOr<fleet::VmSize> size = fleet::LookupVmSize(machine);
    if (!size.ok())
      return InvalidArgumentError("node " + name + ": MachineType " + machine + ": " +
                                  size.status().message());
    ASSIGN_OR_RETURN(cyclecloud::ImageChoice choice,
                     cyclecloud::ResolveNodeImage(node, CatalogView()));
    const std::string what = "node " + name + ": " + choice.decided_by + " " + choice.reference;
    p.spec.node_id = Str(rec, "nodeId");
    p.spec.hostname = Str(rec, "hostname");
    p.spec.mac = Mac(p.spec.node_id);
    p.spec.size = *size;
    p.spec.work_dir = NodeDir(p.spec.node_id);
    RETURN_IF_ERROR(s_.env->CreateDirs(p.spec.work_dir));
    if (choice.kind == cyclecloud::ImageSourceKind::kCatalog) {
      p.image = choice.reference;
      p.spec.image.image_id = p.image;
      if (driver_name_ == "qemu") {
        StatusOr<fleet::NodeImage> img = CatalogDisk(choice.reference, p.spec.node_id);
        if (!img.ok()) return Status(img.status().code(), what + ": " + img.status().message());
        p.spec.image = *img;
      }
      return p;
    }
    // A managed image, a gallery version (replicated to the cluster's
    // region) or a definition's latest there.
    StatusOr<std::string> resolved = InternalError("unset");
    Status st = s_.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(ResourceId rid, ResourceId::Parse(choice.reference));
      resolved = sf::ResolveNodeImage(txn, rid, cluster.location);
      return Status::Ok();
    });
    if (!st.ok()) return Status(st.code(), what + ": " + st.message());
    if (!resolved.ok()) {
      return Status(resolved.status().code(), what + ": " + resolved.status().message());
    }
    p.image = *resolved;
    p.spec.image.image_id = p.image;
    if (driver_name_ == "qemu") {
      StatusOr<fleet::NodeImage> img = StoredDisk(p.image, p.spec.node_id);
      if (!img.ok()) return Status(img.status().code(), what + ": " + img.status().message());
      p.spec.image = *img;
    }
    return p;
  }

  cyclecloud::ImageCatalogView CatalogView() const {
    cyclecloud::ImageCatalogView view;
    catalog::Catalog cat(*s_.env, s_.data_dir + "/catalog");
    for (const catalog::CatalogEntry& e : cat.List(false)) {
      view.offers.push_back(e.publisher + ":" + e.offer + ":" + e.sku);
    }
    return view;
  }

  // The regional disk of a stored image (managed image or gallery version).
  StatusOr<fleet::NodeImage> StoredDisk(const std::string& image_id, const std::string& user) {
    fleet::NodeImage out;
    out.image_id = image_id;
    Caller owner;
    owner.principal.is_owner = true;
    ASSIGN_OR_RETURN(ResourceId rid, ResourceId::Parse(image_id));
    ASSIGN_OR_RETURN(gallery::SourceImage src, ResolveExportImage(s_, owner, rid, region_));
    out.uefi = src.hyper_v_generation == "V2";
    ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store,
                     store::Store::Open(*s_.env, s_.data_dir + "/store"));
    fleet::RegionalDisks disks(*s_.env, s_.data_dir + "/fleet");
    ASSIGN_OR_RETURN(out.disk, disks.Acquire(image_id, region_, user, [&](const std::string& path) {
      return build::ExportStoredImage(*s_.env, *store, src.region, src.image,
                                      disk::DiskFormat::kRaw, path, nullptr);
    }));
    return out;
  }

  // The regional disk of a platform image: the catalog's Debian base (built
  // once, cached) made bootable.
  StatusOr<fleet::NodeImage> CatalogDisk(const std::string& urn, const std::string& user) {
    std::vector<std::string> parts = Split(urn, ':');
    if (parts.size() != 4) return InvalidArgumentError("not a URN: " + urn);
    tmpl::PlatformImageSource source{parts[0], parts[1], parts[2], parts[3], std::nullopt};
    catalog::Catalog cat(*s_.env, s_.data_dir + "/catalog");
    ctx_.Line(ProgressKind::kStatus, "preparing the platform image " + urn);
    ASSIGN_OR_RETURN(catalog::BaseImage base, cat.Ensure(source, [](std::string_view) {}));
    fleet::NodeImage out;
    out.image_id = base.entry.Urn();
    out.uefi = base.entry.generation == catalog::Generation::kV2;
    fleet::RegionalDisks disks(*s_.env, s_.data_dir + "/fleet");
    ASSIGN_OR_RETURN(
        out.disk, disks.Acquire(out.image_id, region_, user, [&](const std::string& path) {
          std::string tree = path + ".tree";
          ProcessOptions cp;
          cp.argv = {"cp", "-a", base.rootfs_dir, tree};
          ASSIGN_OR_RETURN(ProcessResult copied, s_.env->RunProcess(cp));
          if (!copied.success()) return InternalError("cp -a: " + copied.stderr_data);
          StatusOr<uint64_t> size = catalog::DefaultDiskSize(*s_.env, tree);
          Status made = size.status();
          if (made.ok()) {
            made = catalog::MakeBootableDisk(*s_.env, catalog::NewBootConfig(base.entry.generation),
                                             tree, *size, path);
          }
          (void)s_.env->RemoveAll(tree);
          return made;
        }));
    return out;
  }

  void ReleaseDisk(const Json& rec) {
    if (driver_name_ != "qemu") return;
    const std::string image = Str(rec, "image");
    if (image.empty()) return;
    fleet::RegionalDisks disks(*s_.env, s_.data_dir + "/fleet");
    (void)disks.Release(image, region_, Str(rec, "nodeId"));
    // A catalog image's disk is keyed by its resolved version.
    if (!StartsWith(image, "/")) {
      catalog::Catalog cat(*s_.env, s_.data_dir + "/catalog");
      std::vector<std::string> parts = Split(image, ':');
      if (parts.size() == 4) {
        auto e = cat.Resolve({parts[0], parts[1], parts[2], parts[3], std::nullopt});
        if (e.ok()) (void)disks.Release(e->Urn(), region_, Str(rec, "nodeId"));
      }
    }
  }

  // Preparing -> Ready on the agent's hello; Failed when the machine is
  // gone or the hello does not come in time.
  bool Watch(Json& rec) {
    const std::string node_id = Str(rec, "nodeId");
    fleet::NodeObservation o = driver_->Observe(node_id);
    if (o.machine == fleet::NodeObservation::Machine::kReady) {
      rec.Set("state", Json::String("Ready"));
      if (o.guest && !o.guest->hostname.empty()) {
        rec.Set("hostname", Json::String(o.guest->hostname));
      }
      ctx_.Line(ProgressKind::kStatus, "node " + Str(rec, "name") + ": Ready");
      return true;
    }
    if (o.machine == fleet::NodeObservation::Machine::kGone ||
        o.machine == fleet::NodeObservation::Machine::kPreempted) {
      Fail(rec, "node " + Str(rec, "name") + ": the machine stopped before the agent said hello" +
                    (o.detail.empty() ? "" : ": " + o.detail));
      return true;
    }
    int64_t created = 0;
    if (const Json* rt = rec.Find("runtime"); rt != nullptr) {
      auto r = fleet::NodeRuntime::FromJson(*rt);
      if (r.ok()) created = r->created_us;
    }
    if (created > 0 && s_.env->NowMicros() - created > hello_deadline_us_) {
      Fail(rec, "node " + Str(rec, "name") + ": no hello from the agent within " +
                    std::to_string(hello_deadline_us_ / 1'000'000) + " s" +
                    (o.detail.empty() ? "" : ": " + o.detail));
      return true;
    }
    return false;
  }

  // Stops the node's machine. Returns whether the record stays (a [[node]]
  // goes back to Off; a nodearray node is removed).
  bool Terminate(Json& rec) {
    const std::string node_id = Str(rec, "nodeId");
    if (!node_id.empty()) {
      Status d = driver_->Delete(node_id);
      if (!d.ok()) {
        ctx_.Line(ProgressKind::kNotice, "node " + Str(rec, "name") + ": " + d.message());
      }
      ReleaseDisk(rec);
      (void)s_.env->RemoveAll(NodeDir(node_id));
    }
    ctx_.Line(ProgressKind::kStatus, "node " + Str(rec, "name") + ": terminated");
    const Json* array = rec.Find("nodearray");
    if (array != nullptr && array->is_string()) return false;
    rec.Set("state", Json::String("Off"));
    for (const char* key :
         {"runtime", "image", "imageReference", "statusMessage", "hostname", "awaitInstallation"}) {
      Erase(rec, key);
    }
    return true;
  }

  static std::string Mac(const std::string& node_id) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : node_id) {
      h ^= c;
      h *= 1099511628211ull;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "52:54:01:%02x:%02x:%02x",
                  static_cast<unsigned>((h >> 16) & 0xff), static_cast<unsigned>((h >> 8) & 0xff),
                  static_cast<unsigned>(h & 0xff));
    return buf;
  }

  OperationContext& ctx_;
  Services& s_;
  const ResourceId id_;
  const std::string region_;
  std::string driver_name_;
  std::unique_ptr<fleet::NodeDriver> driver_;
  int64_t hello_deadline_us_ = 0;
  std::string final_state_;
};

class ClusterHandler final : public OperationHandler {
 public:
  std::string_view Type() const override { return kClusterOperation; }

  OperationOutcome Run(OperationContext& ctx) override {
    std::optional<meta::Resource> cluster;
    Status st = ctx.services().meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(cluster, txn.Get(ctx.operation().target));
      return Status::Ok();
    });
    OperationOutcome failed;
    failed.status = OperationStatus::kFailed;
    if (!st.ok()) {
      failed.error = ToArmError(st);
      return failed;
    }
    ClusterWork work(ctx, *cluster);
    if (Status o = work.Open(*cluster); !o.ok()) {
      failed.error = ToArmError(o);
      failed.error->code = "NodeDriverUnavailable";
      return failed;
    }
    return work.Run();
  }

  // Every pass works from the records: a new worker carries on.
  bool Resumable(const Operation&) const override { return true; }
};

}  // namespace

std::unique_ptr<OperationHandler> NewClusterOperationHandler() {
  return std::make_unique<ClusterHandler>();
}

}  // namespace imagesmith::api::cc
