// The sim node driver: no processes and no threads per node. A node is a
// small record (when it was created plus draws from a seeded generator), and
// Observe computes its state from the clock, so thousands of nodes cost a
// map lookup each. Draws depend only on the seed, the node's id and how
// often it was rebooted, so a new driver object that adopts a node (same
// created_us) sees the same node.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>

#include "base/strings.h"
#include "fleet/node_driver.h"

namespace imagesmith::fleet {
namespace {

using std::chrono::milliseconds;

uint64_t Fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool ValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

// One node's fate, drawn when it is created, rebooted or reimaged.
struct SimNode {
  NodeSpec spec;
  int64_t created_us = 0;  // wall clock of Create (NodeRuntime::created_us)
  int64_t start_us = 0;    // wall clock of the (re)boot
  int generation = 0;      // reboots and reimages so far
  int64_t boot_us = 0;     // hello comes boot_us after start_us
  bool boot_fails = false;
  bool heartbeat_lost = false;
  int64_t preempt_after_us = -1;  // after hello; -1: never
};

class SimDriver final : public NodeDriver {
 public:
  SimDriver(Env& env, SimSettings settings) : env_(env), settings_(std::move(settings)) {}

  std::string_view Name() const override { return "sim"; }

  StatusOr<NodeRuntime> Create(const NodeSpec& spec) override {
    if (!ValidNodeId(spec.node_id)) {
      return InvalidArgumentError("node id " + QuoteForMessage(spec.node_id) +
                                  " must be 1-64 characters of [a-z0-9_-]");
    }
    std::lock_guard lock(mu_);
    if (nodes_.count(spec.node_id) != 0) {
      return AlreadyExistsError("node " + spec.node_id + " already exists");
    }
    NodeRuntime runtime;
    runtime.driver = "sim";
    runtime.created_us = env_.NowMicros();
    nodes_[spec.node_id] = Draw(spec, runtime.created_us, 0);
    nodes_[spec.node_id].created_us = runtime.created_us;
    return runtime;
  }

  StatusOr<NodeRuntime> Runtime(const std::string& node_id) override {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return NotFoundError("sim: no node " + node_id);
    NodeRuntime runtime;
    runtime.driver = "sim";
    runtime.created_us = it->second.created_us;
    return runtime;
  }

  Status Adopt(const NodeSpec& spec, const NodeRuntime& runtime) override {
    if (runtime.driver != "sim") {
      return InvalidArgumentError("node " + spec.node_id + " was made by the " + runtime.driver +
                                  " driver, not sim");
    }
    std::lock_guard lock(mu_);
    if (nodes_.count(spec.node_id) == 0) {
      nodes_[spec.node_id] = Draw(spec, runtime.created_us, 0);
      nodes_[spec.node_id].created_us = runtime.created_us;
    }
    return Status::Ok();
  }

  NodeObservation Observe(const std::string& node_id) override {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) {
      NodeObservation gone;
      gone.machine = NodeObservation::Machine::kGone;
      gone.detail = "sim: no node " + node_id;
      return gone;
    }
    return ObserveLocked(it->second, env_.NowMicros());
  }

  StatusOr<TaskResult> RunTask(const std::string& node_id, const TaskSpec& task,
                               const std::atomic<bool>* cancel) override {
    int generation = 0;
    {
      std::lock_guard lock(mu_);
      auto it = nodes_.find(node_id);
      if (it == nodes_.end()) return FailedPreconditionError("sim: no node " + node_id);
      NodeObservation now = ObserveLocked(it->second, env_.NowMicros());
      if (now.machine != NodeObservation::Machine::kReady) {
        return FailedPreconditionError("node " + node_id + " is not ready (its agent has not " +
                                       "said hello or it is gone)");
      }
      if (it->second.heartbeat_lost) {
        return UnavailableError("node " + node_id + "'s agent stopped responding");
      }
      generation = it->second.generation;
    }
    RETURN_IF_ERROR(AppendTo(task.stderr_path, ""));

    // A tiny interpreter: "a && b", "a; b" of exit N, true, false, sleep S,
    // echo WORDS; anything else prints "sim: <command>". Every task also takes
    // task_duration, so slots stay busy for a while.
    int64_t start = env_.MonotonicMicros();
    int64_t deadline =
        start + std::chrono::duration_cast<std::chrono::microseconds>(task.max_wall_clock).count();
    TaskResult result;
    result.exit_code = 0;
    RETURN_IF_ERROR(Wait(node_id, generation, settings_.task_duration.count() * 1000, deadline,
                         cancel, result));
    if (result.timed_out) return result;
    std::string_view rest = task.command_line;
    bool run_next = true;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      size_t amp = rest.find("&&");
      size_t cut = std::min(semi, amp);
      std::string_view part = TrimWhitespace(rest.substr(0, cut));
      bool and_next = cut == amp && amp != std::string_view::npos;
      rest = cut == std::string_view::npos ? std::string_view()
                                           : rest.substr(cut + (and_next ? 2 : 1));
      if (!run_next || part.empty()) {
        run_next = !and_next || result.exit_code == 0;
        continue;
      }
      if (part == "exit" || StartsWith(part, "exit ")) {
        std::string_view code = TrimWhitespace(part.substr(4));
        result.exit_code = code.empty() ? result.exit_code : std::atoi(std::string(code).c_str());
        return result;
      } else if (part == "true" || part == ":") {
        result.exit_code = 0;
      } else if (part == "false") {
        result.exit_code = 1;
      } else if (StartsWith(part, "sleep ")) {
        double seconds = std::atof(std::string(part.substr(6)).c_str());
        RETURN_IF_ERROR(Wait(node_id, generation, static_cast<int64_t>(seconds * 1e6), deadline,
                             cancel, result));
        if (result.timed_out) return result;
        result.exit_code = 0;
      } else if (part == "echo" || StartsWith(part, "echo ")) {
        std::string words(TrimWhitespace(part.substr(4)));
        if (words.size() >= 2 && (words.front() == '"' || words.front() == '\'') &&
            words.back() == words.front()) {
          words = words.substr(1, words.size() - 2);
        }
        RETURN_IF_ERROR(AppendTo(task.stdout_path, words + "\n"));
        result.exit_code = 0;
      } else {
        RETURN_IF_ERROR(AppendTo(task.stdout_path, "sim: " + std::string(part) + "\n"));
        result.exit_code = 0;
      }
      run_next = !and_next || result.exit_code == 0;
    }
    return result;
  }

