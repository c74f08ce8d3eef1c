#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/env.h"
#include "base/strings.h"

namespace imagesmith::sandbox {
namespace {

std::atomic<int> g_sequence{0};

StatusOr<std::string> ReadSmallFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("read " + path, errno);
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ErrnoError("read " + path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (16 << 20)) break;
  }
  ::close(fd);
  return out;
}

Status WriteControl(const std::string& path, std::string_view value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0) return ErrnoError("write " + QuoteForMessage(value) + " to " + path, err);
  return Status::Ok();
}

// One line of /proc/self/mountinfo that is a cgroup mount.
struct CgroupMount {
  std::string root;         // the cgroup path mounted there ("/" normally)
  std::string mount_point;  // "/sys/fs/cgroup/memory"
  bool v2 = false;
  std::vector<std::string> controllers;  // from the super options (v1)
};

std::vector<CgroupMount> ReadCgroupMounts() {
  std::vector<CgroupMount> mounts;
  auto text = ReadSmallFile("/proc/self/mountinfo");
  if (!text.ok()) return mounts;
  for (const std::string& line : Split(*text, '\n')) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::vector<std::string> left = Split(line.substr(0, dash), ' ');
    std::vector<std::string> right = Split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    CgroupMount m;
    if (right[0] == "cgroup2") {
      m.v2 = true;
    } else if (right[0] != "cgroup") {
      continue;
    }
    m.root = left[3];
    m.mount_point = left[4];
    for (const std::string& opt : Split(right[2], ',')) m.controllers.push_back(opt);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  for (const std::string& x : v) {
    if (x == s) return true;
  }
  return false;
}

// The calling process's cgroup path in the hierarchy holding `controller`
// ("" for the v2 unified hierarchy), from /proc/self/cgroup.
std::string OwnPath(const std::string& controller) {
  auto text = ReadSmallFile("/proc/self/cgroup");
  if (!text.ok()) return "/";
  for (const std::string& line : Split(*text, '\n')) {
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::vector<std::string> names = Split(line.substr(a + 1, b - a - 1), ',');
    bool match =
        controller.empty() ? line.substr(a + 1, b - a - 1).empty() : Contains(names, controller);
    if (match) return line.substr(b + 1);
  }
  return "/";
}

// Where the calling process's cgroup lives under a mount.
std::string OwnDir(const CgroupMount& m, const std::string& own_path) {
  std::string rel = own_path;
  if (m.root != "/" && StartsWith(rel, m.root)) rel = rel.substr(m.root.size());
  std::string dir = m.mount_point;
  if (!rel.empty() && rel != "/") dir += rel;
  return dir;
}

std::vector<pid_t> ReadPids(const std::string& dir) {
  std::vector<pid_t> pids;
  auto text = ReadSmallFile(dir + "/cgroup.procs");
  if (!text.ok()) return pids;
  for (const std::string& line : Split(*text, '\n')) {
    if (!line.empty() && IsAsciiDigits(line)) pids.push_back(static_cast<pid_t>(std::stol(line)));
  }
  return pids;
}

int64_t ReadKeyedValue(const std::string& path, const std::string& key) {
  auto text = ReadSmallFile(path);
  if (!text.ok()) return 0;
  for (const std::string& line : Split(*text, '\n')) {
    if (StartsWith(line, key + " ")) {
      std::string v(TrimWhitespace(line.substr(key.size() + 1)));
      if (IsAsciiDigits(v)) return std::stoll(v);
    }
  }
  return 0;
}

// Removes empty cgroups that runs of a process which no longer exists left
// behind (it was killed before it could clean up). Best effort.
void SweepStale(const std::string& parent) {
  DIR* dir = ::opendir(parent.c_str());
  if (dir == nullptr) return;
  const std::string prefix = "imagesmith-sandbox-";
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (!StartsWith(name, prefix)) continue;
    std::vector<std::string> parts = Split(name.substr(prefix.size()), '-');
    if (parts.size() != 2 || !IsAsciiDigits(parts[0]) || parts[0].size() > 9) continue;
    pid_t pid = static_cast<pid_t>(std::stol(parts[0]));
    if (::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(JoinPath(parent, name));
  }
  ::closedir(dir);
  for (const std::string& d : stale) ::rmdir(d.c_str());  // fails harmlessly unless empty
}

