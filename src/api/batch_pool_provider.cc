// Batch accounts, pools and nodes (doc/batch.md). The rules about images
// (existence, region, node agent SKU, limits) are batch/images.h's; the
// controller that makes nodes is batch/controller.h's, run as the pool's
// durable operation.
#include "api/arm_error.h"
#include "api/batch_body.h"
#include "api/batch_internal.h"
#include "api/body.h"
#include "api/etag.h"
#include "api/provider_util.h"
#include "api/template_internal.h"
#include "base/strings.h"
#include "batch/controller.h"
#include "batch/images.h"
#include "fleet/node_driver.h"
#include "meta/scopes.h"

namespace imagesmith::api {

using batch::JBool;
using batch::JErase;
using batch::JGet;
using batch::JInt;
using batch::JObj;
using batch::JStr;

namespace {

constexpr char kAccountRead[] = "Microsoft.Batch/batchAccounts/read";
constexpr char kAccountWrite[] = "Microsoft.Batch/batchAccounts/write";
constexpr char kAccountDelete[] = "Microsoft.Batch/batchAccounts/delete";
constexpr char kPoolRead[] = "Microsoft.Batch/batchAccounts/pools/read";
constexpr char kPoolWrite[] = "Microsoft.Batch/batchAccounts/pools/write";
constexpr char kPoolDelete[] = "Microsoft.Batch/batchAccounts/pools/delete";
constexpr char kStopResize[] = "Microsoft.Batch/batchAccounts/pools/stopResize/action";

std::string NowText(Services& s) { return batch::FormatUtc(s.env->NowMicros()); }

Status CheckKind(const ResourceId& id, const char* type) {
  if (id.kind() == ResourceId::Kind::kResource && id.IsType(type)) return Status::Ok();
  return InvalidArgumentError("expected a " + std::string(type) + " ID, got " + id.ToString());
}

// Creates the account implicitly (in the pool's group, at `location` or
// the group's) the first time a pool or job names it.
StatusOr<meta::Resource> GetOrCreateAccount(meta::Transaction& txn, const ResourceId& account,
                                            const std::string& location) {
  ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, account));
  if (current.has_value()) return *current;
  ASSIGN_OR_RETURN(meta::Resource group, meta::GetGroup(txn, account.Parent()));
  RETURN_IF_ERROR(batch::ValidateBatchId(account.name(), "account name"));
  meta::Resource r = batch::NewResource(account);
  r.location = location.empty() ? group.location : location;
  r.properties.Set("poolAllocationMode", Json::String("BatchService"));
  r.properties.Set("dedicatedCoreQuota", Json::Int(batch::kDefaultDedicatedCoreQuota));
  r.properties.Set("lowPriorityCoreQuota", Json::Int(batch::kDefaultLowPriorityCoreQuota));
  r.properties.Set("provisioningState", Json::String("Succeeded"));
  RETURN_IF_ERROR(txn.Create(r));
  return r;
}

// ---- accounts -----------------------------------------------------------------------

class AccountProvider final : public Provider {
 public:
  std::string_view Type() const override { return batch::kAccountType; }
  std::vector<std::string> ApiVersions() const override { return BatchApiVersions(); }

  // Creates the account or sets its core quotas and tags.
  StatusOr<Response> Put(Services& s, const Request& req) override { return Write(s, req); }
  StatusOr<Response> Patch(Services& s, const Request& req) override { return Write(s, req); }

