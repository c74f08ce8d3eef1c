// Parent-side isolation: the id range, the user namespace, the seccomp
// program and its supervisor, and pasta. See isolation.h.
#include "sandbox/isolation.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "base/strings.h"

extern char** environ;

namespace imagesmith::sandbox::internal {
namespace {

// Refused with EPERM through the supervisor, which names them in the run log.
constexpr const char* kRefused[] = {
    // mounts: everything the sandbox mounts is in place before the filter
    "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr",
    // the kernel itself
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff",
    // file handles, eBPF, perf, keyrings
    "open_by_handle_at", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
    // clocks
    "settimeofday", "clock_settime", "clock_adjtime",
    // io_uring runs operations that the filter would not see
    "io_uring_setup", "io_uring_enter", "io_uring_register"};

std::string ReadSmallFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

StatusOr<IdRange> ParseSubordinateIds(const std::string& text, const std::string& file) {
  std::optional<IdRange> own;
  std::vector<std::pair<uint64_t, uint64_t>> others;
  int line_no = 0;
  for (const std::string& raw : Split(text, '\n')) {
    ++line_no;
    std::string_view line = TrimWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f = Split(line, ':');
    bool numeric = f.size() == 3 && IsAsciiDigits(f[1]) && IsAsciiDigits(f[2]) &&
                   f[1].size() <= 10 && f[2].size() <= 10;
    if (f.size() >= 1 && f[0] == "imagesmith") {
      if (!numeric) {
        return InvalidArgumentError(file + ":" + std::to_string(line_no) +
                                    ": expected imagesmith:<first id>:<count>");
      }
      uint64_t start = std::stoull(f[1]), count = std::stoull(f[2]);
      if (count < 65536 || start == 0 || start + count > (1ull << 32) - 1) {
        return InvalidArgumentError(file + ":" + std::to_string(line_no) +
                                    ": the imagesmith range needs at least 65536 ids, above 0 "
                                    "and below 2^32-1");
      }
      own = IdRange{static_cast<uint32_t>(start), 65536u};
    } else if (numeric) {
      others.emplace_back(std::stoull(f[1]), std::stoull(f[2]));
    }
  }
  if (own) return *own;
  for (const auto& [start, count] : others) {
    if (start < uint64_t{kDefaultIdRange.start} + kDefaultIdRange.count &&
        kDefaultIdRange.start < start + count) {
      return InvalidArgumentError(
          file + " gives ids " + std::to_string(start) + "-" + std::to_string(start + count - 1) +
          " to another user, overlapping imagesmith's default range " +
          std::to_string(kDefaultIdRange.start) + "-" +
          std::to_string(kDefaultIdRange.start + kDefaultIdRange.count - 1) +
          "; add a line imagesmith:<first id>:65536 with a free range");
    }
  }
  return kDefaultIdRange;
}

StatusOr<IdRange> SubordinateIds() {
  static std::mutex mu;
  static std::optional<IdRange> cached;  // guarded by mu
  std::lock_guard<std::mutex> lock(mu);
  if (cached) return *cached;
  ASSIGN_OR_RETURN(IdRange uids, ParseSubordinateIds(ReadSmallFile("/etc/subuid"), "/etc/subuid"));
  ASSIGN_OR_RETURN(IdRange gids, ParseSubordinateIds(ReadSmallFile("/etc/subgid"), "/etc/subgid"));
  if (uids.start != gids.start) {
    return InvalidArgumentError("/etc/subuid and /etc/subgid give imagesmith different ranges (" +
                                std::to_string(uids.start) + " and " + std::to_string(gids.start) +
                                "); they must be the same");
  }
  cached = uids;
  return uids;
}

StatusOr<int> MakeUserNamespace(const IdRange& range) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  // A raw clone (no fork handlers; see child.h): the helper only waits.
  long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) {
    char c;
    ::close(p[1]);
    while (::read(p[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ::close(p[0]);
  if (pid < 0) {
    int err = errno;
    ::close(p[1]);
    return ErrnoError("create the sandbox's user namespace", err);
  }
  std::string proc = "/proc/" + std::to_string(pid);
  std::string map = "0 " + std::to_string(range.start) + " " + std::to_string(range.count) + "\n";
  Status s;
  for (const char* file : {"/uid_map", "/gid_map"}) {
    int fd = ::open((proc + file).c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, map.data(), map.size()) != static_cast<ssize_t>(map.size())) {
      s = ErrnoError("write " + proc + file + " (" + TrimWhitespace(map).data() + ")", errno);
    }
    if (fd >= 0) ::close(fd);
    if (!s.ok()) break;
  }
  int ns = -1;
  if (s.ok()) {
    ns = ::open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) s = ErrnoError("open " + proc + "/ns/user", errno);
  }
  // Not by closing the pipe: a helper cloned at the same time by another
  // thread may hold a copy of its write end (and we one of its), and two
  // helpers waiting for each other's EOF would never exit.
  ::kill(static_cast<pid_t>(pid), SIGKILL);
  ::close(p[1]);
  int st;
  while (::waitpid(static_cast<pid_t>(pid), &st, 0) < 0 && errno == EINTR) {
  }
  if (!s.ok()) return s;
  return ns;
}

StatusOr<const std::vector<sock_filter>*> SeccompProgram() {
  static std::mutex mu;
  static std::vector<sock_filter>* program = nullptr;  // guarded by mu; never freed
  std::lock_guard<std::mutex> lock(mu);
  if (program != nullptr) return program;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return InternalError("libseccomp: seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  auto check = [](int rc, const std::string& what) -> Status {
    if (rc == 0) return Status::Ok();
    return InternalError("libseccomp: " + what + ": " + strerror(-rc));
  };
  if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
    // 32-bit and x32 system calls get the same rules.
    RETURN_IF_ERROR(check(seccomp_arch_add(ctx, SCMP_ARCH_X86), "add the x86 ABI"));
    RETURN_IF_ERROR(check(seccomp_arch_add(ctx, SCMP_ARCH_X32), "add the x32 ABI"));
  }
  for (const char* name : kRefused) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    RETURN_IF_ERROR(check(seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 0), name));
  }
  // New user namespaces: they would hand the command a full capability set
  // again (over nothing of the host's, but with mounts and a new filter-free
  // view of its own namespaces to attack the kernel from).
  for (const char* name : {"unshare", "clone"}) {
    RETURN_IF_ERROR(
        check(seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, seccomp_syscall_resolve_name(name), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)),
              name));
  }
  // clone3 passes its flags in memory the filter cannot read; ENOSYS makes
  // the C library fall back to clone.
  RETURN_IF_ERROR(
      check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3"));

  int fd = ::memfd_create("imagesmith-seccomp", MFD_CLOEXEC);
  if (fd < 0) return ErrnoError("memfd_create", errno);
  Status s = check(seccomp_export_bpf(ctx, fd), "export the filter");
  std::string bytes;
  if (s.ok()) {
    off_t size = ::lseek(fd, 0, SEEK_END);
    bytes.resize(static_cast<size_t>(size > 0 ? size : 0));
    if (size <= 0 || ::pread(fd, bytes.data(), bytes.size(), 0) != size) {
      s = InternalError("libseccomp: the exported filter could not be read back");
    }
  }
  ::close(fd);
  RETURN_IF_ERROR(s);
  auto* prog = new std::vector<sock_filter>(bytes.size() / sizeof(sock_filter));
  std::memcpy(prog->data(), bytes.data(), prog->size() * sizeof(sock_filter));
  program = prog;
  return program;
}

