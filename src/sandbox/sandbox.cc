// The parent side of the sandbox: validates a spec, prepares everything the
// child needs (child.h), clones it into new namespaces inside a fresh cgroup,
// feeds and reads its pipes, enforces the timeout and cancel flag, and cleans
// up: cgroup, temporary mount point and mount-point placeholders.
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "base/env.h"
#include "base/strings.h"
#include "sandbox/cgroup.h"
#include "sandbox/child.h"
#include "sandbox/dns_relay.h"
#include "sandbox/isolation.h"

namespace imagesmith::sandbox {
namespace {

using internal::ChildBind;
using internal::ChildPlan;
using internal::Report;
using internal::ReportKind;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* kShimDir = "/run/imagesmith/bin";

// Runs as root already, so `sudo` only has to strip its options and run the
// command. Variable assignments before the command (sudo VAR=x cmd) go
// through env(1), as sudo itself would set them.
constexpr const char* kSudoShim = R"(#!/bin/sh
# imagesmith sandbox sudo shim: the sandbox already runs as root, so this
# runs its arguments directly. It exists only inside the sandbox (/run is a
# private tmpfs) and never in the image.
while [ $# -gt 0 ]; do
  case "$1" in
    -u|--user)
      case "$2" in root|0|'#0') shift 2 ;;
        *) echo "sudo (imagesmith shim): running as user '$2' is not supported" >&2; exit 1 ;;
      esac ;;
    -u*) case "${1#-u}" in root|0|'#0') shift ;;
        *) echo "sudo (imagesmith shim): running as another user is not supported" >&2; exit 1 ;;
      esac ;;
    -g|--group|-C|--close-from|-p|--prompt|-h|--host|-r|--role|-t|--type|-T|--command-timeout|-D|--chdir)
      shift 2 ;;
    -i|--login|-s|--shell)
      shift
      if [ $# -eq 0 ]; then exec /bin/sh; fi
      exec /bin/sh -c "$*" ;;
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
  esac
done
if [ $# -eq 0 ]; then exit 0; fi
case "$1" in
  *=*) exec env "$@" ;;
esac
exec "$@"
)";

// ---- validation -----------------------------------------------------------

Status CheckPathChars(const std::string& what, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return InvalidArgumentError(what + " " + QuoteForMessage(path) + " must be an absolute path");
  }
  if (path.find_first_of(",:\\") != std::string::npos) {
    return InvalidArgumentError(what + " " + QuoteForMessage(path) +
                                " contains ',', ':' or '\\', which overlayfs options cannot carry");
  }
  return Status::Ok();
}

Status CheckDir(const std::string& what, const std::string& path) {
  RETURN_IF_ERROR(CheckPathChars(what, path));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(what + " " + path, errno);
  if (!S_ISDIR(st.st_mode)) {
    return InvalidArgumentError(what + " " + path + " is not a directory");
  }
  return Status::Ok();
}

// overlayfs takes at most this many lower layers (the kernel's OVL_MAX_STACK).
constexpr size_t kMaxLowerLayers = 500;
// The mount options must fit in one page, with room to spare.
constexpr size_t kMaxOverlayOptions = 3800;