  StatusOr<Response> Get(Services& s, const Request& req) override {
    return GetOne(
        s, req, kAccountRead, [&](meta::Transaction& txn) { return GetAccount(txn, req.id); },
        [](const meta::Resource& r) { return r.ToJson(); });
  }
  StatusOr<Response> List(Services& s, const Request& req) override {
    return ListAll(
        s, req, kAccountRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          if (req.id.kind() == ResourceId::Kind::kSubscription) {
            return txn.ListByType(req.id, batch::kAccountType);
          }
          RETURN_IF_ERROR(meta::GetGroup(txn, req.id).status());
          return txn.ListChildren(req.id, batch::kAccountType);
        },
        [](const meta::Resource& r) { return r.ToJson(); });
  }
  StatusOr<Response> Delete(Services& s, const Request& req) override {
    return DeleteOne(s, req, kAccountDelete, nullptr, [&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(int64_t n, txn.CountDescendants(req.id));
      if (n > 0) {
        return FailedPreconditionError("the Batch account " + req.id.name() + " still has " +
                                       std::to_string(n) +
                                       " pools, nodes, jobs or tasks; delete them first");
      }
      return txn.Delete(req.id);
    });
  }

 private:
  StatusOr<Response> Write(Services& s, const Request& req) {
    RETURN_IF_ERROR(WithTarget(CheckKind(req.id, batch::kAccountType), req.id.ToString()));
    ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&req.body, ""));
    RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
    ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
    RETURN_IF_ERROR(props.AllowOnly(
        {"dedicatedCoreQuota", "lowPriorityCoreQuota", "poolAllocationMode", "provisioningState"}));
    ASSIGN_OR_RETURN(std::optional<Region> location, top.Location());
    ASSIGN_OR_RETURN(std::optional<Json> tags, top.Tags());
    ASSIGN_OR_RETURN(std::optional<int64_t> dedicated, props.Int("dedicatedCoreQuota"));
    ASSIGN_OR_RETURN(std::optional<int64_t> low, props.Int("lowPriorityCoreQuota"));
    if (dedicated.value_or(0) < 0) {
      return BodyError(props.PathOf("dedicatedCoreQuota"), "must not be negative");
    }
    if (low.value_or(0) < 0) {
      return BodyError(props.PathOf("lowPriorityCoreQuota"), "must not be negative");
    }
    Response out;
    Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, req, kAccountWrite, req.id));
      ASSIGN_OR_RETURN(std::optional<meta::Resource> before, FindResource(txn, req.id));
      RETURN_IF_ERROR(CheckPreconditions(req, before ? &*before : nullptr));
      ASSIGN_OR_RETURN(meta::Resource r,
                       GetOrCreateAccount(txn, req.id, location ? location->name() : ""));
      if (dedicated) r.properties.Set("dedicatedCoreQuota", Json::Int(*dedicated));
      if (low) r.properties.Set("lowPriorityCoreQuota", Json::Int(*low));
      if (tags) r.tags = *tags;
      RETURN_IF_ERROR(txn.Replace(r));
      out = ResourceResponse(before ? 200 : 201, r.ToJson(), r);
      return Status::Ok();
    });
    if (!st.ok()) return WithTarget(st, req.id.ToString());
    return out;
  }
};

// ---- pools ----------------------------------------------------------------------

Json PoolProperties(const batch::PoolSpec& spec, Services& s) {
  Json p = Json::MakeObject();
  if (!spec.display_name.empty()) p.Set("displayName", Json::String(spec.display_name));
  p.Set("vmSize", Json::String(spec.vm_size));
  Json vmc = Json::MakeObject();
  Json ref = Json::MakeObject();
  if (!spec.image_id.empty()) ref.Set("virtualMachineImageId", Json::String(spec.image_id));
  vmc.Set("imageReference", ref);
  vmc.Set("nodeAgentSKUId", Json::String(spec.node_agent_sku_id));
  if (!spec.vhd_uris.empty()) {
    Json uris = Json::MakeArray();
    for (const std::string& u : spec.vhd_uris) uris.Append(Json::String(u));
    Json os_disk = Json::MakeObject();
    os_disk.Set("imageUris", uris);
    vmc.Set("osDisk", os_disk);
  }
  p.Set("virtualMachineConfiguration", vmc);
  p.Set("targetDedicatedNodes", Json::Int(spec.target_dedicated));
  p.Set("targetLowPriorityNodes", Json::Int(spec.target_low_priority));
  p.Set("resizeTimeout", Json::String(batch::FormatIsoDuration(spec.resize_timeout_s)));
  if (spec.start_task.has_value()) p.Set("startTask", spec.start_task->ToJson(true));
  p.Set("taskSlotsPerNode", Json::Int(spec.task_slots_per_node));
  p.Set("metadata", spec.metadata);
  p.Set("enableAutoScale", Json::Bool(false));
  p.Set("state", Json::String("active"));
  p.Set("stateTransitionTime", Json::String(NowText(s)));
  p.Set("creationTime", Json::String(NowText(s)));
  p.Set("currentDedicatedNodes", Json::Int(0));
  p.Set("currentLowPriorityNodes", Json::Int(0));
  p.Set("resizeErrors", Json::MakeArray());
  p.Set("provisioningState", Json::String("Succeeded"));
  Json& ext = p.Set("imagesmith", Json::MakeObject());
  ext.Set("nodeDriver", Json::String(spec.node_driver));
  ext.Set("resizeTimeoutSeconds", Json::Int(spec.resize_timeout_s));
  ext.Set("resizeSeq", Json::Int(1));
  ext.Set("resizeStartUs", Json::Int(s.env->NowMicros()));
  bool grow = spec.target_dedicated + spec.target_low_priority > 0;
  p.Set("allocationState", Json::String(grow ? "resizing" : "steady"));
  p.Set("allocationStateTransitionTime", Json::String(NowText(s)));
  return p;
}

