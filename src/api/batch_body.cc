#include "api/batch_body.h"

#include "api/body.h"
#include "base/strings.h"
#include "fleet/node_driver.h"

namespace imagesmith::api {
namespace {

// Read-only members a pool GET returns; accepted and ignored.
const std::vector<std::string_view> kPoolReadOnly = {"url",
                                                     "eTag",
                                                     "lastModified",
                                                     "creationTime",
                                                     "state",
                                                     "stateTransitionTime",
                                                     "allocationState",
                                                     "allocationStateTransitionTime",
                                                     "currentDedicatedNodes",
                                                     "currentLowPriorityNodes",
                                                     "resizeErrors",
                                                     "provisioningState",
                                                     "provisioningStateTransitionTime",
                                                     "currentNodeCount"};

StatusOr<int64_t> Count(const BodyObject& obj, std::string_view key, int64_t fallback) {
  ASSIGN_OR_RETURN(std::optional<int64_t> n, obj.Int(key));
  if (!n.has_value()) return fallback;
  if (*n < 0) {
    return BodyError(obj.PathOf(key), "must not be negative (got " + std::to_string(*n) + ")");
  }
  return *n;
}

Status Wrap(const Status& s, const std::string& path) {
  if (s.ok()) return s;
  std::string msg = s.message();
  if (StartsWith(msg, path + ": ")) msg = msg.substr(path.size() + 2);
  return BodyError(path, msg);
}

StatusOr<int64_t> Timeout(const BodyObject& obj, std::string_view key, int64_t fallback) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, obj.String(key));
  if (!text.has_value()) return fallback;
  std::string path = obj.PathOf(key);
  auto seconds = batch::ParseIsoDuration(*text, path);
  if (!seconds.ok()) return Wrap(seconds.status(), path);
  if (*seconds < batch::kMinResizeTimeoutSeconds) {
    return BodyError(path, "'" + *text + "' is shorter than Batch's minimum of PT5M; use PT5M " +
                               "or more (the default is PT15M)");
  }
  return *seconds;
}

StatusOr<std::vector<batch::EnvironmentSetting>> EnvSettings(const BodyObject& obj) {
  std::vector<batch::EnvironmentSetting> out;
  const Json* v = obj.Find("environmentSettings");
  if (v == nullptr) return out;
  std::string path = obj.PathOf("environmentSettings");
  if (!v->is_array()) return BodyError(path, "expected an array of {name, value}");
  for (size_t i = 0; i < v->array_items().size(); ++i) {
    ASSIGN_OR_RETURN(BodyObject item,
                     BodyObject::At(&v->array_items()[i], path + "[" + std::to_string(i) + "]"));
    RETURN_IF_ERROR(item.AllowOnly({"name", "value"}));
    batch::EnvironmentSetting e;
    ASSIGN_OR_RETURN(e.name, item.RequiredString("name"));
    ASSIGN_OR_RETURN(std::optional<std::string> value, item.String("value"));
    e.value = value.value_or("");
    out.push_back(std::move(e));
  }
  return out;
}

StatusOr<bool> Admin(const BodyObject& obj) {
  ASSIGN_OR_RETURN(BodyObject identity, obj.Object("userIdentity"));
  RETURN_IF_ERROR(identity.AllowOnly({"autoUser", "userName"}));
  if (identity.Has("userName")) {
    return BodyError(identity.PathOf("userName"),
                     "named user accounts are not supported; use autoUser");
  }
  ASSIGN_OR_RETURN(BodyObject auto_user, identity.Object("autoUser"));
  RETURN_IF_ERROR(auto_user.AllowOnly({"scope", "elevationLevel"}));
  ASSIGN_OR_RETURN(std::optional<std::string> level, auto_user.String("elevationLevel"));
  if (!level.has_value() || EqualsIgnoreCase(*level, "nonadmin")) return false;
  if (EqualsIgnoreCase(*level, "admin")) return true;
  return BodyError(auto_user.PathOf("elevationLevel"), "'" + *level +
                                                           "' is not an elevation level; use "
                                                           "admin or nonadmin");
}