// A directory of short symlinks to an image tree's layers ("0", "1", ...),
// so that the overlay's options name them relative to it in a few bytes
// each, however long the layers' own paths are. Removed on destruction.
class LayerLinks {
 public:
  static StatusOr<std::unique_ptr<LayerLinks>> Make(const std::vector<std::string>& layers) {
    const char* tmpdir = ::getenv("TMPDIR");
    std::string dir = std::string(tmpdir != nullptr && tmpdir[0] == '/' ? tmpdir : "/tmp") +
                      "/imagesmith-layers-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) {
      return ErrnoError("create a directory for the image tree's layer links", errno);
    }
    std::unique_ptr<LayerLinks> links(new LayerLinks(dir));
    // The overlay may be mounted with the id range's fsuid (isolation.h).
    if (::chmod(dir.c_str(), 0755) != 0) return ErrnoError("chmod " + dir, errno);
    for (size_t i = 0; i < layers.size(); ++i) {
      std::string link = dir + "/" + std::to_string(i);
      if (::symlink(layers[i].c_str(), link.c_str()) != 0) {
        return ErrnoError("link " + link + " to the layer " + layers[i], errno);
      }
      ++links->count_;
    }
    return links;
  }
  ~LayerLinks() {
    for (size_t i = 0; i < count_; ++i) ::unlink((dir_ + "/" + std::to_string(i)).c_str());
    ::rmdir(dir_.c_str());
  }
  LayerLinks(const LayerLinks&) = delete;
  LayerLinks& operator=(const LayerLinks&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  explicit LayerLinks(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  size_t count_ = 0;
};

// How the tree is mounted: overlay options ("" when a single layer is
// bind-mounted instead), and the layer links they are relative to, if any.
struct OverlayPlan {
  std::string options;
  std::unique_ptr<LayerLinks> links;  // null: the options name the layers' paths
};

// Checks the tree and plans its mount. Layers are named by their paths while
// the options fit in a page; past that (a template with many customizers,
// each a layer), by links in a directory the mount is made from.
StatusOr<OverlayPlan> PlanOverlay(const Tree& tree) {
  if (tree.layers.empty()) return InvalidArgumentError("the image tree has no layers");
  for (const std::string& layer : tree.layers) RETURN_IF_ERROR(CheckDir("image tree layer", layer));
  if (tree.upper.empty() != tree.work.empty()) {
    return InvalidArgumentError(
        "the image tree needs both an upper and a work directory, or "
        "neither (read-only); got upper " +
        QuoteForMessage(tree.upper) + " and work " + QuoteForMessage(tree.work));
  }
  if (!tree.upper.empty()) {
    RETURN_IF_ERROR(CheckDir("image tree upper dir", tree.upper));
    RETURN_IF_ERROR(CheckDir("image tree work dir", tree.work));
  }
  OverlayPlan plan;
  if (tree.layers.size() == 1 && tree.upper.empty()) return plan;
  if (tree.layers.size() > kMaxLowerLayers) {
    return InvalidArgumentError("the image tree has " + std::to_string(tree.layers.size()) +
                                " layers; overlayfs stacks at most " +
                                std::to_string(kMaxLowerLayers));
  }
  std::string rest;
  if (!tree.upper.empty()) rest = ",upperdir=" + tree.upper + ",workdir=" + tree.work;
  auto lower_of = [&](bool by_index) {
    std::string lower;
    for (size_t i = tree.layers.size(); i-- > 0;) {  // overlayfs lists the top-most layer first
      if (!lower.empty()) lower += ':';
      lower += by_index ? std::to_string(i) : tree.layers[i];
    }
    return "lowerdir=" + lower;
  };
  plan.options = lower_of(false) + rest;
  if (plan.options.size() <= kMaxOverlayOptions) return plan;
  ASSIGN_OR_RETURN(plan.links, LayerLinks::Make(tree.layers));
  plan.options = lower_of(true) + rest;
  if (plan.options.size() > kMaxOverlayOptions) {
    return InvalidArgumentError(
        "the image tree's upper and work directories' paths are too long "
        "for one overlay mount's options (" +
        std::to_string(plan.options.size()) + " bytes)");
  }
  return plan;
}

Status RequireRoot() {
  if (::geteuid() != 0) {
    return PermissionDeniedError(
        "the build sandbox needs root (it creates mount, PID, UTS and IPC namespaces, mounts "
        "overlayfs and manages cgroups); run imagesmith as root");
  }
  return Status::Ok();
}

// A path relative to the tree's root, without leading, trailing or doubled
// slashes ("/etc//x/" -> "etc/x").
std::string TreeRelative(const std::string& path) {
  std::vector<std::string> parts;
  for (const std::string& p : Split(path, '/')) {
    if (!p.empty() && p != ".") parts.push_back(p);
  }
  return Join(parts, "/");
}

// ---- the upper dir, handled without following symlinks --------------------
// The sandboxed command is root and may have planted symlinks in the upper
// dir; the parent must never follow them out of it.

// Opens the directory holding `rel`'s last component inside `upper`.
int OpenUpperParent(const std::string& upper, const std::string& rel) {
  int fd = ::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  std::vector<std::string> parts = Split(rel, '/');
  for (size_t i = 0; fd >= 0 && i + 1 < parts.size(); ++i) {
    int next = ::openat(fd, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ::close(fd);
    fd = next;
  }
  return fd;
}

bool IsWhiteout(const std::string& upper, const std::string& rel) {
  int dir = OpenUpperParent(upper, rel);
  if (dir < 0) return false;
  struct stat st {};
  bool whiteout = ::fstatat(dir, Basename(rel).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                  S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
  ::close(dir);
  return whiteout;
}

// Removes an (empty) mount-point placeholder from the upper dir, putting back
// the whiteout it replaced if there was one.
void RemovePlaceholder(const std::string& upper, const std::string& rel, bool was_whiteout,
                       std::vector<std::string>& notes) {
  int dir = OpenUpperParent(upper, rel);
  if (dir < 0) return;
  std::string leaf = Basename(rel);
  struct stat st {};
  if (::fstatat(dir, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    int rc = -1;
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
      rc = ::unlinkat(dir, leaf.c_str(), 0);
    } else if (S_ISDIR(st.st_mode)) {
      rc = ::unlinkat(dir, leaf.c_str(), AT_REMOVEDIR);  // fails unless empty
    }
    if (rc != 0) {
      notes.push_back("left /" + rel + " in the upper dir: it is no longer an empty placeholder");
    } else if (was_whiteout && ::mknodat(dir, leaf.c_str(), S_IFCHR, makedev(0, 0)) != 0) {
      notes.push_back("could not restore the whiteout for /" + rel + ": " + strerror(errno));
    }
  }
  ::close(dir);
}

// ---- strings the child will use -------------------------------------------

// Owns the C strings and arrays a ChildPlan points into.
struct CStrings {
  std::vector<std::unique_ptr<std::string>> strings;
  std::vector<std::unique_ptr<std::vector<char*>>> arrays;

  const char* Add(std::string s) {
    strings.push_back(std::make_unique<std::string>(std::move(s)));
    return strings.back()->c_str();
  }
  char* const* Array(const std::vector<std::string>& items) {
    auto array = std::make_unique<std::vector<char*>>();
    for (const std::string& s : items) array->push_back(const_cast<char*>(Add(s)));
    array->push_back(nullptr);
    arrays.push_back(std::move(array));
    return arrays.back()->data();
  }
};

std::vector<std::string> ExecCandidates(const std::string& argv0, const std::string& path) {
  if (argv0.find('/') != std::string::npos) return {argv0};
  std::vector<std::string> out;
  for (const std::string& dir : Split(path, ':')) {
    out.push_back(JoinPath(dir.empty() ? "." : dir, argv0));
  }
  return out;
}

std::string ReadOomScoreAdj() {
  int fd = ::open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "0";
  char buf[32] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  std::string v(TrimWhitespace(std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0)));
  return v.empty() ? "0" : v;
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms > 1000) {
    char buf[32];
    (void)std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
    return buf;
  }
  return std::to_string(ms) + "ms";
}

std::string FormatMiB(int64_t bytes) {
  if (bytes % (1 << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
  return std::to_string(bytes >> 20) + " MiB";
}

// ---- the boundary ----------------------------------------------------------

// What package installs need (Docker's default set without CAP_MKNOD):
// chown, dac_override, fowner, fsetid, kill, setgid, setuid, setpcap,
// net_bind_service, net_raw, sys_chroot, audit_write, setfcap.
constexpr uint64_t Cap(int c) { return uint64_t{1} << c; }
constexpr uint64_t kKeptCapabilities = Cap(0) | Cap(1) | Cap(3) | Cap(4) | Cap(5) | Cap(6) |
                                       Cap(7) | Cap(8) | Cap(10) | Cap(13) | Cap(18) | Cap(29) |
                                       Cap(31);

// The host directories to idmap: every layer, and the deepest directory that
// holds both the upper and the work dir (overlayfs wants them on one mount).
// A directory inside another on the list is covered by that one already.
std::vector<std::string> IdmapRoots(const Tree& tree) {
  std::vector<std::string> roots;
  if (!tree.upper.empty()) {
    std::vector<std::string> a = Split(tree.upper, '/'), b = Split(tree.work, '/');
    std::vector<std::string> common;
    for (size_t i = 0; i < a.size() && i < b.size() && a[i] == b[i]; ++i) common.push_back(a[i]);
    std::string dir = Join(common, "/");
    roots.push_back(dir.empty() ? "/" : dir);
  }
  for (const std::string& l : tree.layers) roots.push_back(l);
  std::vector<std::string> out;
  for (const std::string& r : roots) {
    bool covered = false;
    for (const std::string& o : roots) {
      if (&o == &r) continue;
      std::string prefix = o == "/" ? "/" : o + "/";
      if (StartsWith(r, prefix) || (o == r && &o < &r)) covered = true;
    }
    if (!covered) out.push_back(r);
  }
  return out;
}

// ---- running and supervising the child ------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// pipe2(O_CLOEXEC) with both ends above 2, so the child's dup2 onto 0-2
// cannot clobber one of them even when the parent runs without stdio.
Status MakePipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  for (int& fd : p) {
    if (fd < 3) {
      int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
      ::close(fd);
      if (moved < 0) return ErrnoError("fcntl", errno);
      fd = moved;
    }
  }
  read_end.Reset(p[0]);
  write_end.Reset(p[1]);
  return Status::Ok();
}

struct Outcome {
  RunResult result;
  Status setup_error;                     // from a kFatal report
  std::vector<std::string> placeholders;  // tree-relative
};

struct Stream {
  int fd = -1;
  bool is_stderr = false;
  std::string* sink = nullptr;
  std::string partial;
};

// Clones the child into new namespaces and supervises it to the end.
// Bytes of blocks under `dir`, not following symlinks or crossing mounts.
int64_t BlocksUnder(int dirfd, dev_t dev, int depth) {
  int64_t total = 0;
  DIR* d = ::fdopendir(dirfd);
  if (d == nullptr) {
    ::close(dirfd);
    return 0;
  }
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev) {
      continue;
    }
    total += static_cast<int64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode) && depth < 256) {
      int sub = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) total += BlocksUnder(sub, dev, depth + 1);
    }
  }
  ::closedir(d);
  return total;
}

