// The build sandbox: runs Image Builder customizer commands as root inside an
// image tree, with its own mount, PID, UTS and IPC namespaces, a private /proc,
// a minimal /dev, the host's network and DNS configuration, and cgroup limits
// on memory, CPU and process count. When a run ends -- normally, on timeout or
// on cancel -- every process it started is gone, and no mount, loop device or
// cgroup directory is left behind.
//
// With Isolation::kBoundary (the default) it is also a security boundary for
// template content: root inside is an unprivileged host uid, capabilities
// are reduced, dangerous system calls are refused, and the network is the
// outside world's but not the host's (doc/sandbox.md says against what).
//
// Thread safety: every function here is thread-safe; several Run and
// RunHostWithTree calls may run concurrently from different threads (each uses
// its own namespaces, cgroup and temporary mount point). Callbacks
// (`on_line`) are invoked on the calling thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/statusor.h"

namespace imagesmith::sandbox {

// Resource limits for everything a run starts, enforced with a fresh cgroup
// (v1 or v2). Zero means "no limit" for memory and CPU.
struct Limits {
  int64_t memory_bytes = 0;  // RAM (and swap on v1 when accounted); 0 = no limit
  double cpus = 0;           // CPU time as a number of CPUs (1.5 = 150% of one); 0 = no limit
  int64_t max_pids = 4096;   // processes and threads at once; 0 = no limit
};

// What LimitsForVmSize chose and why.
struct VmSizeLimits {
  Limits limits;
  std::string vm_size;  // the canonical spelling of the size used ("Standard_D2ds_v4")
  bool known = true;    // false: the requested size is not in the table; the default was used
  std::string note;     // human-readable remarks: unknown size, capped to the host; "" if none
};

// The host's resources, for capping. DetectHost() reads them from sysconf.
struct HostResources {
  int64_t memory_bytes = 0;
  int cpus = 0;
};
HostResources DetectHost();

// Limits for an Azure VM size such as "Standard_D2s_v3" (case-insensitive).
// An empty `vm_size` means Image Builder's default: Standard_D1_v2 for
// hyperVGeneration V1 (`gen2` false) and Standard_D2ds_v4 for V2. A size not
// in the table (doc/sandbox.md lists it) gets the generation's default with
// known = false and a note naming the closest known size. Memory and CPUs are
// capped to `host` (the note says so). Never fails.
VmSizeLimits LimitsForVmSize(std::string_view vm_size, bool gen2, const HostResources& host);
VmSizeLimits LimitsForVmSize(std::string_view vm_size, bool gen2);  // capped to DetectHost()

// The names in the table, canonical spelling, sorted.
std::vector<std::string> KnownVmSizes();

// The image tree: an overlay of read-only layers (lowest first) plus one
// writable upper dir, mounted privately inside the sandbox's mount namespace
// (never visible on the host, and gone when the sandbox's processes are gone).
// With a single layer and no upper, the layer itself is bind-mounted
// read-only. `upper` and `work` are both set (writable tree; `work` must be an
// empty directory on the same filesystem as `upper`) or both empty (read-only
// view). Paths must be absolute and must not contain ',', ':' or '\'.
struct Tree {
  std::vector<std::string> layers;
  std::string upper;
  std::string work;
};

// A host file or directory made visible inside the tree. If `tree_path` does
// not exist in the tree, an empty placeholder (file or directory, matching the
// host path) is created for the mount and removed from `upper` afterwards, so
// the tree is not changed; this needs a writable tree (or a tree_path under
// /run, which is a private tmpfs) and an existing parent directory.
struct BindMount {
  std::string host_path;
  std::string tree_path;  // absolute, inside the tree
  bool read_only = true;
};

// How a command is fed and watched; shared by Run and RunHostWithTree.
struct ProcessControl {
  Limits limits;
  std::chrono::milliseconds timeout{0};  // 0 = none; on expiry every process is killed
  // Polled at least every 100 ms; when it becomes true every process is killed.
  // Borrowed; must outlive the call. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Called on the calling thread with each line of output (without '\n'; a
  // last unterminated line is delivered too) as it arrives.
  std::function<void(std::string_view line, bool is_stderr)> on_line;
  std::string stdin_data;  // written to the command's stdin, which is then closed
  // Cap on the stdout/stderr kept in RunResult each (on_line sees everything).
  size_t max_capture_bytes = 1 << 20;
};

// How far a Run is isolated from the host (doc/sandbox.md).
enum class Isolation {
  // The security boundary: a user namespace whose root is an unprivileged
  // host uid (the image's owners kept through idmapped mounts), a reduced
  // capability bounding set, no_new_privs, a seccomp filter whose refusals
  // are EPERM and named in RunResult::refused, and a network namespace of
  // its own (user-mode networking through pasta when `network` is set).
  kBoundary,
  // The sandbox before the boundary: real root with the caller's
  // capabilities and the host's network. Kept only to measure the
  // boundary's cost (bench/); never for templates one does not trust.
  kLegacy,
};

struct RunSpec {
  Tree tree;
  Isolation isolation = Isolation::kBoundary;
  // kBoundary: true gives the command the outside world through pasta
  // (Debian package passt) but not the host's loopback or abstract Unix
  // sockets; false gives it only a loopback of its own.
  bool network = true;
  // The host's resolver configuration, bound read-only at /etc/resolv.conf.
  // When it names a nameserver on the host's loopback (127.0.0.53 of
  // systemd-resolved), the sandbox instead gets a resolv.conf naming its own
  // 127.0.0.53, where a relay forwards queries to the host's nameservers
  // (doc/sandbox.md, "DNS"). Another path is for tests.
  std::string host_resolv_conf = "/etc/resolv.conf";
  // Run inside the tree (after pivot_root). argv[0] without '/' is looked up
  // on the PATH given in `env` (Debian's default PATH when `env` has none).
  std::vector<std::string> argv;
  // The whole environment inside; nothing is inherited. PATH is set to
  // Debian's default if absent, and gets ":/run/imagesmith/bin" appended when
  // the tree has no sudo (see `sudo` below).
  std::map<std::string, std::string> env;
  // A quota on what the run may write into the tree (its upper dir), e.g.
  // the image's disk size; 0 = none. A single file can never grow past it
  // (RLIMIT_FSIZE: the write fails with EFBIG), and the run is stopped when
  // the upper dir's blocks exceed it (checked every second) or when the
  // host filesystem under the upper dir falls below 512 MiB free (checked
  // every 100 ms), so the host keeps working. RunResult::disk_full says so.
  int64_t disk_limit_bytes = 0;
  std::string working_dir = "/";  // inside the tree; must exist
  std::string hostname = "imagesmith";
  std::vector<BindMount> binds;
  // If the tree has no `sudo` on PATH, provide a shim at
  // /run/imagesmith/bin/sudo (private tmpfs, never written into the tree)
  // that runs its arguments as root -- which the sandbox already is.
  bool sudo_shim = true;
  ProcessControl control;
};

// How a command ended. A command that fails is still an OK StatusOr<RunResult>.
struct RunResult {
  int exit_code = -1;   // valid when term_signal == 0 and !timed_out && !cancelled
  int term_signal = 0;  // the signal that ended the main process, or 0
  bool timed_out = false;
  bool cancelled = false;
  bool oom_killed = false;  // the memory cgroup killed a process during the run
  // Stopped because the tree outgrew RunSpec::disk_limit_bytes or the host's
  // filesystem ran low; disk_note says which, with the numbers.
  bool disk_full = false;
  std::string disk_note;
  std::chrono::milliseconds timeout{0};  // copied from the request, for Describe()
  int64_t memory_limit_bytes = 0;        // copied from the request, for Describe()
  std::string stdout_data;               // up to max_capture_bytes each
  std::string stderr_data;
  bool output_truncated = false;
  // Things the sandbox could not provide and adjusted for, e.g. "no
  // /etc/resolv.conf bound: it is a dangling symlink". Empty normally.
  std::vector<std::string> notes;
  // System calls the seccomp filter refused with EPERM, by name
  // ("mount", "init_module", "unshare(CLONE_NEWUSER)"), and how often.
  std::map<std::string, int> refused;