// The image checks a pool's create and every resize run: the image exists
// and is usable in `region`, the SKU fits, the counts fit the limits.
Status CheckPoolImage(Services& s, meta::Transaction& txn, const ResourceId& pool,
                      const std::string& region, const std::string& image_id,
                      const std::vector<std::string>& vhd_uris, const std::string& image_path,
                      const std::string& sku, const std::string& sku_path, int64_t dedicated,
                      int64_t low, const std::string& dedicated_path, const std::string& low_path,
                      bool check_sku) {
  if (!image_id.empty()) {
    auto image = batch::ResolvePoolImage(txn, image_id, region, image_path);
    if (!image.ok()) return WithTarget(image.status(), image_path);
    if (check_sku) {
      RETURN_IF_ERROR(
          WithTarget(batch::CheckNodeAgentSku(sku, image->os_type, sku_path), sku_path));
    }
    return WithTarget(
        batch::CheckImageLimits(txn, pool, image_id, dedicated, low, dedicated_path, low_path),
        dedicated + 0 > batch::kMaxDedicatedPerImage ? dedicated_path : dedicated_path);
  }
  for (const std::string& uri : vhd_uris) {
    std::string path = StartsWith(uri, "file://") ? uri.substr(7) : uri;
    if (!s.env->FileExists(path)) {
      return BodyError(image_path, "the VHD file " + path + " does not exist");
    }
  }
  if (check_sku) {
    RETURN_IF_ERROR(WithTarget(batch::CheckNodeAgentSku(sku, "Linux", sku_path), sku_path));
  }
  return WithTarget(batch::CheckVhdCapacity(vhd_uris, dedicated + low, image_path), image_path);
}

class PoolProvider final : public Provider {
 public:
  std::string_view Type() const override { return batch::kPoolType; }
  std::vector<std::string> ApiVersions() const override { return BatchApiVersions(); }