// Watches a run's writes (RunSpec::disk_limit_bytes).
// A file removed when the run is over.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

// The run's network: pasta when user_net, and the DNS relay's upstreams when
// the host's resolver is on its loopback (dns_relay.h).
struct NetSetup {
  bool user_net = false;
  std::vector<internal::NameServer> dns_relay_to;
};

struct DiskWatch {
  std::string upper;
  int64_t limit = 0;
  static constexpr int64_t kHostReserve = int64_t{512} << 20;

  // "" while within bounds; otherwise why the run must stop.
  std::string Check(bool walk) const {
    if (upper.empty() || limit <= 0) return "";
    struct statvfs vfs {};
    if (::statvfs(upper.c_str(), &vfs) == 0 &&
        static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize) < kHostReserve) {
      return "the host filesystem holding the tree has less than 512 MiB free";
    }
    if (!walk) return "";
    int fd = ::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      if (fd >= 0) ::close(fd);
      return "";
    }
    int64_t used = BlocksUnder(fd, st.st_dev, 0);
    if (used <= limit) return "";
    return "the tree grew past its disk quota: " + std::to_string(used >> 20) + " MiB written, " +
           std::to_string(limit >> 20) + " MiB allowed";
  }
};

StatusOr<Outcome> Supervise(ChildPlan& plan, const ProcessControl& control, Cgroup* cgroup,
                            int clone_flags, const NetSetup& net_setup, const DiskWatch& disk) {
  Outcome out;
  RunResult& result = out.result;
  result.timeout = control.timeout;
  result.memory_limit_bytes = control.limits.memory_bytes;

  Fd in_r, in_w, out_r, out_w, err_r, err_w, rep_r, rep_w, go_r, go_w;
  RETURN_IF_ERROR(MakePipe(in_r, in_w));
  RETURN_IF_ERROR(MakePipe(out_r, out_w));
  RETURN_IF_ERROR(MakePipe(err_r, err_w));
  RETURN_IF_ERROR(MakePipe(rep_r, rep_w));
  RETURN_IF_ERROR(MakePipe(go_r, go_w));
  plan.stdin_fd = in_r.get();
  plan.stdout_fd = out_w.get();
  plan.stderr_fd = err_w.get();
  plan.report_fd = rep_w.get();
  plan.go_fd = go_r.get();
  plan.keep_fds.insert(plan.keep_fds.end(),
                       {plan.stdin_fd, plan.stdout_fd, plan.stderr_fd, plan.report_fd});
  std::sort(plan.keep_fds.begin(), plan.keep_fds.end());
  std::string oom_adj = ReadOomScoreAdj();
  plan.oom_score_adj = oom_adj.c_str();

  // A raw clone, fork-like (no new stack): the child continues here with a
  // copy of this thread's memory and only ever calls ChildMain.
  long pid = ::syscall(SYS_clone, static_cast<unsigned long>(clone_flags) | SIGCHLD, nullptr,
                       nullptr, nullptr, nullptr);
  if (pid == 0) internal::ChildMain(plan);
  if (pid < 0) {
    int err = errno;
    if (err == EPERM) {
      return PermissionDeniedError(
          "cannot create the sandbox's namespaces: " + std::string(strerror(err)) +
          " (needs root with CAP_SYS_ADMIN, outside a restricted container)");
    }
    return ErrnoError("clone the sandbox's init process", err);
  }
  const pid_t child = static_cast<pid_t>(pid);
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  rep_w.Reset();
  go_r.Reset();

  auto abandon = [&](Status s) -> Status {
    ::kill(child, SIGKILL);
    int st;
    while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
    }
    return s;
  };
  // Protect init from the OOM killer, so a memory-hungry command dies rather
  // than its init (whose death would hide the command's own status).
  if (int f = ::open(("/proc/" + std::to_string(child) + "/oom_score_adj").c_str(),
                     O_WRONLY | O_CLOEXEC);
      f >= 0) {
    (void)!::write(f, "-1000", 5);
    ::close(f);
  }
  if (cgroup != nullptr) {
    Status s = cgroup->AddProcess(child);
    if (!s.ok()) return abandon(s);
  }
  // The child has its network namespace from the clone; pasta configures it
  // before the child may go on.
  std::unique_ptr<internal::UserNet> net;
  std::unique_ptr<internal::DnsRelay> dns;
  if (net_setup.user_net) {
    Fd netns(::open(("/proc/" + std::to_string(child) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
    if (netns.get() < 0) return abandon(ErrnoError("open the sandbox's network namespace", errno));
    auto started = internal::UserNet::Start(netns.get(), child);
    if (!started.ok()) return abandon(started.status());
    net = std::move(started).value();
    if (!net_setup.dns_relay_to.empty()) {
      auto relay = internal::DnsRelay::Start(netns.get(), net_setup.dns_relay_to);
      if (!relay.ok()) return abandon(relay.status());
      dns = std::move(relay).value();
    }
  }
  std::unique_ptr<internal::Refusals> refusals;
  bool refusals_done = false;
  if (::write(go_w.get(), "g", 1) != 1) return abandon(ErrnoError("start the sandbox", errno));
  go_w.Reset();

  for (int fd : {in_w.get(), out_r.get(), err_r.get(), rep_r.get()}) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  std::string_view pending_in = control.stdin_data;
  if (pending_in.empty()) in_w.Reset();

  Stream streams[2] = {{out_r.get(), false, &result.stdout_data, {}},
                       {err_r.get(), true, &result.stderr_data, {}}};
  std::string reports;
  bool exited_reported = false;
  int main_status = 0;

  auto handle_reports = [&]() {
    while (reports.size() >= sizeof(Report)) {
      Report r;
      std::memcpy(&r, reports.data(), sizeof r);
      reports.erase(0, sizeof r);
      r.text[sizeof r.text - 1] = '\0';
      switch (static_cast<ReportKind>(r.kind)) {
        case ReportKind::kFatal:
          if (out.setup_error.ok()) {
            out.setup_error = FailedPreconditionError(
                "sandbox setup failed: " + std::string(r.text) +
                (r.err != 0 ? std::string(": ") + strerror(r.err) : std::string()));
          }
          break;
        case ReportKind::kNote:
          result.notes.push_back(std::string(r.text) +
                                 (r.err != 0 ? std::string(" (") + strerror(r.err) + ")" : ""));
          break;
        case ReportKind::kPlaceholder:
          out.placeholders.emplace_back(r.text);
          break;
        case ReportKind::kExited:
          exited_reported = true;
          main_status = r.value;
          break;
        case ReportKind::kListener: {
          // The init's seccomp listener: answer its refusals from here.
          Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
          int fd = pidfd.get() < 0
                       ? -1
                       : static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), r.value, 0));
          // ESRCH: the init has already exited, so nothing it filtered is left.
          if (fd >= 0) {
            refusals = std::make_unique<internal::Refusals>(fd);
          } else if (errno != ESRCH && out.setup_error.ok()) {
            out.setup_error = InternalError("take over the sandbox's seccomp listener: " +
                                            std::string(strerror(errno)));
            ::kill(child, SIGKILL);
          }
          break;
        }
      }
    }
  };
  auto emit_lines = [&](Stream& s, bool final) {
    if (!control.on_line) return;
    size_t nl;
    while ((nl = s.partial.find('\n')) != std::string::npos) {
      control.on_line(std::string_view(s.partial).substr(0, nl), s.is_stderr);
      s.partial.erase(0, nl + 1);
    }
    if (final && !s.partial.empty()) {
      control.on_line(s.partial, s.is_stderr);
      s.partial.clear();
    }
  };
  // Reads what is available; returns false at EOF.
  auto read_stream = [&](Stream& s) {
    char buf[65536];
    while (true) {
      ssize_t n = ::read(s.fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return true;  // EAGAIN
      if (n == 0) {
        emit_lines(s, true);
        return false;
      }
      size_t room = control.max_capture_bytes > s.sink->size()
                        ? control.max_capture_bytes - s.sink->size()
                        : 0;
      size_t take = std::min(room, static_cast<size_t>(n));
      if (take < static_cast<size_t>(n)) result.output_truncated = true;
      s.sink->append(buf, take);
      if (control.on_line) {
        s.partial.append(buf, static_cast<size_t>(n));
        emit_lines(s, false);
      }
    }
  };
  auto read_reports = [&]() {
    char buf[4096];
    while (true) {
      ssize_t n = ::read(rep_r.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      reports.append(buf, static_cast<size_t>(n));
    }
    handle_reports();
  };

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  bool init_done = false;
  int init_status = 0;
  bool killed = false;
  auto next_walk = start + std::chrono::seconds(1);
  while (!init_done) {
    pollfd fds[5];
    int n = 0;
    int which[5];
    for (int i = 0; i < 2; ++i) {
      if (streams[i].fd >= 0) {
        fds[n] = {streams[i].fd, POLLIN, 0};
        which[n++] = i;
      }
    }
    fds[n] = {rep_r.get(), POLLIN, 0};
    which[n++] = 2;
    if (in_w.get() >= 0) {
      fds[n] = {in_w.get(), POLLOUT, 0};
      which[n++] = 3;
    }
    if (refusals != nullptr && !refusals_done) {
      fds[n] = {refusals->fd(), POLLIN, 0};
      which[n++] = 4;
    }
    int wait_ms = 100;
    if (control.timeout.count() > 0 && !killed) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(start + control.timeout -
                                                                        Clock::now());
      wait_ms = static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 100));
    }
    int pr = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (pr < 0 && errno != EINTR) return abandon(ErrnoError("poll", errno));
    for (int k = 0; k < n && pr > 0; ++k) {
      if (fds[k].revents == 0) continue;
      if (which[k] < 2) {
        if (!read_stream(streams[which[k]])) streams[which[k]].fd = -1;
      } else if (which[k] == 2) {
        read_reports();
      } else if (which[k] == 4) {
        // POLLHUP: nothing is filtered any more.
        if ((fds[k].revents & POLLIN) == 0 || !refusals->HandleOne()) refusals_done = true;
      } else {
        ssize_t w = ::write(in_w.get(), pending_in.data(), pending_in.size());
        if (w > 0) pending_in.remove_prefix(static_cast<size_t>(w));
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || pending_in.empty()) in_w.Reset();
      }
    }
    if (!killed) {
      bool walk = Clock::now() >= next_walk;
      if (walk) next_walk = Clock::now() + std::chrono::seconds(1);
      std::string full = disk.Check(walk);
      if (!full.empty()) {
        result.disk_full = true;
        result.disk_note = full;
        ::kill(child, SIGKILL);
        if (cgroup != nullptr) (void)cgroup->KillAll();
        killed = true;
      }
    }
    if (!killed) {
      bool timed_out = control.timeout.count() > 0 && Clock::now() - start >= control.timeout;
      bool cancelled = control.cancel != nullptr && control.cancel->load();
      if (timed_out || cancelled) {
        result.timed_out = timed_out && !cancelled;
        result.cancelled = cancelled;
        // Killing pid 1 of the namespace makes the kernel kill all the rest.
        ::kill(child, SIGKILL);
        if (cgroup != nullptr) (void)cgroup->KillAll();
        killed = true;
      }
    }
    pid_t w = ::waitpid(child, &init_status, WNOHANG);
    if (w == child) init_done = true;
    if (w < 0 && errno == ECHILD) {
      // Someone else reaped it (SIGCHLD ignored, or a waitpid(-1) elsewhere in
      // this process); its namespace is gone either way.
      return InternalError("the sandbox's init was reaped by someone else; is SIGCHLD ignored?");
    }
    if (w < 0 && errno != EINTR) return abandon(ErrnoError("waitpid for the sandbox", errno));
  }
  in_w.Reset();
  // Every process of the PID namespace is gone once its init is reaped, so
  // the write ends are closed: drain to EOF. (Bounded, in case a concurrent
  // clone from another thread briefly holds a copy of a write end.)
  const auto drain_deadline = Clock::now() + std::chrono::seconds(2);
  for (Stream& s : streams) {
    while (s.fd >= 0 && Clock::now() < drain_deadline) {
      pollfd p = {s.fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0 && !read_stream(s)) s.fd = -1;
    }
    if (s.fd >= 0) emit_lines(s, true);
  }
  read_reports();

  if (refusals != nullptr) result.refused = refusals->counts();
  if (cgroup != nullptr) result.oom_killed = cgroup->OomKills() > 0;
  if (killed) {
    result.term_signal = SIGKILL;
  } else if (exited_reported) {
    if (WIFEXITED(main_status)) result.exit_code = WEXITSTATUS(main_status);
    if (WIFSIGNALED(main_status)) result.term_signal = WTERMSIG(main_status);
  } else if (out.setup_error.ok()) {
    // init itself died without reporting: killed from outside (or by the OOM
    // killer despite its protection), which took the command with it.
    if (WIFSIGNALED(init_status)) {
      result.term_signal = WTERMSIG(init_status);
    } else {
      out.setup_error = InternalError("the sandbox's init exited with status " +
                                      std::to_string(WEXITSTATUS(init_status)) +
                                      " without reporting on the command");
    }
  }
  return out;
}