std::string UniqueName() {
  return "imagesmith-sandbox-" + std::to_string(::getpid()) + "-" +
         std::to_string(g_sequence.fetch_add(1));
}

Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0) return ErrnoError("create cgroup " + dir, errno);
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<Cgroup>> Cgroup::Create(const Limits& limits) {
  std::unique_ptr<Cgroup> cg(new Cgroup());
  const std::string name = UniqueName();
  std::vector<CgroupMount> mounts = ReadCgroupMounts();
  auto fail = [&](const Status& s) -> Status {
    (void)cg->Remove();
    return FailedPreconditionError("cannot set up the sandbox's cgroup: " + s.message());
  };

  struct stat st {};
  cg->v2_ = ::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
  if (cg->v2_) {
    const CgroupMount* unified = nullptr;
    for (const CgroupMount& m : mounts) {
      if (m.v2 && m.mount_point == "/sys/fs/cgroup") unified = &m;
    }
    if (unified == nullptr) {
      return FailedPreconditionError(
          "cannot set up the sandbox's cgroup: /sys/fs/cgroup is cgroup v2 but is not listed in "
          "/proc/self/mountinfo");
    }
    std::vector<std::string> wanted = {"pids"};
    if (limits.memory_bytes > 0) wanted.push_back("memory");
    if (limits.cpus > 0) wanted.push_back("cpu");
    std::string enable;
    for (const std::string& c : wanted) enable += (enable.empty() ? "+" : " +") + c;
    // Try beneath our own cgroup first; a v2 cgroup that holds processes
    // cannot delegate controllers, so fall back to /sys/fs/cgroup/imagesmith.
    std::vector<std::string> parents = {OwnDir(*unified, OwnPath("")),
                                        unified->mount_point + "/imagesmith"};
    Status last;
    for (const std::string& parent : parents) {
      if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
        last = ErrnoError("create cgroup " + parent, errno);
        continue;
      }
      if (parent == parents.back()) {
        // The top-level group can only offer what the root delegates.
        (void)WriteControl(unified->mount_point + "/cgroup.subtree_control", enable);
      }
      SweepStale(parent);
      auto avail = ReadSmallFile(parent + "/cgroup.controllers");
      if (!avail.ok()) {
        last = avail.status();
        continue;
      }
      std::vector<std::string> have = Split(std::string(TrimWhitespace(*avail)), ' ');
      std::string missing;
      for (const std::string& c : wanted) {
        if (!Contains(have, c)) missing += " " + c;
      }
      if (!missing.empty()) {
        last = FailedPreconditionError(
            std::string(parent).append(" does not offer the controllers:").append(missing));
        continue;
      }
      last = WriteControl(parent + "/cgroup.subtree_control", enable);
      if (!last.ok()) continue;
      std::string dir = JoinPath(parent, name);
      last = MakeDir(dir);
      if (!last.ok()) continue;
      cg->dirs_.push_back(dir);
      for (const char* c : {"memory", "cpu", "pids", "freezer"}) {
        cg->controller_dirs_.emplace_back(c, dir);
      }
      break;
    }
    if (cg->dirs_.empty()) return fail(last);
    const std::string& dir = cg->dirs_[0];
    if (limits.memory_bytes > 0) {
      Status s = WriteControl(dir + "/memory.max", std::to_string(limits.memory_bytes));
      if (!s.ok()) return fail(s);
      (void)WriteControl(dir + "/memory.swap.max", "0");  // absent without swap accounting
    }
    if (limits.cpus > 0) {
      int64_t quota = std::max<int64_t>(1000, std::llround(limits.cpus * 100000));
      Status s = WriteControl(dir + "/cpu.max", std::to_string(quota) + " 100000");
      if (!s.ok()) return fail(s);
    }
    if (limits.max_pids > 0) {
      Status s = WriteControl(dir + "/pids.max", std::to_string(limits.max_pids));
      if (!s.ok()) return fail(s);
    }
    return cg;
  }

  // cgroup v1: one directory per hierarchy we use.
  for (const std::string controller : {"memory", "cpu", "pids", "freezer"}) {
    const CgroupMount* mount = nullptr;
    for (const CgroupMount& m : mounts) {
      if (!m.v2 && Contains(m.controllers, controller)) mount = &m;
    }
    bool required = (controller == "memory" && limits.memory_bytes > 0) ||
                    (controller == "cpu" && limits.cpus > 0) ||
                    (controller == "pids" && limits.max_pids > 0);
    if (mount == nullptr) {
      if (required) {
        return fail(FailedPreconditionError("the " + controller +
                                            " cgroup controller is not mounted (cgroup v1)"));
      }
      continue;
    }
    std::string dir;
    for (const std::string& d : cg->dirs_) {
      // Co-mounted controllers ("cpu,cpuacct") share a directory.
      if (StartsWith(d, mount->mount_point + "/")) dir = d;
    }
    if (dir.empty()) {
      std::string own = OwnDir(*mount, OwnPath(controller));
      std::vector<std::string> parents = {own, mount->mount_point + "/imagesmith"};
      Status last;
      for (const std::string& parent : parents) {
        if (parent != own && ::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
          last = ErrnoError("create cgroup " + parent, errno);
          continue;
        }
        SweepStale(parent);
        last = MakeDir(JoinPath(parent, name));
        if (last.ok()) {
          dir = JoinPath(parent, name);
          break;
        }
      }
      if (dir.empty()) {
        if (required) return fail(last);
        continue;
      }
      cg->dirs_.push_back(dir);
    }
    cg->controller_dirs_.emplace_back(controller, dir);
  }
  if (cg->dirs_.empty()) {
    return fail(FailedPreconditionError("no cgroup v1 hierarchy is mounted under /sys/fs/cgroup"));
  }
  if (std::string dir = cg->DirFor("memory"); !dir.empty() && limits.memory_bytes > 0) {
    Status s = WriteControl(dir + "/memory.limit_in_bytes", std::to_string(limits.memory_bytes));
    if (!s.ok()) return fail(s);
    // Without swap accounting the file is absent; then there is no swap to limit.
    (void)WriteControl(dir + "/memory.memsw.limit_in_bytes", std::to_string(limits.memory_bytes));
  }
  if (std::string dir = cg->DirFor("cpu"); !dir.empty() && limits.cpus > 0) {
    int64_t quota = std::max<int64_t>(1000, std::llround(limits.cpus * 100000));
    Status s = WriteControl(dir + "/cpu.cfs_period_us", "100000");
    if (s.ok()) s = WriteControl(dir + "/cpu.cfs_quota_us", std::to_string(quota));
    if (!s.ok()) return fail(s);
  }
  if (std::string dir = cg->DirFor("pids"); !dir.empty() && limits.max_pids > 0) {
    Status s = WriteControl(dir + "/pids.max", std::to_string(limits.max_pids));
    if (!s.ok()) return fail(s);
  }
  return cg;
}