  bool success() const { return exit_code == 0 && term_signal == 0 && !timed_out && !cancelled; }
  // "exit status 3", "killed by signal 15 (Terminated)", "timed out after 5s",
  // "cancelled", "killed by the memory limit (512 MiB)"; a failure after a
  // refused system call adds "; the sandbox refused mount, reboot (EPERM)".
  std::string Describe() const;
  // "mount (2 times), reboot", or "" when nothing was refused.
  std::string RefusedList() const;
};

// Runs spec.argv as root inside the tree (root of a user namespace, see
// Isolation). Fails (Status) only when the
// sandbox could not be set up: InvalidArgument for a malformed spec,
// NotFound for a missing layer or bind source, PermissionDenied when not
// root, FailedPrecondition when a mount, the working directory or the cgroup
// could not be set up (the message names the step and the errno text). A
// command that is not found in the tree ends with exit status 127 and a
// message on stderr, like a shell. Blocks until every process of the run is
// gone. Requires root.
StatusOr<RunResult> Run(const RunSpec& spec);

// The host uid (and gid) that root inside a kBoundary run is: the start of
// imagesmith's subordinate id range (doc/sandbox.md). A host file given to a
// run through a bind mount is readable inside only by its mode's "other"
// bits, unless it is owned by this id (then root inside owns it). Fails like
// Run does for a bad /etc/subuid or /etc/subgid.
StatusOr<uint32_t> HostUidOfRootInside();

struct HostRunOptions {
  // Added to (or overriding) the inherited environment of the host program.
  std::map<std::string, std::string> extra_env;
  std::string working_dir;  // on the host; empty = inherit
  ProcessControl control;
};

// Runs a HOST program (not chrooted) that needs the merged tree, e.g.
// `mke2fs -d {tree}` or `tar -C {tree} -c .`, in a private mount and PID
// namespace where the tree is mounted at a temporary path; every argument
// that is exactly "{tree}" is replaced by that path (and "{tree}" inside a
// longer argument too). argv[0] is looked up on the host PATH. The mount is
// read-only when the tree has no upper dir. Same failure, kill, timeout and
// cleanup rules as Run. Requires root.
StatusOr<RunResult> RunHostWithTree(const Tree& tree, std::vector<std::string> argv,
                                    const HostRunOptions& options);

}  // namespace imagesmith::sandbox