// Everything a run sets up around Supervise, torn down in reverse order.
StatusOr<RunResult> Execute(ChildPlan& plan, const ProcessControl& control, int clone_flags,
                            const NetSetup& net, const std::string& upper,
                            const std::vector<std::string>& candidates, int64_t disk_limit = 0) {
  std::unique_ptr<Cgroup> cgroup;
  const Limits& limits = control.limits;
  if (limits.memory_bytes > 0 || limits.cpus > 0 || limits.max_pids > 0) {
    StatusOr<std::unique_ptr<Cgroup>> created = Cgroup::Create(limits);
    if (!created.ok()) {
      ::rmdir(plan.mount_point);
      return created.status();
    }
    cgroup = std::move(created).value();
  }
  // Placeholders replace whiteouts; remember which so they can be restored.
  std::map<std::string, bool> whiteouts;
  if (!upper.empty()) {
    for (const std::string& rel : candidates) whiteouts[rel] = IsWhiteout(upper, rel);
  }
  DiskWatch disk{upper, disk_limit};
  StatusOr<Outcome> outcome = Supervise(plan, control, cgroup.get(), clone_flags, net, disk);
  Status cleanup;
  if (cgroup != nullptr) cleanup = cgroup->Remove();
  if (::rmdir(plan.mount_point) != 0 && cleanup.ok()) {
    cleanup =
        ErrnoError(std::string("remove the sandbox's mount point ") + plan.mount_point, errno);
  }
  if (!outcome.ok()) return outcome.status();
  if (!upper.empty()) {
    for (const std::string& rel : outcome->placeholders) {
      RemovePlaceholder(upper, rel, whiteouts[rel], outcome->result.notes);
    }
  }
  if (!outcome->setup_error.ok()) return outcome->setup_error;
  if (!cleanup.ok()) return cleanup.WithContext("sandbox cleanup");
  return std::move(outcome->result);
}