StatusOr<batch::CommandSpec> StartTask(const BodyObject& st) {
  RETURN_IF_ERROR(st.AllowOnly({"commandLine", "environmentSettings", "maxTaskRetryCount",
                                "waitForSuccess", "userIdentity", "resourceFiles"}));
  if (const Json* rf = st.Find("resourceFiles");
      rf != nullptr && !(rf->is_array() && rf->array_items().empty())) {
    return BodyError(st.PathOf("resourceFiles"),
                     "resource files are not supported; put the files in the image");
  }
  batch::CommandSpec out;
  ASSIGN_OR_RETURN(out.command_line, st.RequiredString("commandLine"));
  if (TrimWhitespace(out.command_line).empty()) {
    return BodyError(st.PathOf("commandLine"), "must not be empty");
  }
  ASSIGN_OR_RETURN(out.environment, EnvSettings(st));
  ASSIGN_OR_RETURN(std::optional<int64_t> retries, st.Int("maxTaskRetryCount"));
  if (retries.has_value() && (*retries < -1 || *retries > 100)) {
    return BodyError(st.PathOf("maxTaskRetryCount"), "must be between -1 and 100");
  }
  out.max_task_retry_count = std::max<int64_t>(0, retries.value_or(0));
  ASSIGN_OR_RETURN(std::optional<bool> wait, st.Bool("waitForSuccess"));
  out.wait_for_success = wait.value_or(true);
  ASSIGN_OR_RETURN(out.admin, Admin(st));
  return out;
}

// virtualMachineConfiguration (data plane or deploymentConfiguration's).
Status VmConfig(const BodyObject& vmc, batch::PoolSpec& spec) {
  RETURN_IF_ERROR(vmc.AllowOnly({"imageReference", "nodeAgentSKUId", "nodeAgentSkuId", "osDisk",
                                 "dataDisks", "licenseType"}));
  ASSIGN_OR_RETURN(BodyObject ref, vmc.Object("imageReference"));
  RETURN_IF_ERROR(ref.AllowOnly(
      {"virtualMachineImageId", "id", "publisher", "offer", "sku", "version", "exactVersion"}));
  if (ref.Has("publisher") || ref.Has("offer") || ref.Has("sku")) {
    return BodyError(ref.PathOf("publisher"),
                     "Marketplace images are not served here; give a custom image with "
                     "virtualMachineImageId (a managed image or gallery image version ID)");
  }
  std::string key = ref.Has("id") ? "id" : "virtualMachineImageId";
  ASSIGN_OR_RETURN(std::optional<std::string> image, ref.String(key));
  spec.image_id = image.value_or("");
  spec.image_path = ref.PathOf(key);
  ASSIGN_OR_RETURN(BodyObject os_disk, vmc.Object("osDisk"));
  RETURN_IF_ERROR(os_disk.AllowOnly({"imageUris", "caching"}));
  if (const Json* uris = os_disk.Find("imageUris"); uris != nullptr) {
    std::string path = os_disk.PathOf("imageUris");
    if (!uris->is_array() || uris->array_items().empty()) {
      return BodyError(path, "expected a non-empty array of VHD file paths or file:// URIs");
    }
    for (const Json& u : uris->array_items()) {
      if (!u.is_string() || u.string_value().empty()) {
        return BodyError(path, "expected VHD file paths or file:// URIs (strings)");
      }
      spec.vhd_uris.push_back(u.string_value());
    }
    if (spec.image_path.empty() || spec.image_id.empty()) spec.image_path = path;
  }
  if (!spec.image_id.empty() && !spec.vhd_uris.empty()) {
    return BodyError(spec.image_path, "give either an image ID or osDisk.imageUris, not both");
  }
  if (spec.image_id.empty() && spec.vhd_uris.empty()) {
    return BodyError(ref.PathOf("virtualMachineImageId"),
                     "is required: the ID of a managed image or a gallery image version (or "
                     "VHD files in osDisk.imageUris)");
  }
  std::string sku_key = vmc.Has("nodeAgentSkuId") ? "nodeAgentSkuId" : "nodeAgentSKUId";
  spec.sku_path = vmc.PathOf(sku_key);
  ASSIGN_OR_RETURN(spec.node_agent_sku_id, vmc.RequiredString(sku_key));
  return Status::Ok();
}

}  // namespace