Cgroup::~Cgroup() { (void)Remove(); }

std::string Cgroup::DirFor(const std::string& controller) const {
  for (const auto& [c, d] : controller_dirs_) {
    if (c == controller) return d;
  }
  return "";
}

Status Cgroup::AddProcess(pid_t pid) {
  for (const std::string& dir : dirs_) {
    Status s = WriteControl(dir + "/cgroup.procs", std::to_string(pid));
    if (!s.ok())
      return FailedPreconditionError("cannot move the sandbox into its cgroup: " + s.message());
  }
  return Status::Ok();
}

std::vector<pid_t> Cgroup::Pids() const {
  std::vector<pid_t> all;
  for (const std::string& dir : dirs_) {
    for (pid_t p : ReadPids(dir)) all.push_back(p);
  }
  return all;
}

Status Cgroup::KillAll() {
  if (dirs_.empty()) return Status::Ok();
  if (v2_) {
    // cgroup.kill exists from Linux 5.14; fall back to the loop below.
    (void)WriteControl(dirs_[0] + "/cgroup.kill", "1");
  }
  std::string freezer = v2_ ? "" : DirFor("freezer");
  bool frozen = false;
  if (!freezer.empty() && !Pids().empty()) {
    // Freeze first so nothing can fork between reading cgroup.procs and the kill.
    if (WriteControl(freezer + "/freezer.state", "FROZEN").ok()) {
      frozen = true;
      for (int i = 0; i < 100; ++i) {
        auto state = ReadSmallFile(freezer + "/freezer.state");
        if (!state.ok() || TrimWhitespace(*state) == "FROZEN") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }
  for (pid_t p : Pids()) ::kill(p, SIGKILL);
  if (frozen) (void)WriteControl(freezer + "/freezer.state", "THAWED");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    std::vector<pid_t> left = Pids();
    if (left.empty()) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceededError("processes " + std::to_string(left.size()) +
                                   " still in cgroup " + dirs_[0] + " 10 s after SIGKILL");
    }
    for (pid_t p : left) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int64_t Cgroup::OomKills() const {
  std::string dir = DirFor("memory");
  if (dir.empty()) return 0;
  if (v2_) return ReadKeyedValue(dir + "/memory.events", "oom_kill");
  return ReadKeyedValue(dir + "/memory.oom_control", "oom_kill");
}

Status Cgroup::Remove() {
  if (removed_) return Status::Ok();
  Status kill_status = KillAll();
  Status result = kill_status;
  for (const std::string& dir : dirs_) {
    // rmdir fails with EBUSY for a moment while killed tasks finish exiting.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      if ((errno != EBUSY && errno != EAGAIN) || std::chrono::steady_clock::now() > deadline) {
        if (result.ok()) result = ErrnoError("remove cgroup " + dir, errno);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  removed_ = true;
  return result;
}

}  // namespace imagesmith::sandbox