  Status Reboot(const std::string& node_id) override {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return NotFoundError("sim: no node " + node_id);
    int64_t created = it->second.created_us;
    it->second = Draw(it->second.spec, env_.NowMicros(), it->second.generation + 1);
    it->second.created_us = created;
    return Status::Ok();
  }

  Status Reimage(const std::string& node_id, const NodeImage& image) override {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return NotFoundError("sim: no node " + node_id);
    NodeSpec spec = it->second.spec;
    spec.image = image;
    int64_t created = it->second.created_us;
    it->second = Draw(spec, env_.NowMicros(), it->second.generation + 1);
    it->second.created_us = created;
    return Status::Ok();
  }

  Status Delete(const std::string& node_id) override {
    std::lock_guard lock(mu_);
    nodes_.erase(node_id);
    return Status::Ok();
  }

 private:
  SimNode Draw(const NodeSpec& spec, int64_t start_us, int generation) const {
    std::mt19937_64 rng(Fnv1a(spec.node_id, settings_.seed * 0x9e3779b97f4a7c15ull + 1) ^
                        static_cast<uint64_t>(generation) * 0xbf58476d1ce4e5b9ull);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    SimNode node;
    node.spec = spec;
    node.start_us = start_us;
    node.generation = generation;
    int64_t lo = settings_.boot_min.count() * 1000;
    int64_t hi = std::max(lo, static_cast<int64_t>(settings_.boot_max.count() * 1000));
    node.boot_us = lo + static_cast<int64_t>(unit(rng) * static_cast<double>(hi - lo));
    node.boot_fails = unit(rng) < settings_.boot_failure_rate;
    node.heartbeat_lost = unit(rng) < settings_.heartbeat_loss_rate;
    double u = unit(rng);
    if (spec.low_priority && settings_.preemption_rate > 0) {
      // Exponential time to preemption with mean 1/rate minutes.
      node.preempt_after_us =
          static_cast<int64_t>(-std::log(1.0 - u) / settings_.preemption_rate * 60e6);
    }
    return node;
  }

  NodeObservation ObserveLocked(const SimNode& node, int64_t now_us) const {
    NodeObservation obs;
    int64_t hello_us = node.start_us + node.boot_us;
    if (node.boot_fails || now_us < hello_us) {
      obs.machine = NodeObservation::Machine::kBooting;
      return obs;
    }
    if (node.preempt_after_us >= 0 && now_us >= hello_us + node.preempt_after_us) {
      obs.machine = NodeObservation::Machine::kPreempted;
      obs.detail = "sim: low-priority node preempted";
      return obs;
    }
    obs.machine = NodeObservation::Machine::kReady;
    GuestInfo guest;
    guest.os_release = settings_.os_release;
    guest.agent_version = "sim";
    guest.hostname = node.spec.hostname;
    obs.guest = std::move(guest);
    int64_t interval = std::max<int64_t>(1, settings_.heartbeat_interval.count() * 1000);
    obs.last_heartbeat_us =
        node.heartbeat_lost ? hello_us : hello_us + (now_us - hello_us) / interval * interval;
    return obs;
  }

