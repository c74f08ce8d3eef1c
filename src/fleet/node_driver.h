// The fleet layer's contract: a node driver makes, watches and removes the
// machines that pools (issue 12), node types and clusters (issue 13) are
// made of. Two drivers implement it:
//
//   qemu  real VMs booted from an image's disk through its firmware, on a
//         qcow2 overlay whose backing file is the image's regional disk
//         (made once from the store, shared by every node that uses it).
//         Nodes outlive the process that made them; a later process adopts
//         them by pid and process start time.
//   sim   no processes: boot time, failures and preemption come from the
//         driver's settings, for controllers at thousands of nodes.
//
// A driver is mechanism only: it knows nothing of pools, targets, start
// tasks or deadlines. Controllers (src/batch/, later node types and
// clusters) keep node records in the metadata database and decide what
// happens next from what Observe reports.
//
// Thread-safety: every method may be called from several threads at once,
// for the same or different nodes. Nothing blocks for longer than the
// timeouts it is given. A driver object must outlive the calls into it:
// let RunTask calls finish (or cancel them) before destroying it.
// Destroying a qemu driver leaves its nodes running (adopt them later);
// Delete is what stops a node.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/statusor.h"

namespace imagesmith::fleet {

// How often a ready node reports that it is alive (the qemu node agent and
// sim both use it). Controllers declare a node lost after several missed
// heartbeats; doc/fleet.md gives the deadlines.
inline constexpr std::chrono::seconds kHeartbeatInterval{5};

// A VM size: the CPUs and memory a node gets. "Standard_D2s_v3" and the
// other sizes Batch examples use; doc/fleet.md lists them.
struct VmSize {
  std::string name;  // as the user wrote it, canonical case
  int cpus = 1;
  uint64_t memory_mb = 1024;
};
// InvalidArgument naming the size and listing the known ones when unknown.
// Case-insensitive ("STANDARD_D2_V3" is Standard_D2_v3); the result carries
// Azure's numbers (memory_mb as Azure has it). The qemu driver gives a guest
// less memory than that (QemuGuestMemoryMb below, doc/fleet.md).
StatusOr<VmSize> LookupVmSize(std::string_view name);
// Every known size, in table order.
const std::vector<VmSize>& KnownVmSizes();
// The memory a qemu guest of `size` gets: a quarter of Azure's, between 512
// and 2048 MiB, so that test pools fit on one host (doc/fleet.md).
uint64_t QemuGuestMemoryMb(const VmSize& size);

// What a node boots. For qemu, `disk` is a raw disk in imagesmith's layout
// (the regional disk, see RegionalDisks); sim only records it.
struct NodeImage {
  std::string image_id;  // the ARM ID of the managed image or gallery version
  std::string disk;      // path of the regional raw disk ("" for sim)
  bool uefi = false;     // hyperVGeneration V2
};

// Everything a driver needs to make one node. Controllers pick the names.
struct NodeSpec {
  std::string node_id;   // unique on this host, [a-z0-9_-]{1,64}: "tvmps_<hex>"
  std::string hostname;  // the guest's hostname
  std::string mac;       // "52:54:00:xx:xx:xx", unique on this host
  NodeImage image;
  VmSize size;
  bool low_priority = false;  // sim may preempt these
  std::string work_dir;       // exists; owned by the node: overlay, console, state
  // Tasks that may run at once (taskSlotsPerNode). qemu opens one agent
  // channel per slot, at most kMaxTaskChannels; more RunTasks wait for one.
  int task_slots = 1;
  // A data disk of this many GiB beside the OS disk (Service Fabric's
  // dataDiskSizeGB); 0: none. sim records it only. qemu makes a sparse raw
  // file <work_dir>/data.raw, formatted ext4 (label kDataDiskLabel) on the
  // host, attached as the second virtio disk and mounted by systemd at
  // kDataDiskMountPoint in the guest. Create makes it empty; Reimage keeps
  // it (only the OS overlay is replaced); Delete removes it.
  int64_t data_disk_gb = 0;
};
inline constexpr char kDataDiskLabel[] = "imagesmith-data";
inline constexpr char kDataDiskMountPoint[] = "/mnt/data";
// The largest data disk a node may have (Azure's largest managed disk).
inline constexpr int64_t kMaxDataDiskGb = 32767;
inline constexpr int kMaxTaskChannels = 30;

// The unprivileged auto-user (elevationLevel nonadmin) that qemu nodes run
// non-admin tasks as; the first such task on a node makes it.
inline constexpr char kAutoUser[] = "_azbatch";

// What identifies a running node's machine across processes. Kept by the
// controller in its node record (ToJson/FromJson) and handed to Adopt.
struct NodeRuntime {
  std::string driver;        // "qemu" | "sim"
  int64_t pid = 0;           // qemu's pid (0 for sim)
  uint64_t start_ticks = 0;  // /proc/<pid>/stat field 22, so a reused pid is not taken for it
  std::string agent_socket;  // the agent channel ("" for sim)
  int64_t created_us = 0;    // wall clock when Create returned
  Json ToJson() const;
  static StatusOr<NodeRuntime> FromJson(const Json& json);
};

// The guest as the node agent describes it in its hello.
struct GuestInfo {
  std::map<std::string, std::string> os_release;  // /etc/os-release: ID, VERSION_ID, ...
  std::string agent_version;
  std::string hostname;
};

// What the driver sees of a node now. Controllers turn this into Batch's
// node states (creating, starting, idle, unusable, unknown, ...).
struct NodeObservation {
  enum class Machine {
    kBooting,    // the machine runs; the agent has not said hello yet
    kReady,      // the agent said hello; heartbeats arrive
    kGone,       // the machine is not running (crashed, killed, never started)
    kPreempted,  // sim only: a low-priority node was taken away
  };
  Machine machine = Machine::kBooting;
  std::optional<GuestInfo> guest;  // after hello
  int64_t last_heartbeat_us = 0;   // wall clock of the last heartbeat; 0 before hello
  std::string detail;              // for errors: why kGone, the console's last lines
};

// A command to run in a node (a start task or a task), through the agent.
struct TaskSpec {
  std::string command_line;              // run by /bin/sh -c in the guest
  std::vector<std::string> environment;  // "KEY=VALUE"
  bool admin = true;        // autoUser elevationLevel admin: root; else an unprivileged auto-user
  std::string working_dir;  // in the guest; made if missing
  // Host files that receive the task's stdout and stderr as it runs
  // (appended, flushed per chunk), so they can be read while it runs.
  // Empty: that stream is discarded.
  std::string stdout_path;
  std::string stderr_path;
  std::chrono::milliseconds max_wall_clock{std::chrono::hours(24)};
};

struct TaskResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string failure;  // non-empty when the task could not be started at all
};