std::vector<std::string> RefusedSyscalls() {
  std::vector<std::string> out(std::begin(kRefused), std::end(kRefused));
  out.push_back("unshare(CLONE_NEWUSER)");
  out.push_back("clone(CLONE_NEWUSER)");
  return out;
}

Refusals::~Refusals() {
  if (fd_ >= 0) ::close(fd_);
}

bool Refusals::HandleOne() {
  seccomp_notif* req = nullptr;
  seccomp_notif_resp* resp = nullptr;
  if (seccomp_notify_alloc(&req, &resp) != 0) return true;
  int rc = seccomp_notify_receive(fd_, req);
  bool alive = true;
  if (rc == 0) {
    char* name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
    std::string label = name != nullptr ? name : "syscall " + std::to_string(req->data.nr);
    std::free(name);
    if (label == "clone" || label == "unshare") label += "(CLONE_NEWUSER)";
    ++counts_[label];
    resp->id = req->id;
    resp->val = 0;
    resp->error = -EPERM;
    resp->flags = 0;
    (void)seccomp_notify_respond(fd_, resp);  // ENOENT: the caller died meanwhile
  } else if (rc != -EINTR && rc != -ENOENT) {
    alive = false;
  }
  seccomp_notify_free(req, resp);
  return alive;
}

StatusOr<std::unique_ptr<UserNet>> UserNet::Start(int netns_fd, pid_t probe_pid) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, netns_fd, 3);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  // pasta keeps root's uid (--runas 0:0) only to open the namespace; it drops
  // its capabilities and isolates itself. setpriv ties its life to ours.
  const char* argv[] = {"setpriv", "--pdeathsig", "KILL", "--", "pasta", "--foreground", "--quiet",
                        "--runas", "0:0", "--config-net",
                        // nothing forwarded in either direction, gateway not mapped to the host
                        "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw",
                        "--netns", "/proc/self/fd/3", nullptr};
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, "setpriv", &fa, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return ErrnoError("start pasta (through setpriv) for the sandbox's network", rc);
  std::unique_ptr<UserNet> net(new UserNet(pid));
  std::string route = "/proc/" + std::to_string(probe_pid) + "/net/route";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    for (const std::string& line : Split(ReadSmallFile(route.c_str()), '\n')) {
      std::vector<std::string> f = Split(line, '\t');
      if (f.size() > 2 && f[1] == "00000000") return net;
    }
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      net->pid_ = -1;
      return FailedPreconditionError(
          "the sandbox's user-mode network did not start: pasta " +
          std::string(WIFEXITED(st) && WEXITSTATUS(st) == 127
                          ? "or setpriv is not installed (Debian package passt)"
                          : "exited with status " + std::to_string(WEXITSTATUS(st))));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return FailedPreconditionError(
          "the sandbox's user-mode network did not start: pasta configured no default route "
          "within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

UserNet::~UserNet() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace imagesmith::sandbox::internal