// The temporary mount point: an empty directory, only ever mounted on inside
// the sandbox's own mount namespace. Named after our pid so that ones left by
// a process that was killed can be recognised and removed.
StatusOr<std::string> MakeMountPoint() {
  const char* tmpdir = ::getenv("TMPDIR");
  std::string base = tmpdir != nullptr && tmpdir[0] == '/' ? tmpdir : "/tmp";
  const std::string prefix = "imagesmith-sandbox-";
  if (DIR* dir = ::opendir(base.c_str()); dir != nullptr) {
    std::vector<std::string> stale;
    while (dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (!StartsWith(name, prefix)) continue;
      std::vector<std::string> parts = Split(name.substr(prefix.size()), '-');
      if (parts.size() != 2 || !IsAsciiDigits(parts[0]) || parts[0].size() > 9) continue;
      if (::kill(static_cast<pid_t>(std::stol(parts[0])), 0) != 0 && errno == ESRCH) {
        stale.push_back(JoinPath(base, name));
      }
    }
    ::closedir(dir);
    for (const std::string& d : stale) {
      // Only an empty mount point; and a relay's resolv.conf (dns_relay.h).
      if (::rmdir(d.c_str()) != 0 && errno == ENOTDIR && EndsWith(d, ".resolv.conf")) {
        ::unlink(d.c_str());
      }
    }
  }
  std::string tmpl = base + "/" + prefix + std::to_string(::getpid()) + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoError("create a directory in " + base, errno);
  return tmpl;
}

}  // namespace

