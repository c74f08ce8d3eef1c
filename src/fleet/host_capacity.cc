#include "fleet/host_capacity.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include "base/json.h"
#include "base/process.h"
#include "base/strings.h"

namespace imagesmith::fleet {
namespace {

constexpr uint64_t kHostReserveMb = 4096;
constexpr int kCpusPerHostCpu = 8;
constexpr int64_t kCreatingLimitUs = 10 * 60 * 1000000LL;

class Flock {
 public:
  explicit Flock(int fd) : fd_(fd) {}
  ~Flock() {
    if (fd_ >= 0) ::close(fd_);
  }
  Flock(const Flock&) = delete;
  Flock& operator=(const Flock&) = delete;

 private:
  int fd_;
};

StatusOr<int> LockFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("open " + path, errno);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int err = errno;
      ::close(fd);
      return ErrnoError("flock " + path, err);
    }
  }
  return fd;
}

std::optional<uint64_t> EnvNumber(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0' || !IsAsciiDigits(v)) return std::nullopt;
  return std::strtoull(v, nullptr, 10);
}

}  // namespace

StatusOr<HostLimits> ReadHostLimits(Env& env) {
  HostLimits limits;
  if (auto cpus = EnvNumber("IMAGESMITH_FLEET_HOST_CPUS")) {
    limits.cpus = static_cast<int>(*cpus);
  } else {
    limits.cpus =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) * kCpusPerHostCpu;
  }
  if (auto mem = EnvNumber("IMAGESMITH_FLEET_HOST_MEMORY_MB")) {
    limits.memory_mb = *mem;
    return limits;
  }
  ASSIGN_OR_RETURN(std::string meminfo, env.ReadFile("/proc/meminfo", 1 << 20));
  for (const std::string& line : Split(meminfo, '\n')) {
    if (!StartsWith(line, "MemTotal:")) continue;
    uint64_t kb = std::strtoull(line.c_str() + 9, nullptr, 10);
    uint64_t mb = kb / 1024;
    limits.memory_mb = mb > kHostReserveMb ? mb - kHostReserveMb : 0;
    return limits;
  }
  return InternalError("/proc/meminfo has no MemTotal line");
}

HostCapacity::HostCapacity(Env& env, std::string state_dir)
    : env_(env), dir_(JoinPath(state_dir, "ledger")), lock_(JoinPath(state_dir, "ledger.lock")) {}

Status HostCapacity::Reserve(const std::string& node_id, int cpus, uint64_t memory_mb) {
  RETURN_IF_ERROR(env_.CreateDirs(dir_));
  ASSIGN_OR_RETURN(HostLimits limits, ReadHostLimits(env_));
  ASSIGN_OR_RETURN(int fd, LockFile(lock_));
  Flock lock(fd);
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.ListDir(dir_));
  int used_cpus = 0, nodes = 0;
  uint64_t used_mb = 0;
  int64_t now = env_.NowMicros();
  for (const std::string& name : names) {
    std::string path = JoinPath(dir_, name);
    if (name == node_id) continue;  // replaced below
    auto text = env_.ReadFile(path, 1 << 16);
    auto json = text.ok() ? ParseJson(*text) : StatusOr<Json>(text.status());
    if (!json.ok() || !json->is_object()) {
      (void)env_.RemoveAll(path);
      continue;
    }
    auto num = [&](const char* key) {
      const Json* v = json->Find(key);
      return v == nullptr ? int64_t{0} : v->AsInt64().value_or(0);
    };
    int64_t pid = num("pid");
    bool live = pid > 0
                    ? ProcessAlive(static_cast<int>(pid), static_cast<uint64_t>(num("startTicks")))
                    : now - num("reservedUs") < kCreatingLimitUs;
    if (!live) {
      (void)env_.RemoveAll(path);
      continue;
    }
    used_cpus += static_cast<int>(num("cpus"));
    used_mb += static_cast<uint64_t>(num("memoryMb"));
    ++nodes;
  }
  if (used_cpus + cpus > limits.cpus || used_mb + memory_mb > limits.memory_mb) {
    return ResourceExhaustedError(
        "the host cannot fit node " + node_id + ": it asks for " + std::to_string(cpus) +
        " vCPUs and " + std::to_string(memory_mb) + " MiB; " + std::to_string(nodes) +
        " qemu nodes on this host use " + std::to_string(used_cpus) + " vCPUs and " +
        std::to_string(used_mb) + " MiB; the host's limit is " + std::to_string(limits.cpus) +
        " vCPUs and " + std::to_string(limits.memory_mb) +
        " MiB (doc/fleet.md, \"The capacity rule\"; delete nodes or pick a smaller vmSize)");
  }
  Json entry = Json::MakeObject();
  entry.Set("cpus", Json::Int(cpus));
  entry.Set("memoryMb", Json::Int(static_cast<int64_t>(memory_mb)));
  entry.Set("pid", Json::Int(0));
  entry.Set("startTicks", Json::Int(0));
  entry.Set("reservedUs", Json::Int(now));
  return env_.WriteFileAtomic(JoinPath(dir_, node_id), entry.Dump());
}

Status HostCapacity::SetProcess(const std::string& node_id, int64_t pid, uint64_t start_ticks) {
  ASSIGN_OR_RETURN(int fd, LockFile(lock_));
  Flock lock(fd);
  std::string path = JoinPath(dir_, node_id);
  ASSIGN_OR_RETURN(std::string text, env_.ReadFile(path, 1 << 16));
  ASSIGN_OR_RETURN(Json entry, ParseJson(text));
  if (!entry.is_object()) return InternalError("ledger entry " + path + " is not an object");
  entry.Set("pid", Json::Int(pid));
  entry.Set("startTicks", Json::Int(static_cast<int64_t>(start_ticks)));
  return env_.WriteFileAtomic(path, entry.Dump());
}

Status HostCapacity::Release(const std::string& node_id) {
  ASSIGN_OR_RETURN(int fd, LockFile(lock_));
  Flock lock(fd);
  return env_.RemoveAll(JoinPath(dir_, node_id));
}

}  // namespace imagesmith::fleet
