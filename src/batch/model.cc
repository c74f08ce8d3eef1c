#include "batch/model.h"

#include <cctype>

#include "base/strings.h"
#include "fleet/rollout.h"

namespace imagesmith::batch {

StatusOr<int64_t> ParseIsoDuration(std::string_view text, const std::string& path) {
  // The fleet layer's parser (rollout policies use it too), in whole seconds.
  StatusOr<int64_t> us = fleet::ParseIsoDurationUs(text, path);
  if (!us.ok()) {
    return InvalidArgumentError(path + ": '" + std::string(text) +
                                "' is not an ISO 8601 duration; write it as Batch does, e.g. "
                                "PT15M, PT1H30M or P1D");
  }
  return us.value() / 1'000'000;
}

std::string FormatIsoDuration(int64_t seconds) {
  std::string out = "PT";
  if (seconds >= 3600) out += std::to_string(seconds / 3600) + "H";
  if (seconds % 3600 >= 60) out += std::to_string(seconds % 3600 / 60) + "M";
  if (seconds % 60 != 0 || seconds == 0) out += std::to_string(seconds % 60) + "S";
  return out;
}

Json CommandSpec::ToJson(bool start_task) const {
  Json out = Json::MakeObject();
  out.Set("commandLine", Json::String(command_line));
  Json env = Json::MakeArray();
  for (const EnvironmentSetting& e : environment) {
    Json item = Json::MakeObject();
    item.Set("name", Json::String(e.name));
    item.Set("value", Json::String(e.value));
    env.Append(item);
  }
  out.Set("environmentSettings", env);
  Json auto_user = Json::MakeObject();
  auto_user.Set("scope", Json::String("pool"));
  auto_user.Set("elevationLevel", Json::String(admin ? "admin" : "nonadmin"));
  Json identity = Json::MakeObject();
  identity.Set("autoUser", auto_user);
  out.Set("userIdentity", identity);
  if (start_task) {
    out.Set("maxTaskRetryCount", Json::Int(max_task_retry_count));
    out.Set("waitForSuccess", Json::Bool(wait_for_success));
  } else {
    Json constraints = Json::MakeObject();
    constraints.Set("maxTaskRetryCount", Json::Int(max_task_retry_count));
    out.Set("constraints", constraints);
  }
  return out;
}

std::string_view DeallocationName(DeallocationOption option) {
  switch (option) {
    case DeallocationOption::kRequeue:
      return "requeue";
    case DeallocationOption::kTerminate:
      return "terminate";
    case DeallocationOption::kTaskCompletion:
      return "taskcompletion";
    case DeallocationOption::kRetainedData:
      return "retaineddata";
  }
  return "requeue";
}

StatusOr<DeallocationOption> ParseDeallocation(std::string_view text, const std::string& path) {
  for (DeallocationOption o :
       {DeallocationOption::kRequeue, DeallocationOption::kTerminate,
        DeallocationOption::kTaskCompletion, DeallocationOption::kRetainedData}) {
    if (EqualsIgnoreCase(text, DeallocationName(o))) return o;
  }
  return InvalidArgumentError(path + ": '" + std::string(text) +
                              "' is not a node deallocation option; use requeue, terminate, "
                              "taskcompletion or retaineddata");
}

const std::vector<std::string>& KnownNodeAgentSkus() {
  static const std::vector<std::string> kSkus = {
      "batch.node.debian 12",    "batch.node.debian 11", "batch.node.ubuntu 22.04",
      "batch.node.ubuntu 20.04", "batch.node.el 8",      "batch.node.windows amd64"};
  return kSkus;
}

std::vector<std::string> FittingNodeAgentSkus(std::string_view os_type) {
  if (EqualsIgnoreCase(os_type, "Windows")) return {"batch.node.windows amd64"};
  return {"batch.node.debian 12"};
}

bool SkuFitsOsRelease(std::string_view sku, std::string_view id, std::string_view version_id) {
  std::string want = "batch.node." + AsciiToLower(id) + " ";
  if (!StartsWithIgnoreCase(sku, want)) return false;
  std::string_view ver = sku.substr(want.size());
  // "12" fits VERSION_ID "12"; "22.04" fits "22.04"; "8" fits "8.9".
  return StartsWith(version_id, ver) &&
         (version_id.size() == ver.size() || version_id[ver.size()] == '.');
}

std::string TaskFilesDir(const std::string& data_dir, const ResourceId& task) {
  ResourceId job = task.Parent();
  return data_dir + "/batch/accounts/" + AsciiToLower(job.Parent().name()) + "/jobs/" +
         AsciiToLower(job.name()) + "/" + AsciiToLower(task.name());
}

std::string NodeDir(const std::string& data_dir, const std::string& node) {
  return data_dir + "/batch/nodes/" + node;
}

Status ValidateBatchId(std::string_view id, std::string_view what) {
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  }
  if (ok) return Status::Ok();
  return InvalidArgumentError(std::string(what) + ": '" + std::string(id) +
                              "' is not a valid ID; use 1-64 letters, digits, hyphens and "
                              "underscores");
}

}  // namespace imagesmith::batch
