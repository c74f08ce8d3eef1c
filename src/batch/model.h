// Batch pools, nodes, jobs and tasks as imagesmith stores them (doc/batch.md).
//
// A pool is the resource Microsoft.Batch/batchAccounts/pools; its properties
// are the data-plane pool of `az batch pool create --json-file` (id, vmSize,
// virtualMachineConfiguration, targetDedicatedNodes, startTask, ...) plus the
// read-only members Batch reports (state, allocationState, resizeErrors,
// currentDedicatedNodes, ...) and `imagesmith` (nodeDriver and controller
// state). Nodes are .../pools/{pool}/nodes/{node}, jobs
// .../batchAccounts/{account}/jobs/{job} and tasks .../jobs/{job}/tasks/{task}.
//
// This file holds the typed specs, names, states and limits Batch has;
// api/batch_body.h reads request bodies into these specs.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/resource_id.h"
#include "base/statusor.h"

namespace imagesmith::batch {

inline constexpr char kAccountType[] = "Microsoft.Batch/batchAccounts";
inline constexpr char kPoolType[] = "Microsoft.Batch/batchAccounts/pools";
inline constexpr char kNodeType[] = "Microsoft.Batch/batchAccounts/pools/nodes";
inline constexpr char kJobType[] = "Microsoft.Batch/batchAccounts/jobs";
inline constexpr char kTaskType[] = "Microsoft.Batch/batchAccounts/jobs/tasks";

// Batch's limits for custom-image pools (seed 003): nodes per image, shared
// by every pool that uses the same image.
inline constexpr int64_t kMaxDedicatedPerImage = 2500;
inline constexpr int64_t kMaxLowPriorityPerImage = 1000;
// Seed 004: one VHD serves at most 40 Linux VMs (20 Windows).
inline constexpr int64_t kLinuxNodesPerVhd = 40;
inline constexpr int64_t kWindowsNodesPerVhd = 20;
// resizeTimeout: default 15 minutes, at least 5.
inline constexpr int64_t kDefaultResizeTimeoutSeconds = 15 * 60;
inline constexpr int64_t kMinResizeTimeoutSeconds = 5 * 60;
// Per-account core quotas when the account does not set its own.
inline constexpr int64_t kDefaultDedicatedCoreQuota = 10000;
inline constexpr int64_t kDefaultLowPriorityCoreQuota = 10000;

// ISO 8601 durations as Batch writes them ("PT15M", "PT1H30M", "P1D",
// "PT90S"); InvalidArgument naming `path` otherwise.
StatusOr<int64_t> ParseIsoDuration(std::string_view text, const std::string& path);
std::string FormatIsoDuration(int64_t seconds);

struct EnvironmentSetting {
  std::string name;
  std::string value;
};

// startTask and a task's own fields.
struct CommandSpec {
  std::string command_line;
  std::vector<EnvironmentSetting> environment;
  bool admin = false;  // userIdentity.autoUser.elevationLevel == admin
  int64_t max_task_retry_count = 0;
  bool wait_for_success = true;  // startTask only
  Json ToJson(bool start_task) const;
};

enum class DeallocationOption { kRequeue, kTerminate, kTaskCompletion, kRetainedData };
std::string_view DeallocationName(DeallocationOption option);
StatusOr<DeallocationOption> ParseDeallocation(std::string_view text, const std::string& path);

// A pool as created (what the user says). The image is either an image ID
// (managed image or gallery version) or VHD files (seed 004).
struct PoolSpec {
  std::string vm_size;
  std::string image_id;               // virtualMachineImageId / imageReference.id
  std::vector<std::string> vhd_uris;  // osDisk.imageUris (VHD pools)
  std::string image_path;             // JSON path of the image field, for errors
  std::string node_agent_sku_id;
  std::string sku_path;  // JSON path of nodeAgentSKUId
  int64_t target_dedicated = 0;
  int64_t target_low_priority = 0;
  int64_t resize_timeout_s = kDefaultResizeTimeoutSeconds;
  std::optional<CommandSpec> start_task;
  int64_t task_slots_per_node = 1;
  Json metadata = Json::MakeArray();  // [{name, value}]
  std::string node_driver = "qemu";   // properties.imagesmith.nodeDriver
  std::string location;               // "" = the account's
  std::string display_name;
  // The JSON paths the counts came from, for limit errors.
  std::string dedicated_path = "targetDedicatedNodes";
  std::string low_priority_path = "targetLowPriorityNodes";
};

// A resize (the body of Batch's POST /pools/{id}/resize).
struct ResizeSpec {
  std::optional<int64_t> target_dedicated;
  std::optional<int64_t> target_low_priority;
  std::optional<int64_t> resize_timeout_s;
  DeallocationOption deallocation = DeallocationOption::kRequeue;
};

// A task: id, commandLine, environmentSettings, userIdentity,
// constraints.maxTaskRetryCount, requiredSlots.
struct TaskSpec {
  CommandSpec command;
  int64_t required_slots = 1;
  std::string display_name;
};

// A job: id, poolInfo.poolId, displayName, priority.
struct JobSpec {
  std::string pool_id;
  std::string display_name;
  int64_t priority = 0;
};

// The node agent SKUs imagesmith knows, and the ones that fit an image of
// `os_type` (Linux images are Debian 12, the only platform imagesmith's
// catalog builds; the agent's hello checks the guest's /etc/os-release
// again).
const std::vector<std::string>& KnownNodeAgentSkus();
std::vector<std::string> FittingNodeAgentSkus(std::string_view os_type);
// Whether a guest's /etc/os-release (ID, VERSION_ID) fits `sku`.
bool SkuFitsOsRelease(std::string_view sku, std::string_view id, std::string_view version_id);

// Batch's node states.
inline constexpr std::string_view kNodeStates[] = {
    "creating", "starting", "waitingforstarttask", "idle",      "running",     "starttaskfailed",
    "unusable", "unknown",  "rebooting",           "reimaging", "leavingpool", "offline",
    "preempted"};

// ISO 8601 UTC time with milliseconds, "2026-11-29T18:01:02.123Z".
std::string FormatUtc(int64_t micros);

// Where a task's stdout.txt and stderr.txt are kept on the host:
// <data_dir>/batch/accounts/<account>/jobs/<job>/<task> (lowercase), and a
// node's work directory (its start task output is under startup/):
// <data_dir>/batch/nodes/<node>.
std::string TaskFilesDir(const std::string& data_dir, const ResourceId& task);
std::string NodeDir(const std::string& data_dir, const std::string& node);

// Names Batch accepts for pool, job and task IDs: 1-64 letters, digits,
// hyphens and underscores. InvalidArgument naming `what`.
Status ValidateBatchId(std::string_view id, std::string_view what);

}  // namespace imagesmith::batch