  // Creates the pool (201) and starts allocating its nodes. A pool that
  // exists is 409: change its size with the resize action.
  StatusOr<Response> Put(Services& s, const Request& req) override {
    const ResourceId& id = req.id;
    RETURN_IF_ERROR(WithTarget(CheckKind(id, batch::kPoolType), id.ToString()));
    RETURN_IF_ERROR(WithTarget(batch::ValidateBatchId(id.name(), "pool id"), "id"));
    ASSIGN_OR_RETURN(batch::PoolSpec spec, ParsePoolBody(req.body, id.name()));
    ControlTicket ticket;
    meta::Resource created = batch::NewResource(id);
    Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, req, kPoolWrite, id));
      ASSIGN_OR_RETURN(meta::Resource account, GetOrCreateAccount(txn, id.Parent(), spec.location));
      if (!spec.location.empty() && !EqualsIgnoreCase(spec.location, account.location)) {
        return BodyError("location", "the pool must be in its account's region " +
                                         account.location + ", not " + spec.location);
      }
      ASSIGN_OR_RETURN(std::optional<meta::Resource> existing, FindResource(txn, id));
      if (existing.has_value()) {
        return ArmStatus(StatusCode::kAlreadyExists, "PoolExists",
                         "the pool " + id.name() + " already exists in account " +
                             id.Parent().name() +
                             "; change its size with 'imagesmith batch pool resize' or delete it",
                         id.ToString());
      }
      RETURN_IF_ERROR(CheckPoolImage(s, txn, id, account.location, spec.image_id, spec.vhd_uris,
                                     spec.image_path, spec.node_agent_sku_id, spec.sku_path,
                                     spec.target_dedicated, spec.target_low_priority,
                                     spec.dedicated_path, spec.low_priority_path, true));
      created.location = account.location;
      created.properties = PoolProperties(spec, s);
      if (spec.target_dedicated + spec.target_low_priority > 0) {
        ASSIGN_OR_RETURN(ticket, EnsureControl(s, txn, created, req.wait));
      }
      return txn.Create(created);
    });
    if (!st.ok()) return WithTarget(st, id.ToString());
    RETURN_IF_ERROR(FinishControl(s, req, ticket));
    return Reply(s, req, 201, ticket);
  }

  StatusOr<Response> Get(Services& s, const Request& req) override {
    return GetOne(
        s, req, kPoolRead, [&](meta::Transaction& txn) { return GetPool(txn, req.id); }, PoolJson);
  }

  StatusOr<Response> List(Services& s, const Request& req) override {
    return ListAll(
        s, req, kPoolRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          if (req.id.kind() == ResourceId::Kind::kSubscription) {
            return txn.ListByType(req.id, batch::kPoolType);
          }
          RETURN_IF_ERROR(GetAccount(txn, req.id).status());
          return txn.ListChildren(req.id, batch::kPoolType);
        },
        PoolJson);
  }

  // Marks the pool deleting; its controller removes every node, then the
  // pool. 200 when done here (wait), 202 when a worker does it.
  StatusOr<Response> Delete(Services& s, const Request& req) override {
    ControlTicket ticket;
    bool existed = true;
    Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, req, kPoolDelete, req.id));
      ASSIGN_OR_RETURN(std::optional<meta::Resource> r, FindResource(txn, req.id));
      if (!r.has_value()) {
        existed = false;
        return Status::Ok();
      }
      RETURN_IF_ERROR(CheckPreconditions(req, &*r));
      ASSIGN_OR_RETURN(int64_t nodes, txn.CountDescendants(req.id));
      if (nodes == 0) return txn.Delete(req.id);
      r->properties.Set("state", Json::String("deleting"));
      r->properties.Set("stateTransitionTime", Json::String(NowText(s)));
      ASSIGN_OR_RETURN(ticket, EnsureControl(s, txn, *r, req.wait));
      return txn.Replace(*r);
    });
    if (!st.ok()) return WithTarget(st, req.id.ToString());
    if (!existed) return DeleteResponse(false);
    RETURN_IF_ERROR(FinishControl(s, req, ticket));
    Response resp = DeleteResponse(true);
    if (!req.wait && !ticket.operation_id.empty()) resp.http_status = 202;
    resp.operation_id = ticket.operation_id;
    return resp;
  }

  // resize {targetDedicatedNodes, targetLowPriorityNodes, resizeTimeout,
  // nodeDeallocationOption}; stopResize; and the node actions
  // (nodes/{id}/reboot|reimage arrive at the node provider).
  StatusOr<Response> Action(Services& s, const Request& req) override {
    bool resize = EqualsIgnoreCase(req.action, "resize");
    bool stop = EqualsIgnoreCase(req.action, "stopResize");
    if (!resize && !stop) {
      return ArmStatus(StatusCode::kNotFound, "InvalidAction",
                       "Batch pools have no action '" + req.action + "' (resize, stopResize)");
    }
    batch::ResizeSpec spec;
    if (resize) {
      ASSIGN_OR_RETURN(spec, ParseResizeBody(req.body));
    }
    ControlTicket ticket;
    Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, req, stop ? kStopResize : kPoolWrite, req.id));
      ASSIGN_OR_RETURN(meta::Resource r, GetPool(txn, req.id));
      Json& p = r.properties;
      Json& ext = JObj(p, "imagesmith");
      if (JStr(p, "state") == "deleting") {
        return FailedPreconditionError("the pool " + req.id.name() + " is being deleted");
      }
      if (stop) {
        if (JStr(p, "allocationState") != "resizing") {
          return ArmStatus(StatusCode::kFailedPrecondition, "PoolNotResizing",
                           "the pool " + req.id.name() + " is not resizing (allocationState " +
                               JStr(p, "allocationState") + ")");
        }
        p.Set("allocationState", Json::String("stopping"));
        p.Set("allocationStateTransitionTime", Json::String(NowText(s)));
      } else {
        if (JStr(p, "allocationState") != "steady") {
          return ArmStatus(StatusCode::kFailedPrecondition, "PoolNotSteady",
                           "the pool " + req.id.name() + " is " + JStr(p, "allocationState") +
                               "; wait for it to be steady or stop the resize first "
                               "(imagesmith batch pool stop-resize)");
        }
        int64_t d = spec.target_dedicated.value_or(JInt(p, "targetDedicatedNodes"));
        int64_t l = spec.target_low_priority.value_or(JInt(p, "targetLowPriorityNodes"));
        const Json& vmc = JGet(p, "virtualMachineConfiguration");
        std::vector<std::string> uris;
        const Json& ju = JGet(JGet(vmc, "osDisk"), "imageUris");
        if (ju.is_array()) {
          for (const Json& u : ju.array_items()) uris.push_back(u.string_value());
        }
        std::string image_id = batch::PoolImageIdOf(p);
        // The limits hold at every resize; a deleted image is not refused
        // here but fails the allocation (AllocationFailed), as in Batch.
        if (!image_id.empty()) {
          RETURN_IF_ERROR(
              WithTarget(batch::CheckImageLimits(txn, req.id, image_id, d, l,
                                                 "targetDedicatedNodes", "targetLowPriorityNodes"),
                         "targetDedicatedNodes"));
        } else {
          RETURN_IF_ERROR(WithTarget(
              batch::CheckVhdCapacity(uris, d + l, "virtualMachineConfiguration.osDisk.imageUris"),
              "targetDedicatedNodes"));
        }
        p.Set("targetDedicatedNodes", Json::Int(d));
        p.Set("targetLowPriorityNodes", Json::Int(l));
        if (spec.resize_timeout_s) {
          p.Set("resizeTimeout", Json::String(batch::FormatIsoDuration(*spec.resize_timeout_s)));
          ext.Set("resizeTimeoutSeconds", Json::Int(*spec.resize_timeout_s));
        }
        ext.Set("nodeDeallocationOption",
                Json::String(std::string(batch::DeallocationName(spec.deallocation))));
        ext.Set("resizeSeq", Json::Int(JInt(ext, "resizeSeq") + 1));
        ext.Set("resizeStartUs", Json::Int(s.env->NowMicros()));
        p.Set("resizeErrors", Json::MakeArray());
        p.Set("allocationState", Json::String("resizing"));
        p.Set("allocationStateTransitionTime", Json::String(NowText(s)));
      }
      ASSIGN_OR_RETURN(ticket, EnsureControl(s, txn, r, req.wait));
      return txn.Replace(r);
    });
    if (!st.ok()) return WithTarget(st, req.id.ToString());
    RETURN_IF_ERROR(FinishControl(s, req, ticket));
    return Reply(s, req, req.wait ? 200 : 202, ticket);
  }

 private:
  StatusOr<Response> Reply(Services& s, const Request& req, int status,
                           const ControlTicket& ticket) {
    Response out;
    Status st = s.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource r, GetPool(txn, req.id));
      out = ResourceResponse(status, PoolJson(r), r);
      return Status::Ok();
    });
    if (!st.ok()) return WithTarget(st, req.id.ToString());
    out.operation_id = ticket.operation_id;
    return out;
  }
};