  // Sleeps `us` in short slices. Sets result.timed_out past `deadline`;
  // Cancelled when `cancel` turns true; Unavailable when the node is lost.
  Status Wait(const std::string& node_id, int generation, int64_t us, int64_t deadline,
              const std::atomic<bool>* cancel, TaskResult& result) {
    int64_t end = env_.MonotonicMicros() + std::max<int64_t>(0, us);
    while (true) {
      int64_t now = env_.MonotonicMicros();
      if (cancel != nullptr && cancel->load()) return CancelledError("task cancelled");
      {
        std::lock_guard lock(mu_);
        auto it = nodes_.find(node_id);
        if (it == nodes_.end() || it->second.generation != generation ||
            ObserveLocked(it->second, env_.NowMicros()).machine !=
                NodeObservation::Machine::kReady) {
          return UnavailableError("node " + node_id + " was lost while the task ran");
        }
      }
      if (now >= deadline) {
        result.timed_out = true;
        result.exit_code = -1;
        return Status::Ok();
      }
      if (now >= end) return Status::Ok();
      env_.SleepFor(milliseconds(
          std::max<int64_t>(1, std::min({end - now, deadline - now, int64_t{20000}}) / 1000)));
    }
  }

  static Status AppendTo(const std::string& path, const std::string& data) {
    if (path.empty()) return Status::Ok();
    FILE* f = std::fopen(path.c_str(), "ae");
    if (f == nullptr) return ErrnoError("sim: open " + path, errno);
    size_t n = std::fwrite(data.data(), 1, data.size(), f);
    int err = errno;
    if (std::fclose(f) != 0 || n != data.size()) return ErrnoError("sim: write " + path, err);
    return Status::Ok();
  }

  Env& env_;
  const SimSettings settings_;
  std::mutex mu_;
  std::map<std::string, SimNode> nodes_;  // guarded by mu_
};

StatusOr<double> EnvDouble(const char* name, double def, double lo, double hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (*end != '\0' || !(d >= lo && d <= hi)) {
    return InvalidArgumentError(std::string("$") + name + "=" + QuoteForMessage(v) +
                                ": expected a number from " + std::to_string(lo) + " to " +
                                std::to_string(hi));
  }
  return d;
}

}  // namespace

StatusOr<SimSettings> SimSettings::ParseEnv() {
  SimSettings s;
  constexpr double kDay = 86400e3;
  ASSIGN_OR_RETURN(double boot_min, EnvDouble("IMAGESMITH_SIM_BOOT_MIN_MS",
                                              static_cast<double>(s.boot_min.count()), 0, kDay));
  ASSIGN_OR_RETURN(double boot_max,
                   EnvDouble("IMAGESMITH_SIM_BOOT_MAX_MS",
                             std::max(boot_min, static_cast<double>(s.boot_max.count())), 0, kDay));
  if (boot_max < boot_min) {
    return InvalidArgumentError(
        "$IMAGESMITH_SIM_BOOT_MAX_MS must not be less than "
        "$IMAGESMITH_SIM_BOOT_MIN_MS");
  }
  s.boot_min = milliseconds(static_cast<int64_t>(boot_min));
  s.boot_max = milliseconds(static_cast<int64_t>(boot_max));
  ASSIGN_OR_RETURN(s.boot_failure_rate, EnvDouble("IMAGESMITH_SIM_BOOT_FAILURE_RATE", 0, 0, 1));
  ASSIGN_OR_RETURN(s.heartbeat_loss_rate, EnvDouble("IMAGESMITH_SIM_HEARTBEAT_LOSS_RATE", 0, 0, 1));
  ASSIGN_OR_RETURN(s.preemption_rate, EnvDouble("IMAGESMITH_SIM_PREEMPTION_RATE", 0, 0, 1e6));
  ASSIGN_OR_RETURN(
      double task_ms,
      EnvDouble("IMAGESMITH_SIM_TASK_MS", static_cast<double>(s.task_duration.count()), 0, kDay));
  s.task_duration = milliseconds(static_cast<int64_t>(task_ms));
  ASSIGN_OR_RETURN(double hb_ms,
                   EnvDouble("IMAGESMITH_SIM_HEARTBEAT_MS",
                             static_cast<double>(s.heartbeat_interval.count()), 1, kDay));
  s.heartbeat_interval = milliseconds(static_cast<int64_t>(hb_ms));
  ASSIGN_OR_RETURN(double seed, EnvDouble("IMAGESMITH_SIM_SEED", 1, 0, 9e15));
  s.seed = static_cast<uint64_t>(seed);
  if (const char* os = std::getenv("IMAGESMITH_SIM_OS_RELEASE"); os != nullptr && *os != '\0') {
    s.os_release.clear();
    for (const std::string& pair : Split(os, ',')) {
      size_t eq = pair.find('=');
      if (eq == std::string::npos || eq == 0) {
        return InvalidArgumentError("$IMAGESMITH_SIM_OS_RELEASE: " + QuoteForMessage(pair) +
                                    " is not KEY=VALUE (e.g. ID=debian,VERSION_ID=12)");
      }
      s.os_release[pair.substr(0, eq)] = pair.substr(eq + 1);
    }
  }
  return s;
}

SimSettings SimSettings::FromEnv() {
  StatusOr<SimSettings> parsed = ParseEnv();
  return parsed.ok() ? std::move(parsed).value() : SimSettings();
}

std::unique_ptr<NodeDriver> MakeSimDriver(Env& env, SimSettings settings) {
  return std::make_unique<SimDriver>(env, std::move(settings));
}

}  // namespace imagesmith::fleet