class NodeDriver {
 public:
  virtual ~NodeDriver() = default;
  virtual std::string_view Name() const = 0;  // "qemu" | "sim"

  // Starts the node's machine and returns without waiting for the boot.
  // ResourceExhausted when the host cannot fit the node's CPUs or memory
  // (the message gives what is asked, what is in use and the host's limit);
  // NotFound when the image's disk is missing. On error nothing is left.
  virtual StatusOr<NodeRuntime> Create(const NodeSpec& spec) = 0;
  // Takes over a node made by an earlier process (possibly SIGKILLed)
  // without rebooting it. NotFound when its machine is gone or its pid now
  // belongs to another process. qemu waits up to 15 s for the agent's
  // hello, so that a running node Observes as kReady right after Adopt.
  virtual Status Adopt(const NodeSpec& spec, const NodeRuntime& runtime) = 0;
  // Cheap; never blocks on the guest.
  virtual NodeObservation Observe(const std::string& node_id) = 0;
  // Runs a command in the node and waits for it (or `cancel`, which may be
  // null). Several may run at once on one node (taskSlotsPerNode).
  // FailedPrecondition when the node's agent is not ready; Cancelled when
  // `cancel` became true (the task is killed in the guest); Unavailable when
  // the node was lost (gone, preempted, deleted, agent channel broken) while
  // the task ran -- Batch requeues such a task. A task that ran and exited
  // non-zero, or ran past max_wall_clock (timed_out), is an OK result.
  virtual StatusOr<TaskResult> RunTask(const std::string& node_id, const TaskSpec& task,
                                       const std::atomic<bool>* cancel) = 0;
  // Restarts the guest on the same overlay (same machine process).
  virtual Status Reboot(const std::string& node_id) = 0;
  // Replaces the node's overlay with a fresh one on `image` and boots it.
  // For qemu this starts a new machine process: save Runtime() again after.
  virtual Status Reimage(const std::string& node_id, const NodeImage& image) = 0;
  // The node's runtime now (changes after Reimage). NotFound for a node this
  // driver object does not know (never made or adopted here, or deleted).
  virtual StatusOr<NodeRuntime> Runtime(const std::string& node_id) = 0;
  // Stops the machine and removes everything in its work_dir the driver
  // made. Idempotent: OK when the node is already gone.
  virtual Status Delete(const std::string& node_id) = 0;
};

// sim's behaviour. Times are drawn uniformly from [min, max].
struct SimSettings {
  std::chrono::milliseconds boot_min{std::chrono::milliseconds(200)};
  std::chrono::milliseconds boot_max{std::chrono::milliseconds(800)};
  double boot_failure_rate = 0;  // a node that never says hello
  // Per NodeImage::image_id, in place of boot_failure_rate for nodes
  // (re)booted on that image: "a v3 that does not boot" for rollouts.
  std::map<std::string, double> image_boot_failure_rate;
  double heartbeat_loss_rate = 0;  // per node, heartbeats stop after hello
  double preemption_rate = 0;      // per low-priority node and minute
  std::chrono::milliseconds task_duration{std::chrono::milliseconds(50)};
  std::map<std::string, std::string> os_release = {{"ID", "debian"}, {"VERSION_ID", "12"}};
  uint64_t seed = 1;
  // Healthy nodes report last_heartbeat_us on this grid after hello.
  std::chrono::milliseconds heartbeat_interval{kHeartbeatInterval};
  // From $IMAGESMITH_SIM_* variables (doc/fleet.md); defaults otherwise.
  // InvalidArgument naming the variable when one does not parse.
  static StatusOr<SimSettings> ParseEnv();
  // ParseEnv, or the defaults when a variable is bad (front ends should call
  // ParseEnv to report it).
  static SimSettings FromEnv();
};

std::unique_ptr<NodeDriver> MakeSimDriver(Env& env, SimSettings settings);
// `state_dir` holds the regional disks and the host-capacity ledger.
// `accel_cache` is the file that keeps the KVM-or-TCG verdict across processes
// (vm::ProbeAccel); front ends pass the data directory's, the one validation
// boots use, so a pool made from a validated image never probes again. Empty:
// `state_dir`/accel.json.
std::unique_ptr<NodeDriver> MakeQemuDriver(Env& env, std::string state_dir,
                                           std::string accel_cache = "");

// The regional disks qemu nodes boot from: one raw disk per (image, region),
// materialized from the store on first use and shared by every node; removed
// by Release when its last user lets go. Reference counts are kept in the
// metadata database so they survive restarts.
//   Acquire(image_id, region, user) -> path
//   Release(image_id, region, user)
// (Declared in regional_disks.h by the fleet layer.)

}  // namespace imagesmith::fleet