// ---- nodes ---------------------------------------------------------------------

class NodeProvider final : public Provider {
 public:
  std::string_view Type() const override { return batch::kNodeType; }
  std::vector<std::string> ApiVersions() const override { return BatchApiVersions(); }

  StatusOr<Response> Get(Services& s, const Request& req) override {
    return GetOne(
        s, req, kPoolRead,
        [&](meta::Transaction& txn) -> StatusOr<meta::Resource> {
          RETURN_IF_ERROR(GetPool(txn, req.id.Parent()).status());
          auto r = txn.Get(req.id);
          if (!r.ok() && r.status().code() == StatusCode::kNotFound) {
            return NotFoundError("the node " + req.id.name() + " is not in pool " +
                                 req.id.Parent().name() +
                                 "; list them with imagesmith batch node list");
          }
          return r;
        },
        BatchChildJson);
  }
  StatusOr<Response> List(Services& s, const Request& req) override {
    return ListAll(
        s, req, kPoolRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          RETURN_IF_ERROR(GetPool(txn, req.id).status());
          return txn.ListChildren(req.id, batch::kNodeType);
        },
        BatchChildJson);
  }
  // Removes the node from the pool (and lowers the pool's target by one,
  // as Batch's removenodes does). Body: {"nodeDeallocationOption"}.
  StatusOr<Response> Delete(Services& s, const Request& req) override {
    return Act(s, req, "delete");
  }
  StatusOr<Response> Action(Services& s, const Request& req) override {
    if (EqualsIgnoreCase(req.action, "reboot")) return Act(s, req, "reboot");
    if (EqualsIgnoreCase(req.action, "reimage")) return Act(s, req, "reimage");
    if (EqualsIgnoreCase(req.action, "disableScheduling")) {
      return Act(s, req, "disableScheduling");
    }
    if (EqualsIgnoreCase(req.action, "enableScheduling")) return Act(s, req, "enableScheduling");
    return ArmStatus(StatusCode::kNotFound, "InvalidAction",
                     "Batch nodes have no action '" + req.action +
                         "' (reboot, reimage, disableScheduling, enableScheduling)");
  }

 private:
  StatusOr<Response> Act(Services& s, const Request& req, const std::string& action) {
    std::string option = "requeue";
    if (req.body.is_object()) {
      ASSIGN_OR_RETURN(BodyObject body, BodyObject::At(&req.body, ""));
      RETURN_IF_ERROR(body.AllowOnly({"nodeDeallocationOption", "nodeRebootOption",
                                      "nodeReimageOption", "nodeDisableSchedulingOption"}));
      for (const char* key : {"nodeDeallocationOption", "nodeRebootOption", "nodeReimageOption",
                              "nodeDisableSchedulingOption"}) {
        ASSIGN_OR_RETURN(std::optional<std::string> v, body.String(key));
        if (!v.has_value()) continue;
        // BodyError names the field; the message says only what is wrong.
        auto parsed = batch::ParseDeallocation(*v, key);
        const bool scheduling = std::string_view(key) == "nodeDisableSchedulingOption";
        if (scheduling && (!parsed.ok() || *parsed == batch::DeallocationOption::kRetainedData)) {
          return BodyError(key, "'" + *v +
                                    "' is not a scheduling option; use requeue, terminate or "
                                    "taskcompletion");
        }
        if (!parsed.ok()) {
          return BodyError(key, "'" + *v +
                                    "' is not a node deallocation option; use requeue, terminate, "
                                    "taskcompletion or retaineddata");
        }
        option = std::string(batch::DeallocationName(*parsed));
      }
    }
    ControlTicket ticket;
    Response out;
    Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, req, kPoolWrite, req.id.Parent()));
      ASSIGN_OR_RETURN(meta::Resource pool, GetPool(txn, req.id.Parent()));
      auto node = txn.Get(req.id);
      if (!node.ok()) {
        if (node.status().code() != StatusCode::kNotFound) return node.status();
        return NotFoundError("the node " + req.id.name() + " is not in pool " + pool.id.name());
      }
      std::string state = JStr(node->properties, "state");
      if (action != "delete" && (state == "leavingpool" || state == "creating")) {
        std::string what = action == "reboot"    ? "rebooted"
                           : action == "reimage" ? "reimaged"
                                                 : "changed (" + action + ")";
        return FailedPreconditionError("the node " + req.id.name() + " is " + state +
                                       "; it cannot be " + what + " now");
      }
      Json& ext = JObj(pool.properties, "imagesmith");
      Json entry = Json::MakeObject();
      entry.Set("action", Json::String(action));
      entry.Set("nodeDeallocationOption", Json::String(option));
      JObj(ext, "nodeActions").Set(req.id.name(), entry);
      if (action == "delete") {
        const char* key = JBool(node->properties, "isDedicated", true) ? "targetDedicatedNodes"
                                                                       : "targetLowPriorityNodes";
        pool.properties.Set(key, Json::Int(std::max<int64_t>(0, JInt(pool.properties, key) - 1)));
      }
      ASSIGN_OR_RETURN(ticket, EnsureControl(s, txn, pool, req.wait));
      RETURN_IF_ERROR(txn.Replace(pool));
      out = ResourceResponse(202, BatchChildJson(*node), *node);
      return Status::Ok();
    });
    if (!st.ok()) return WithTarget(st, req.id.ToString());
    RETURN_IF_ERROR(FinishControl(s, req, ticket));
    if (req.wait) {
      Status read = s.meta->Read([&](meta::Transaction& txn) -> Status {
        auto node = txn.Get(req.id);
        if (!node.ok()) {
          out = DeleteResponse(true);
          return Status::Ok();
        }
        out = ResourceResponse(200, BatchChildJson(*node), *node);
        return Status::Ok();
      });
      RETURN_IF_ERROR(read);
    }
    out.operation_id = ticket.operation_id;
    return out;
  }
};

}  // namespace