std::string RunResult::Describe() const {
  std::string memory = "the memory limit";
  if (memory_limit_bytes > 0) memory += " (" + FormatMiB(memory_limit_bytes) + ")";
  if (cancelled) return "cancelled";
  if (disk_full) return "stopped: " + disk_note;
  if (timed_out) return "timed out after " + FormatDuration(timeout);
  if (oom_killed && term_signal == SIGKILL) return "killed by " + memory;
  std::string out;
  if (term_signal != 0) {
    out = "killed by signal " + std::to_string(term_signal) + " (" + strsignal(term_signal) + ")";
  } else {
    out = "exit status " + std::to_string(exit_code);
  }
  if (oom_killed) out += " (a process was killed by " + memory + ")";
  if (!refused.empty()) out += "; the sandbox refused " + RefusedList() + " (EPERM)";
  return out;
}

std::string RunResult::RefusedList() const {
  std::string out;
  for (const auto& [name, count] : refused) {
    if (!out.empty()) out += ", ";
    out += name;
    if (count > 1) out += " (" + std::to_string(count) + " times)";
  }
  return out;
}

StatusOr<RunResult> Run(const RunSpec& spec) {
  RETURN_IF_ERROR(RequireRoot());
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return InvalidArgumentError("the sandbox was given no command to run");
  }
  ASSIGN_OR_RETURN(OverlayPlan overlay, PlanOverlay(spec.tree));
  if (spec.working_dir.empty() || spec.working_dir[0] != '/') {
    return InvalidArgumentError("working directory " + QuoteForMessage(spec.working_dir) +
                                " must be an absolute path inside the tree");
  }
  if (spec.hostname.size() > 64) {
    return InvalidArgumentError("hostname " + QuoteForMessage(spec.hostname) +
                                " is longer than 64 characters");
  }

  CStrings cs;
  ChildPlan plan;
  plan.in_tree = true;
  plan.writable = !spec.tree.upper.empty();
  if (overlay.options.empty()) {
    plan.bind_layer = cs.Add(spec.tree.layers[0]);
  } else {
    plan.overlay_options = cs.Add(overlay.options);
    if (overlay.links != nullptr) plan.layers_dir = cs.Add(overlay.links->dir());
  }
  plan.hostname = spec.hostname.empty() ? nullptr : cs.Add(spec.hostname);
  struct stat st {};
  if (::stat(spec.host_resolv_conf.c_str(), &st) == 0) {
    plan.resolv_source = cs.Add(spec.host_resolv_conf);
  }

  std::vector<std::string> candidates = {"proc", "dev", "etc/resolv.conf"};
  for (const BindMount& b : spec.binds) {
    if (b.tree_path.empty() || b.tree_path[0] != '/') {
      return InvalidArgumentError("bind mount target " + QuoteForMessage(b.tree_path) +
                                  " must be an absolute path inside the tree");
    }
    std::string rel = TreeRelative(b.tree_path);
    if (rel.empty()) return InvalidArgumentError("cannot bind-mount over the tree's root");
    struct stat bst {};
    if (::stat(b.host_path.c_str(), &bst) != 0) {
      return ErrnoError("bind mount source " + b.host_path, errno);
    }
    ChildBind cb;
    cb.source = cs.Add(b.host_path);
    cb.target = cs.Add(rel);
    std::string parent = Dirname(rel);
    cb.target_parent = cs.Add(parent == "." ? "." : parent);
    cb.target_leaf = cs.Add(Basename(rel));
    cb.is_dir = S_ISDIR(bst.st_mode);
    cb.read_only = b.read_only;
    plan.binds.push_back(cb);
    candidates.push_back(rel);
  }

  std::map<std::string, std::string> env = spec.env;
  if (env.count("PATH") == 0) env["PATH"] = kDefaultPath;
  std::vector<std::string> env_plain, env_shim;
  for (const auto& [k, v] : env) {
    std::string kv = k;
    kv.append("=").append(v);
    env_plain.push_back(kv);
    if (k == "PATH") kv.append(":").append(kShimDir);
    env_shim.push_back(kv);
  }
  plan.envp = cs.Array(env_plain);
  plan.envp_with_shim = cs.Array(env_shim);
  plan.argv = cs.Array(spec.argv);
  for (const std::string& c : ExecCandidates(spec.argv[0], env["PATH"])) {
    plan.exec_paths.push_back(cs.Add(c));
  }
  for (const std::string& c : ExecCandidates(spec.argv[0], env["PATH"] + ":" + kShimDir)) {
    plan.exec_paths_with_shim.push_back(cs.Add(c));
  }
  plan.sudo_shim = spec.sudo_shim;
  plan.sudo_shim_text = kSudoShim;
  for (const std::string& dir : Split(env["PATH"], ':')) {
    if (!dir.empty() && dir[0] == '/')
      plan.sudo_probe.push_back(cs.Add(TreeRelative(dir + "/sudo")));
  }
  plan.working_dir = cs.Add(spec.working_dir);
  if (spec.disk_limit_bytes > 0) plan.fsize_limit = static_cast<uint64_t>(spec.disk_limit_bytes);

  if (spec.isolation == Isolation::kLegacy) {
    ASSIGN_OR_RETURN(std::string mount_point, MakeMountPoint());
    plan.mount_point = cs.Add(mount_point);
    return Execute(plan, spec.control, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC,
                   NetSetup{}, spec.tree.upper, candidates, spec.disk_limit_bytes);
  }
  ASSIGN_OR_RETURN(internal::IdRange range, internal::SubordinateIds());
  ASSIGN_OR_RETURN(const std::vector<sock_filter>* program, internal::SeccompProgram());
  sock_fprog fprog{static_cast<unsigned short>(program->size()),
                   const_cast<sock_filter*>(program->data())};
  plan.seccomp = &fprog;
  plan.tree_root = range.start;
  plan.keep_caps = kKeptCapabilities;
  const std::string root = std::to_string(range.start);
  plan.dev_options = cs.Add("mode=0755,size=1m,uid=" + root + ",gid=" + root);
  plan.run_options = cs.Add("mode=0755,uid=" + root + ",gid=" + root);
  plan.devpts_options =
      cs.Add("newinstance,ptmxmode=0666,mode=0620,gid=" + std::to_string(range.start + 5));
  for (const std::string& p : IdmapRoots(spec.tree)) plan.idmap_paths.push_back(cs.Add(p));
  ASSIGN_OR_RETURN(int userns, internal::MakeUserNamespace(range));
  Fd userns_fd(userns);
  plan.userns_fd = userns_fd.get();
  plan.keep_fds.push_back(userns_fd.get());
  ASSIGN_OR_RETURN(std::string mount_point, MakeMountPoint());
  plan.mount_point = cs.Add(mount_point);
  NetSetup net;
  net.user_net = spec.network;
  // A resolver on the host's loopback is out of the namespace's reach: the
  // sandbox gets the relay's resolv.conf, and the relay (dns_relay.h).
  TempFile relay_conf;
  if (spec.network && plan.resolv_source != nullptr) {
    StatusOr<std::string> text = Env::Default()->ReadFile(plan.resolv_source, 64 << 10);
    internal::ResolvConf host = internal::ParseResolvConf(text.ok() ? text.value() : "");
    if (host.HasLoopbackServer()) {
      relay_conf.path = mount_point + ".resolv.conf";
      RETURN_IF_ERROR(
          Env::Default()->WriteFileAtomic(relay_conf.path, internal::RelayResolvConf(host)));
      ::chmod(relay_conf.path.c_str(), 0644);
      plan.resolv_source = cs.Add(relay_conf.path);
      net.dns_relay_to = std::move(host.servers);
    }
  }
  return Execute(plan, spec.control, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET, net,
                 spec.tree.upper, candidates, spec.disk_limit_bytes);
}