StatusOr<batch::PoolSpec> ParsePoolBody(const Json& body, const std::string& pool_name) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  batch::PoolSpec spec;
  BodyObject props = top;
  if (top.Has("properties")) {
    RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
    ASSIGN_OR_RETURN(props, top.Object("properties"));
    ASSIGN_OR_RETURN(std::optional<Region> location, top.Location());
    if (location.has_value()) spec.location = location->name();
  }
  std::vector<std::string_view> allowed = {"id",
                                           "displayName",
                                           "vmSize",
                                           "virtualMachineConfiguration",
                                           "deploymentConfiguration",
                                           "scaleSettings",
                                           "targetDedicatedNodes",
                                           "targetLowPriorityNodes",
                                           "resizeTimeout",
                                           "startTask",
                                           "taskSlotsPerNode",
                                           "maxTasksPerNode",
                                           "metadata",
                                           "imagesmith",
                                           "enableAutoScale",
                                           "enableInterNodeCommunication",
                                           "taskSchedulingPolicy",
                                           "location"};
  allowed.insert(allowed.end(), kPoolReadOnly.begin(), kPoolReadOnly.end());
  RETURN_IF_ERROR(props.AllowOnly(allowed));
  if (!top.Has("properties")) {
    ASSIGN_OR_RETURN(std::optional<Region> location, props.Location());
    if (location.has_value()) spec.location = location->name();
  }
  ASSIGN_OR_RETURN(std::optional<std::string> id, props.String("id"));
  if (id.has_value() && *id != pool_name) {
    return BodyError(props.PathOf("id"),
                     "'" + *id + "' differs from the pool's name '" + pool_name + "'");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> display, props.String("displayName"));
  spec.display_name = display.value_or("");
  ASSIGN_OR_RETURN(spec.vm_size, props.RequiredString("vmSize"));
  if (auto size = fleet::LookupVmSize(spec.vm_size); !size.ok()) {
    return BodyError(props.PathOf("vmSize"), size.status().message());
  } else {
    spec.vm_size = size->name;
  }
  ASSIGN_OR_RETURN(std::optional<bool> autoscale, props.Bool("enableAutoScale"));
  if (autoscale.value_or(false)) {
    return BodyError(props.PathOf("enableAutoScale"),
                     "autoscale formulas are not supported; give fixed target node counts");
  }
  if (props.Has("virtualMachineConfiguration")) {
    ASSIGN_OR_RETURN(BodyObject vmc, props.Object("virtualMachineConfiguration"));
    RETURN_IF_ERROR(VmConfig(vmc, spec));
  } else {
    ASSIGN_OR_RETURN(BodyObject dc, props.Object("deploymentConfiguration"));
    RETURN_IF_ERROR(dc.AllowOnly({"virtualMachineConfiguration"}));
    if (!dc.Has("virtualMachineConfiguration")) {
      return BodyError(props.PathOf("virtualMachineConfiguration"),
                       "is required (with imageReference.virtualMachineImageId and "
                       "nodeAgentSKUId)");
    }
    ASSIGN_OR_RETURN(BodyObject vmc, dc.Object("virtualMachineConfiguration"));
    RETURN_IF_ERROR(VmConfig(vmc, spec));
  }
  BodyObject counts = props;
  if (props.Has("scaleSettings")) {
    ASSIGN_OR_RETURN(BodyObject scale, props.Object("scaleSettings"));
    RETURN_IF_ERROR(scale.AllowOnly({"fixedScale"}));
    ASSIGN_OR_RETURN(counts, scale.Object("fixedScale"));
    RETURN_IF_ERROR(counts.AllowOnly({"targetDedicatedNodes", "targetLowPriorityNodes",
                                      "resizeTimeout", "nodeDeallocationOption"}));
  }
  ASSIGN_OR_RETURN(spec.target_dedicated, Count(counts, "targetDedicatedNodes", 0));
  ASSIGN_OR_RETURN(spec.target_low_priority, Count(counts, "targetLowPriorityNodes", 0));
  spec.dedicated_path = counts.PathOf("targetDedicatedNodes");
  spec.low_priority_path = counts.PathOf("targetLowPriorityNodes");
  ASSIGN_OR_RETURN(spec.resize_timeout_s,
                   Timeout(counts, "resizeTimeout", batch::kDefaultResizeTimeoutSeconds));
  if (props.Has("startTask")) {
    ASSIGN_OR_RETURN(BodyObject st, props.Object("startTask"));
    ASSIGN_OR_RETURN(batch::CommandSpec start, StartTask(st));
    spec.start_task = std::move(start);
  }
  std::string slots_key = props.Has("taskSlotsPerNode") ? "taskSlotsPerNode" : "maxTasksPerNode";
  ASSIGN_OR_RETURN(std::optional<int64_t> slots, props.Int(slots_key));
  if (slots.has_value() && (*slots < 1 || *slots > 256)) {
    return BodyError(props.PathOf(slots_key), "must be between 1 and 256");
  }
  spec.task_slots_per_node = slots.value_or(1);
  if (const Json* md = props.Find("metadata"); md != nullptr) {
    std::string path = props.PathOf("metadata");
    if (!md->is_array()) return BodyError(path, "expected an array of {name, value}");
    for (size_t i = 0; i < md->array_items().size(); ++i) {
      ASSIGN_OR_RETURN(BodyObject item,
                       BodyObject::At(&md->array_items()[i], path + "[" + std::to_string(i) + "]"));
      RETURN_IF_ERROR(item.AllowOnly({"name", "value"}));
      RETURN_IF_ERROR(item.RequiredString("name").status());
    }
    spec.metadata = *md;
  }
  ASSIGN_OR_RETURN(BodyObject ext, props.Object("imagesmith"));
  RETURN_IF_ERROR(ext.AllowOnly({"nodeDriver", "operationId", "resizeSeq", "resizeStartUs",
                                 "resizeTimeoutSeconds", "nodeDeallocationOption", "nodeActions",
                                 "stopRequested"}));
  ASSIGN_OR_RETURN(std::optional<std::string> driver, ext.String("nodeDriver"));
  spec.node_driver = AsciiToLower(driver.value_or("qemu"));
  if (spec.node_driver != "qemu" && spec.node_driver != "sim") {
    return BodyError(ext.PathOf("nodeDriver"),
                     "'" + *driver + "' is not a node driver; use qemu or sim");
  }
  return spec;
}