std::vector<std::string> BatchApiVersions() { return {"2023-05-01", "2024-02-01", "2024-07-01"}; }

Json PoolJson(const meta::Resource& r) {
  Json out = r.ToJson();
  Json* props = out.Find("properties");
  if (props != nullptr && props->is_object()) {
    Json* ext = props->Find("imagesmith");
    if (ext != nullptr && ext->is_object()) {
      Json keep = Json::MakeObject();
      keep.Set("nodeDriver", JGet(*ext, "nodeDriver"));
      if (!JStr(*ext, "operationId").empty()) keep.Set("operationId", JGet(*ext, "operationId"));
      *ext = keep;
    }
  }
  return out;
}

Json BatchChildJson(const meta::Resource& r) {
  Json out = r.ToJson();
  Json* props = out.Find("properties");
  if (props != nullptr && props->is_object()) {
    Json* ext = props->Find("imagesmith");
    if (ext != nullptr && ext->is_object()) {
      Json keep = Json::MakeObject();
      for (const char* key : {"hostname", "mac", "osRelease", "imageId"}) {
        if (ext->Find(key) != nullptr) keep.Set(key, *ext->Find(key));
      }
      const Json& runtime = JGet(*ext, "runtime");
      if (runtime.is_object()) {
        keep.Set("driver", JGet(runtime, "driver"));
        if (JInt(runtime, "pid") > 0) keep.Set("pid", JGet(runtime, "pid"));
      }
      if (keep.object_items().empty()) {
        JErase(*props, "imagesmith");
      } else {
        *ext = keep;
      }
    }
  }
  return out;
}

