// The code that runs in the sandbox's first process (pid 1 of the new PID
// namespace, its "init") right after clone(). Internal to sandbox/.
//
// The parent clones from a possibly multi-threaded program without running
// fork handlers, so the child must not allocate or take any lock another
// thread may have held: everything it needs is computed by the parent into a
// ChildPlan (C strings, fd numbers) before the clone, and the child uses only
// system calls. It reports back through a pipe of fixed-size Report records.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace imagesmith::sandbox::internal {

enum class ReportKind : int32_t {
  kFatal = 1,    // setup failed; text names the step, err the errno
  kNote = 2,     // something the sandbox adjusted for; text explains
  kPlaceholder,  // text is a tree-relative path created as an empty mount point
  kExited,       // the main process ended; value is its wait status
  kListener,     // value is the init's fd number of the seccomp listener
};

// Written in one write(2) (smaller than PIPE_BUF, so never interleaved).
struct Report {
  int32_t kind = 0;
  int32_t err = 0;
  int32_t value = 0;
  char text[500] = {};
};

// A bind mount, with the target pre-split for placeholder creation.
struct ChildBind {
  const char* source = nullptr;         // host path
  const char* target = nullptr;         // tree-relative ("tmp/script.sh")
  const char* target_parent = nullptr;  // tree-relative parent ("tmp", or "." for the top)
  const char* target_leaf = nullptr;    // last component ("script.sh")
  bool is_dir = false;
  bool read_only = true;
};

struct ChildPlan {
  bool in_tree = true;  // Run: pivot into the tree. RunHostWithTree: stay on the host.
  const char* mount_point = nullptr;      // host directory the tree is mounted on
  const char* overlay_options = nullptr;  // null: bind-mount bind_layer read-only instead
  const char* layers_dir = nullptr;       // null, or where overlay_options' relative layers are
  const char* bind_layer = nullptr;
  bool writable = false;  // the tree has an upper dir
  const char* hostname = nullptr;
  // The boundary (doc/sandbox.md). userns_fd < 0: none of it (legacy mode).
  // Otherwise every path in idmap_paths is covered by an idmapped bind of
  // itself (disk id k shows as tree_root + k) before the overlay is mounted,
  // setup runs with fsuid/fsgid tree_root, and after pivot_root the init
  // enters the user namespace, unshares UTS and IPC, drops the bounding set
  // to keep_caps, sets no_new_privs and loads `seccomp` with a listener.
  int userns_fd = -1;
  uint32_t tree_root = 0;  // host uid/gid of root inside
  std::vector<const char*> idmap_paths;
  const char* dev_options = "mode=0755,size=1m";
  const char* run_options = "mode=0755";
  const char* devpts_options = "newinstance,ptmxmode=0666,mode=0620,gid=5";
  uint64_t keep_caps = ~uint64_t{0};
  const sock_fprog* seccomp = nullptr;
  uint64_t fsize_limit = 0;             // RLIMIT_FSIZE of the main process; 0 = unchanged
  const char* resolv_source = nullptr;  // host resolv.conf to bind, or null
  std::vector<ChildBind> binds;
  bool sudo_shim = false;
  const char* sudo_shim_text = nullptr;
  std::vector<const char*> sudo_probe;  // tree-relative paths where a real sudo would be
  const char* working_dir = nullptr;    // null: inherit
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  char* const* envp_with_shim = nullptr;
  std::vector<const char*> exec_paths;  // candidates for argv[0], in PATH order
  std::vector<const char*> exec_paths_with_shim;
  const char* oom_score_adj = nullptr;  // restored in the main process
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int report_fd = -1;
  int go_fd = -1;             // the child waits for one byte (the parent has set up its cgroup)
  std::vector<int> keep_fds;  // sorted: every fd above that the child needs
};

// Never returns. Exits 0 after reporting kExited, or 1 after kFatal.
[[noreturn]] void ChildMain(const ChildPlan& plan);

}  // namespace imagesmith::sandbox::internal