StatusOr<batch::ResizeSpec> ParseResizeBody(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly({"targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout",
                                 "nodeDeallocationOption"}));
  batch::ResizeSpec out;
  if (top.Has("targetDedicatedNodes")) {
    ASSIGN_OR_RETURN(int64_t n, Count(top, "targetDedicatedNodes", 0));
    out.target_dedicated = n;
  }
  if (top.Has("targetLowPriorityNodes")) {
    ASSIGN_OR_RETURN(int64_t n, Count(top, "targetLowPriorityNodes", 0));
    out.target_low_priority = n;
  }
  if (top.Has("resizeTimeout")) {
    ASSIGN_OR_RETURN(int64_t t, Timeout(top, "resizeTimeout", 0));
    out.resize_timeout_s = t;
  }
  ASSIGN_OR_RETURN(std::optional<std::string> option, top.String("nodeDeallocationOption"));
  if (option.has_value()) {
    auto parsed = batch::ParseDeallocation(*option, "nodeDeallocationOption");
    if (!parsed.ok()) return Wrap(parsed.status(), "nodeDeallocationOption");
    out.deallocation = *parsed;
  }
  return out;
}

StatusOr<batch::JobSpec> ParseJobBody(const Json& body, const std::string& job_name) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  BodyObject props = top;
  if (top.Has("properties")) {
    RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
    ASSIGN_OR_RETURN(props, top.Object("properties"));
  }
  RETURN_IF_ERROR(props.AllowOnly({"id", "displayName", "poolInfo", "priority", "metadata", "state",
                                   "stateTransitionTime", "creationTime", "url", "eTag",
                                   "lastModified", "executionInfo", "onAllTasksComplete"}));
  ASSIGN_OR_RETURN(std::optional<std::string> id, props.String("id"));
  if (id.has_value() && *id != job_name) {
    return BodyError(props.PathOf("id"),
                     "'" + *id + "' differs from the job's name '" + job_name + "'");
  }
  batch::JobSpec out;
  ASSIGN_OR_RETURN(BodyObject pool_info, props.Object("poolInfo"));
  RETURN_IF_ERROR(pool_info.AllowOnly({"poolId"}));
  ASSIGN_OR_RETURN(out.pool_id, pool_info.RequiredString("poolId"));
  ASSIGN_OR_RETURN(std::optional<std::string> display, props.String("displayName"));
  out.display_name = display.value_or("");
  ASSIGN_OR_RETURN(std::optional<int64_t> priority, props.Int("priority"));
  if (priority.has_value() && (*priority < -1000 || *priority > 1000)) {
    return BodyError(props.PathOf("priority"), "must be between -1000 and 1000");
  }
  out.priority = priority.value_or(0);
  return out;
}