StatusOr<meta::Resource> GetAccount(meta::Transaction& txn, const ResourceId& account) {
  auto r = txn.Get(account);
  if (r.ok() || r.status().code() != StatusCode::kNotFound) return r;
  return NotFoundError("the Batch account " + account.name() + " does not exist in group " +
                       account.resource_group() +
                       "; 'imagesmith batch pool create' makes it, or 'imagesmith batch account "
                       "create'");
}

StatusOr<meta::Resource> GetPool(meta::Transaction& txn, const ResourceId& pool,
                                 const std::string& target) {
  auto r = txn.Get(pool);
  if (r.ok() || r.status().code() != StatusCode::kNotFound) return r;
  std::string where = target.empty() ? "" : target + ": ";
  return NotFoundError(where + "the pool " + pool.name() + " does not exist in Batch account " +
                       pool.Parent().name() + "; list pools with 'imagesmith batch pool list'");
}

StatusOr<ControlTicket> EnsureControl(Services& s, meta::Transaction& txn, meta::Resource& pool,
                                      bool held) {
  Json& ext = JObj(pool.properties, "imagesmith");
  std::string current = JStr(ext, "operationId");
  ControlTicket ticket;
  if (!current.empty()) {
    auto row = txn.GetOperation(current);
    if (row.ok()) {
      Operation op = OperationFromRow(*row);
      if (!op.done() && (!Operations::Abandoned(op, s.env->NowMicros()) || op.owner.empty())) {
        // A live worker runs it, or it is queued: it will see the change.
        ticket.operation_id = op.id;
        return ticket;
      }
    }
  }
  Json input = Json::MakeObject();
  ASSIGN_OR_RETURN(Operation op, s.operations->StartIn(txn, kPoolControlOperation, pool.id,
                                                       pool.location, input, held));
  ext.Set("operationId", Json::String(op.id));
  ticket.operation_id = op.id;
  ticket.run_here = held;
  return ticket;
}

Status FinishControl(Services& s, const Request& req, const ControlTicket& ticket) {
  if (!req.wait || ticket.operation_id.empty()) return Status::Ok();
  StatusOr<Operation> done =
      ticket.run_here ? s.operations->Execute(ticket.operation_id, req.progress, req.interrupt)
                      : s.operations->Wait(ticket.operation_id, 24LL * 3600 * 1000000);
  if (!done.ok()) return done.status();
  if (done->status == OperationStatus::kFailed && done->error.has_value()) {
    return InternalError("the pool's controller failed: " + done->error->message);
  }
  return Status::Ok();
}

std::unique_ptr<Provider> NewBatchAccountProvider() { return std::make_unique<AccountProvider>(); }
std::unique_ptr<Provider> NewBatchPoolProvider() { return std::make_unique<PoolProvider>(); }
std::unique_ptr<Provider> NewBatchNodeProvider() { return std::make_unique<NodeProvider>(); }

}  // namespace imagesmith::api
