// The sandbox's init process. Only system calls from here on: see child.h for
// why nothing may allocate. Mount targets inside the tree are resolved with
// openat2(RESOLVE_IN_ROOT) and mounted through /proc/self/fd/N, so a symlink
// in the tree ("etc/resolv.conf -> /etc/shadow") can never make a mount land
// outside it; host sources are plain paths because the host root is still
// ours until pivot_root.
#include "sandbox/child.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace imagesmith::sandbox::internal {
namespace {

const ChildPlan* g_plan = nullptr;

void WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    len -= static_cast<size_t>(n);
  }
}

void Append(char* buf, size_t cap, const char* s) {
  if (s == nullptr) return;
  size_t used = std::strlen(buf);
  size_t i = 0;
  while (s[i] != '\0' && used + 1 < cap) buf[used++] = s[i++];
  buf[used] = '\0';
}

void Send(ReportKind kind, int err, int value, const char* a, const char* b = nullptr,
          const char* c = nullptr) {
  Report r;
  r.kind = static_cast<int32_t>(kind);
  r.err = err;
  r.value = value;
  Append(r.text, sizeof r.text, a);
  Append(r.text, sizeof r.text, b);
  Append(r.text, sizeof r.text, c);
  WriteAll(g_plan->report_fd, &r, sizeof r);
}

[[noreturn]] void Fatal(const char* what, const char* path, int err) {
  Send(ReportKind::kFatal, err, 0, what, path != nullptr ? " " : nullptr, path);
  ::_exit(1);
}

// "/proc/self/fd/<fd>" into buf.
const char* FdPath(int fd, char* buf, size_t cap) {
  char digits[16];
  int n = 0;
  unsigned v = static_cast<unsigned>(fd);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  buf[0] = '\0';
  Append(buf, cap, "/proc/self/fd/");
  size_t used = std::strlen(buf);
  while (n > 0 && used + 1 < cap) buf[used++] = digits[--n];
  buf[used] = '\0';
  return buf;
}

// Opens `rel` (tree-relative) with symlinks and ".." confined to the tree.
int OpenInRoot(int root_fd, const char* rel, int flags) {
  open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd;
  // EAGAIN: a mount or rename anywhere on the host raced the confined lookup
  // (openat2 with RESOLVE_IN_ROOT asks the caller to try again then).
  int again = 0;
  do {
    fd = ::syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
  } while (fd < 0 && (errno == EINTR || (errno == EAGAIN && ++again < 1000)));
  return static_cast<int>(fd);
}

int MountOn(const char* source, int target_fd, const char* type, unsigned long flags,
            const char* data) {
  char path[48];
  return ::mount(source, FdPath(target_fd, path, sizeof path), type, flags, data);
}