StatusOr<batch::TaskSpec> ParseTaskBody(const Json& body, const std::string& task_name) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  BodyObject props = top;
  if (top.Has("properties")) {
    RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
    ASSIGN_OR_RETURN(props, top.Object("properties"));
  }
  RETURN_IF_ERROR(props.AllowOnly({"id", "displayName", "commandLine", "environmentSettings",
                                   "userIdentity", "constraints", "requiredSlots", "resourceFiles",
                                   "state", "stateTransitionTime", "creationTime", "executionInfo",
                                   "nodeInfo", "url", "eTag", "lastModified"}));
  ASSIGN_OR_RETURN(std::optional<std::string> id, props.String("id"));
  if (id.has_value() && *id != task_name) {
    return BodyError(props.PathOf("id"),
                     "'" + *id + "' differs from the task's name '" + task_name + "'");
  }
  if (const Json* rf = props.Find("resourceFiles");
      rf != nullptr && !(rf->is_array() && rf->array_items().empty())) {
    return BodyError(props.PathOf("resourceFiles"),
                     "resource files are not supported; put the files in the image");
  }
  batch::TaskSpec out;
  ASSIGN_OR_RETURN(out.command.command_line, props.RequiredString("commandLine"));
  if (TrimWhitespace(out.command.command_line).empty()) {
    return BodyError(props.PathOf("commandLine"), "must not be empty");
  }
  ASSIGN_OR_RETURN(out.command.environment, EnvSettings(props));
  ASSIGN_OR_RETURN(out.command.admin, Admin(props));
  ASSIGN_OR_RETURN(BodyObject constraints, props.Object("constraints"));
  RETURN_IF_ERROR(
      constraints.AllowOnly({"maxTaskRetryCount", "maxWallClockTime", "retentionTime"}));
  ASSIGN_OR_RETURN(std::optional<int64_t> retries, constraints.Int("maxTaskRetryCount"));
  if (retries.has_value() && (*retries < -1 || *retries > 100)) {
    return BodyError(constraints.PathOf("maxTaskRetryCount"), "must be between -1 and 100");
  }
  out.command.max_task_retry_count = std::max<int64_t>(0, retries.value_or(0));
  ASSIGN_OR_RETURN(std::optional<int64_t> slots, props.Int("requiredSlots"));
  if (slots.has_value() && (*slots < 1 || *slots > 256)) {
    return BodyError(props.PathOf("requiredSlots"), "must be between 1 and 256");
  }
  out.required_slots = slots.value_or(1);
  ASSIGN_OR_RETURN(std::optional<std::string> display, props.String("displayName"));
  out.display_name = display.value_or("");
  return out;
}

}  // namespace imagesmith::api