StatusOr<uint32_t> HostUidOfRootInside() {
  ASSIGN_OR_RETURN(internal::IdRange range, internal::SubordinateIds());
  return range.start;
}

StatusOr<RunResult> RunHostWithTree(const Tree& tree, std::vector<std::string> argv,
                                    const HostRunOptions& options) {
  RETURN_IF_ERROR(RequireRoot());
  if (argv.empty() || argv[0].empty()) {
    return InvalidArgumentError("RunHostWithTree was given no command to run");
  }
  ASSIGN_OR_RETURN(OverlayPlan overlay, PlanOverlay(tree));
  CStrings cs;
  ChildPlan plan;
  plan.in_tree = false;
  plan.writable = !tree.upper.empty();
  if (overlay.options.empty()) {
    plan.bind_layer = cs.Add(tree.layers[0]);
  } else {
    plan.overlay_options = cs.Add(overlay.options);
    if (overlay.links != nullptr) plan.layers_dir = cs.Add(overlay.links->dir());
  }
  ASSIGN_OR_RETURN(std::string mount_point, MakeMountPoint());
  plan.mount_point = cs.Add(mount_point);
  for (std::string& arg : argv) {
    size_t pos;
    while ((pos = arg.find("{tree}")) != std::string::npos) arg.replace(pos, 6, mount_point);
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : options.extra_env) env[k] = v;
  std::vector<std::string> env_list;
  env_list.reserve(env.size());
  for (const auto& [k, v] : env) env_list.push_back(std::string(k).append("=").append(v));
  plan.envp = cs.Array(env_list);
  plan.envp_with_shim = plan.envp;
  plan.argv = cs.Array(argv);
  std::string path = env.count("PATH") != 0 ? env["PATH"] : kDefaultPath;
  for (const std::string& c : ExecCandidates(argv[0], path)) plan.exec_paths.push_back(cs.Add(c));
  plan.exec_paths_with_shim = plan.exec_paths;
  plan.working_dir = options.working_dir.empty() ? nullptr : cs.Add(options.working_dir);
  return Execute(plan, options.control, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC, NetSetup{}, "",
                 {});
}

}  // namespace imagesmith::sandbox