// Makes an existing bind mount at `rel` read-only. The target is opened again
// so the fd refers to the new mount, not the directory under it.
void RemountReadOnly(int root_fd, const char* rel) {
  int fd = OpenInRoot(root_fd, rel, O_PATH);
  if (fd < 0) Fatal("reopen bind mount", rel, errno);
  if (MountOn(nullptr, fd, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    Fatal("remount read-only", rel, errno);
  }
  ::close(fd);
}

// Returns an O_PATH fd for the mount point `parent/leaf` in the tree, making
// an empty file or directory there if it is missing (reported as a
// placeholder when it lands on the tree's own filesystem, so the parent
// removes it from the upper dir afterwards). Returns -1 with errno set when
// it neither exists nor can be made.
int MountPoint(int root_fd, dev_t root_dev, const char* rel, const char* parent, const char* leaf,
               bool is_dir) {
  int fd = OpenInRoot(root_fd, rel, O_PATH);
  if (fd >= 0 || errno != ENOENT) return fd;
  int pfd = OpenInRoot(root_fd, parent, O_RDONLY | O_DIRECTORY);
  if (pfd < 0) return -1;
  struct stat pst {};
  int rc = ::fstat(pfd, &pst);
  if (rc == 0) {
    if (is_dir) {
      rc = ::mkdirat(pfd, leaf, 0755);
    } else {
      int f = ::openat(pfd, leaf, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
      rc = f < 0 ? -1 : ::close(f);
    }
  }
  int err = errno;
  ::close(pfd);
  if (rc != 0) {
    errno = err;
    return -1;
  }
  if (pst.st_dev == root_dev) Send(ReportKind::kPlaceholder, 0, 0, rel);
  return OpenInRoot(root_fd, rel, O_PATH);
}

void CloseAllBut(const std::vector<int>& keep) {
  unsigned next = 3;
  for (int fd : keep) {
    if (fd < 3) continue;
    if (static_cast<unsigned>(fd) > next) ::close_range(next, static_cast<unsigned>(fd) - 1, 0);
    next = static_cast<unsigned>(fd) + 1;
  }
  ::close_range(next, ~0U, 0);
}

void SetUpDev(int root_fd, dev_t root_dev) {
  int dev = MountPoint(root_fd, root_dev, "dev", ".", "dev", true);
  if (dev < 0) Fatal("find or create /dev in the tree", nullptr, errno);
  if (MountOn("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, g_plan->dev_options) != 0) {
    Fatal("mount tmpfs on /dev", nullptr, errno);
  }
  ::close(dev);
  int devdir = OpenInRoot(root_fd, "dev", O_RDONLY | O_DIRECTORY);
  if (devdir < 0) Fatal("open /dev", nullptr, errno);
  static const char* const kNodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (const char* node : kNodes) {
    int f = ::openat(devdir, node, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
    if (f < 0) Fatal("create /dev/", node, errno);
    char source[32] = "/dev/";
    Append(source, sizeof source, node);
    if (MountOn(source, f, nullptr, MS_BIND, nullptr) != 0) Fatal("bind", source, errno);
    ::close(f);
  }
  if (::mkdirat(devdir, "pts", 0755) == 0) {
    int pts = ::openat(devdir, "pts", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pts < 0 ||
        MountOn("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, g_plan->devpts_options) != 0) {
      Send(ReportKind::kNote, errno, 0, "no /dev/pts: mounting devpts failed");
    } else {
      ::symlinkat("pts/ptmx", devdir, "ptmx");
    }
    if (pts >= 0) ::close(pts);
  }
  if (::mkdirat(devdir, "shm", 01777) == 0) {
    int shm = ::openat(devdir, "shm", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (shm < 0 || MountOn("tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
      Fatal("mount tmpfs on /dev/shm", nullptr, errno);
    }
    ::close(shm);
  }
  ::symlinkat("/proc/self/fd", devdir, "fd");
  ::symlinkat("/proc/self/fd/0", devdir, "stdin");
  ::symlinkat("/proc/self/fd/1", devdir, "stdout");
  ::symlinkat("/proc/self/fd/2", devdir, "stderr");
  ::close(devdir);
}

// /run is a fresh tmpfs, as on a booted system; it also holds the sudo shim.
// Returns whether the shim was installed.
bool SetUpRun(int root_fd, const ChildPlan& plan) {
  int run = OpenInRoot(root_fd, "run", O_PATH | O_DIRECTORY);
  if (run < 0) {
    if (plan.sudo_shim) Send(ReportKind::kNote, 0, 0, "no sudo shim: the tree has no /run");
    return false;
  }
  if (MountOn("tmpfs", run, "tmpfs", MS_NOSUID | MS_NODEV, plan.run_options) != 0) {
    Fatal("mount tmpfs on /run", nullptr, errno);
  }
  ::close(run);
  int rundir = OpenInRoot(root_fd, "run", O_RDONLY | O_DIRECTORY);
  if (rundir < 0) Fatal("open /run", nullptr, errno);
  ::mkdirat(rundir, "lock", 01777);
  bool installed = false;
  bool have_sudo = false;
  for (const char* probe : plan.sudo_probe) {
    int f = OpenInRoot(root_fd, probe, O_PATH);
    if (f >= 0) {
      ::close(f);
      have_sudo = true;
      break;
    }
  }
  if (plan.sudo_shim && !have_sudo) {
    if (::mkdirat(rundir, "imagesmith", 0755) != 0) Fatal("mkdir /run/imagesmith", nullptr, errno);
    int dir = ::openat(rundir, "imagesmith", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || ::mkdirat(dir, "bin", 0755) != 0)
      Fatal("mkdir /run/imagesmith/bin", nullptr, errno);
    int bin = ::openat(dir, "bin", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int f = bin < 0 ? -1 : ::openat(bin, "sudo", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0755);
    if (f < 0) Fatal("create /run/imagesmith/bin/sudo", nullptr, errno);
    WriteAll(f, plan.sudo_shim_text, std::strlen(plan.sudo_shim_text));
    ::fchmod(f, 0755);
    ::close(f);
    ::close(bin);
    ::close(dir);
    installed = true;
  }
  ::close(rundir);
  return installed;
}

// Debian trees with systemd-resolved link /etc/resolv.conf to a file under
// /run, which is our fresh tmpfs here; create that file (not in the tree) so
// the host's resolv.conf can be bound over it. Uses no allocation.
void CreateRunTargetOfResolvLink(int root_fd) {
  char link[256];
  ssize_t n = ::readlinkat(root_fd, "etc/resolv.conf", link, sizeof link - 1);
  if (n <= 0) return;
  link[n] = '\0';
  const char* p = link;
  while (std::strncmp(p, "../", 3) == 0) p += 3;
  while (*p == '/') ++p;
  if (std::strncmp(p, "run/", 4) != 0 || std::strstr(p, "..") != nullptr) return;
  int dir = OpenInRoot(root_fd, "run", O_RDONLY | O_DIRECTORY);
  if (dir < 0) return;
  p += 4;
  char part[256];
  while (const char* slash = std::strchr(p, '/')) {
    size_t len = static_cast<size_t>(slash - p);
    if (len == 0 || len >= sizeof part) break;
    std::memcpy(part, p, len);
    part[len] = '\0';
    ::mkdirat(dir, part, 0755);
    int next = ::openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ::close(dir);
    if (next < 0) return;
    dir = next;
    p = slash + 1;
  }
  if (*p != '\0') {
    int f = ::openat(dir, p, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f >= 0) ::close(f);
  }
  ::close(dir);
}

void SetUpResolvConf(int root_fd, dev_t root_dev, const ChildPlan& plan) {
  if (plan.resolv_source == nullptr) return;
  CreateRunTargetOfResolvLink(root_fd);
  int target = MountPoint(root_fd, root_dev, "etc/resolv.conf", "etc", "resolv.conf", false);
  if (target < 0) {
    Send(ReportKind::kNote, errno, 0,
         plan.writable ? "host /etc/resolv.conf not bound: the tree's /etc/resolv.conf is a "
                         "dangling symlink or /etc is missing"
                       : "host /etc/resolv.conf not bound: the tree has none and is read-only");
    return;
  }
  struct stat st {};
  if (::fstat(target, &st) != 0 || !S_ISREG(st.st_mode)) {
    Send(ReportKind::kNote, 0, 0, "host /etc/resolv.conf not bound: the tree's is not a file");
    ::close(target);
    return;
  }
  if (MountOn(plan.resolv_source, target, nullptr, MS_BIND, nullptr) != 0) {
    Fatal("bind", plan.resolv_source, errno);
  }
  ::close(target);
  RemountReadOnly(root_fd, "etc/resolv.conf");
}

void SetUpBinds(int root_fd, dev_t root_dev, const ChildPlan& plan) {
  for (const ChildBind& b : plan.binds) {
    int target = MountPoint(root_fd, root_dev, b.target, b.target_parent, b.target_leaf, b.is_dir);
    if (target < 0) Fatal("create the bind mount point (its parent must exist) /", b.target, errno);
    if (MountOn(b.source, target, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      Fatal("bind", b.source, errno);
    }
    ::close(target);
    if (b.read_only) RemountReadOnly(root_fd, b.target);
  }
}

void ResetSignals() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// The main process: becomes the command. Never returns.
[[noreturn]] void ExecMain(const ChildPlan& plan, bool shim) {
  ::setsid();
  ResetSignals();
  // The init made itself undumpable, which left our /proc/self to the host's
  // root; execve resets this anyway.
  ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  if (plan.fsize_limit != 0) {
    rlimit lim{plan.fsize_limit, plan.fsize_limit};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) Fatal("set RLIMIT_FSIZE", nullptr, errno);
  }
  if (plan.oom_score_adj != nullptr) {
    int f = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (f >= 0) {
      WriteAll(f, plan.oom_score_adj, std::strlen(plan.oom_score_adj));
      ::close(f);
    }
  }
  // Keep the report pipe (close-on-exec) at fd 3 to say why exec failed.
  int report = ::fcntl(plan.report_fd, F_DUPFD_CLOEXEC, 10);
  if (::dup2(plan.stdin_fd, 0) < 0 || ::dup2(plan.stdout_fd, 1) < 0 ||
      ::dup2(plan.stderr_fd, 2) < 0 || report < 0 || ::dup3(report, 3, O_CLOEXEC) < 0) {
    Fatal("set up stdin/stdout/stderr", nullptr, errno);
  }
  ::close_range(4, ~0U, 0);
  ::umask(022);
  if (plan.working_dir != nullptr && ::chdir(plan.working_dir) != 0) {
    // The parent turns this into a Status naming the directory.
    Report r;
    r.kind = static_cast<int32_t>(ReportKind::kFatal);
    r.err = errno;
    Append(r.text, sizeof r.text, "enter the working directory ");
    Append(r.text, sizeof r.text, plan.working_dir);
    WriteAll(3, &r, sizeof r);
    ::_exit(127);
  }
  char* const* envp = shim ? plan.envp_with_shim : plan.envp;
  const std::vector<const char*>& paths = shim ? plan.exec_paths_with_shim : plan.exec_paths;
  int err = ENOENT;
  for (const char* path : paths) {
    ::execve(path, plan.argv, envp);
    if (errno != ENOENT && errno != ENOTDIR) err = errno;
  }
  char msg[600] = "imagesmith sandbox: ";
  Append(msg, sizeof msg, plan.argv[0]);
  Append(msg, sizeof msg, err == ENOENT ? ": command not found" : ": cannot execute: ");
  if (err != ENOENT) Append(msg, sizeof msg, strerrordesc_np(err));
  Append(msg, sizeof msg, "\n");
  WriteAll(2, msg, std::strlen(msg));
  ::_exit(err == ENOENT ? 127 : 126);
}

// Fields `first` and `first + 1` (1-based, as in proc(5)) of /proc/self/stat.
bool ReadStatPair(int first, unsigned long* a, unsigned long* b) {
  char buf[2048];
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  char* p = std::strrchr(buf, ')');  // the command name may contain spaces
  if (p == nullptr) return false;
  int field = 2;
  unsigned long values[2] = {0, 0};
  for (++p; *p != '\0'; ++p) {
    if (*p == ' ') {
      ++field;
      continue;
    }
    if (field == first || field == first + 1) {
      if (*p < '0' || *p > '9') return false;
      values[field - first] = values[field - first] * 10 + static_cast<unsigned long>(*p - '0');
    }
  }
  *a = values[0];
  *b = values[1];
  return field > first;
}

// Makes `ps` inside the sandbox show pid 1 as "imagesmith-init"
// rather than the host program's command line, which this process inherited:
// overwrite our (copy-on-write) copy of the argument area in place.
void NameInit() {
  ::prctl(PR_SET_NAME, "imagesmith-init", 0, 0, 0);
  unsigned long start = 0, end = 0;
  if (!ReadStatPair(48, &start, &end) || end <= start) return;
  static const char kName[] = "imagesmith-init";  // = comm, at most 15 bytes
  // The address comes from the kernel (proc(5) arg_start), not from arithmetic.
  char* args = reinterpret_cast<char*>(start);  // NOLINT(performance-no-int-to-ptr)
  size_t len = end - start;
  std::memset(args, 0, len);
  std::memcpy(args, kName, len < sizeof kName ? len - 1 : sizeof kName - 1);
}

// Makes every capability in the permitted set effective again (a change of
// fsuid away from 0 clears the file-system ones).
void RaiseEffective() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) Fatal("capget", nullptr, errno);
  for (auto& d : data) d.effective = d.permitted;
  if (::syscall(SYS_capset, &header, data) != 0) Fatal("capset", nullptr, errno);
}

// Covers `path` with an idmapped bind mount of itself: a file the disk says
// uid k owns shows as tree_root + k through it, and one created by tree_root
// + k is stored as k. So the image keeps its real owners on disk while root
// inside the user namespace (tree_root) owns what root owns in the image.
void IdmapInPlace(const char* path, int userns_fd) {
  int tree = static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (tree < 0) Fatal("clone the mount of", path, errno);
  mount_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    Fatal("idmap the mount of", path, errno);
  }
  if (::syscall(SYS_move_mount, tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    Fatal("attach the idmapped mount on", path, errno);
  }
  ::close(tree);
}

// After pivot_root: become root of the user namespace (host uid tree_root),
// with UTS and IPC namespaces of its own, a reduced bounding set,
// no_new_privs and the seccomp filter. Everything the command runs inherits it.
void EnterBoundary(const ChildPlan& plan) {
  if (::setns(plan.userns_fd, CLONE_NEWUSER) != 0)
    Fatal("enter the user namespace", nullptr, errno);
  ::close(plan.userns_fd);
  // Raw system calls, not glibc's wrappers: this process was made by a raw
  // clone, so glibc still lists the parent's other threads, and its setxid
  // wrappers wait forever for those threads to change their credentials too
  // (a hang seen in SandboxTest.ConcurrentRunsDoNotInterfere, 1 run in ~25).
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) {
    Fatal("clear supplementary groups", nullptr, errno);
  }
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0) {
    Fatal("become gid 0 of the user namespace", nullptr, errno);
  }
  if (::syscall(SYS_setresuid, 0, 0, 0) != 0) {
    Fatal("become uid 0 of the user namespace", nullptr, errno);
  }
  // A change of credentials clears the parent-death signal: arm it again.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::unshare(CLONE_NEWUTS | CLONE_NEWIPC) != 0) {
    Fatal("create the UTS and IPC namespaces", nullptr, errno);
  }
  for (int cap = 0; cap < 64; ++cap) {
    if ((plan.keep_caps >> cap) & 1) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      Fatal("drop a capability from the bounding set", nullptr, errno);
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fatal("set no_new_privs", nullptr, errno);
}

void LoadSeccomp(const ChildPlan& plan) {
  long listener = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                            plan.seccomp);
  if (listener < 0) Fatal("load the seccomp filter", nullptr, errno);
  Send(ReportKind::kListener, 0, static_cast<int32_t>(listener), "");
  // Nothing inside may read the init's memory or fds (/proc/1/...).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

}  // namespace

void ChildMain(const ChildPlan& plan) {
  g_plan = &plan;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  NameInit();
  char go = 0;
  ssize_t n;
  do {
    n = ::read(plan.go_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(1);  // the parent went away or gave up
  ::close(plan.go_fd);
  CloseAllBut(plan.keep_fds);
  // An inherited SIGCHLD = SIG_IGN would make the kernel reap our children
  // before waitpid could see the main process's status.
  ResetSignals();
  ::umask(0);

  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    Fatal("make mounts private", nullptr, errno);
  }
  if (plan.userns_fd >= 0) {
    for (const char* path : plan.idmap_paths) IdmapInPlace(path, plan.userns_fd);
    // Set up as the tree's root: what the setup creates in the tree (mount
    // points) and on its tmpfs mounts is root's inside, and overlayfs, which
    // acts with its mounter's credentials, can map them through the idmap.
    ::setfsgid(plan.tree_root);
    ::setfsuid(plan.tree_root);
    RaiseEffective();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // cleared by the change of fsuid
  }
  if (plan.overlay_options != nullptr) {
    unsigned long flags = plan.writable ? 0 : MS_RDONLY;
    // overlayfs resolves relative layer names against the working directory.
    int cwd = -1;
    if (plan.layers_dir != nullptr) {
      cwd = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (cwd < 0 || ::chdir(plan.layers_dir) != 0) {
        Fatal("enter the layer links", plan.layers_dir, errno);
      }
    }
    if (::mount("overlay", plan.mount_point, "overlay", flags, plan.overlay_options) != 0) {
      Fatal("mount overlay", plan.overlay_options, errno);
    }
    if (cwd >= 0) {
      if (::fchdir(cwd) != 0) Fatal("return to the working directory", nullptr, errno);
      ::close(cwd);
    }
  } else {
    if (::mount(plan.bind_layer, plan.mount_point, nullptr, MS_BIND, nullptr) != 0) {
      Fatal("bind-mount the layer", plan.bind_layer, errno);
    }
    if (::mount(nullptr, plan.mount_point, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) !=
        0) {
      Fatal("remount read-only", plan.bind_layer, errno);
    }
  }

  bool shim = false;
  if (plan.in_tree) {
    int root_fd = ::open(plan.mount_point, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat root_st {};
    if (root_fd < 0 || ::fstat(root_fd, &root_st) != 0) Fatal("open", plan.mount_point, errno);
    int proc = MountPoint(root_fd, root_st.st_dev, "proc", ".", "proc", true);
    if (proc < 0) Fatal("find or create /proc in the tree", nullptr, errno);
    if (MountOn("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      Fatal("mount /proc", nullptr, errno);
    }
    ::close(proc);
    SetUpDev(root_fd, root_st.st_dev);
    int sys = OpenInRoot(root_fd, "sys", O_PATH | O_DIRECTORY);
    if (sys >= 0) {
      if (MountOn("sysfs", sys, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
          0) {
        Send(ReportKind::kNote, errno, 0, "no /sys: mounting sysfs failed");
      }
      ::close(sys);
    }
    shim = SetUpRun(root_fd, plan);
    SetUpResolvConf(root_fd, root_st.st_dev, plan);
    SetUpBinds(root_fd, root_st.st_dev, plan);
    // Swap the root: afterwards the host's filesystems are not reachable from
    // this mount namespace at all, and it holds no reference to them.
    if (::fchdir(root_fd) != 0) Fatal("enter", plan.mount_point, errno);
    if (::syscall(SYS_pivot_root, ".", ".") != 0) Fatal("pivot_root into", plan.mount_point, errno);
    if (::umount2(".", MNT_DETACH) != 0) Fatal("detach the host root", nullptr, errno);
    if (::chdir("/") != 0) Fatal("chdir /", nullptr, errno);
    ::close(root_fd);
    if (plan.userns_fd >= 0) EnterBoundary(plan);
    if (plan.hostname != nullptr && ::sethostname(plan.hostname, std::strlen(plan.hostname)) != 0) {
      Fatal("set the hostname", plan.hostname, errno);
    }
    if (plan.seccomp != nullptr) LoadSeccomp(plan);
  }

  // A raw clone, not fork(): glibc's fork takes malloc and stdio locks that
  // another thread of the parent may have held when we were cloned.
  pid_t main_pid =
      static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (main_pid < 0) Fatal("fork the main process", nullptr, errno);
  if (main_pid == 0) ExecMain(plan, shim);

  // init: hold no pipe ends the command's EOF depends on, reap everything,
  // and leave when the main process does -- the kernel then kills whatever is
  // left in the PID namespace.
  ::close(plan.stdin_fd);
  ::close(plan.stdout_fd);
  ::close(plan.stderr_fd);
  while (true) {
    int status = 0;
    pid_t w = ::waitpid(-1, &status, 0);
    if (w < 0) {
      if (errno == EINTR) continue;
      Fatal("wait for the main process", nullptr, errno);
    }
    if (w == main_pid) {
      Send(ReportKind::kExited, 0, status, "");
      ::_exit(0);
    }
  }
}

}  // namespace imagesmith::sandbox::internal
