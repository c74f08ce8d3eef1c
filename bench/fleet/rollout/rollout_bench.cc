// The rollout controller's cost for a fleet of sim instances: CPU time and
// peak memory of Rollout::Begin + Step to the end, with the clock moved by
// hand one second per step (so the numbers are the controller's own work,
// not waiting), for failure rates given on the command line.
//
//   rollout_bench INSTANCES RATE [RATE...]   -> one JSON line per rate
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/manual_clock_env.h"
#include "fleet/node_set.h"
#include "fleet/rollout.h"

using namespace imagesmith;
using namespace imagesmith::fleet;

namespace {

double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long PeakRssKiB() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

int Run(int instances, double rate) {
  ManualClockEnv env;
  SimSettings s;
  s.boot_min = std::chrono::seconds(20);
  s.boot_max = std::chrono::seconds(60);
  s.task_duration = std::chrono::milliseconds(0);
  s.image_boot_failure_rate["v2"] = rate;
  std::unique_ptr<NodeDriver> driver = MakeSimDriver(env, s);
  NodeSetOptions o;
  o.resolve_image = [](const std::string& id) -> StatusOr<NodeImage> {
    NodeImage image;
    image.image_id = id;
    return image;
  };
  o.image_exists = [](const std::string&) { return true; };
  NodeSet set(env, *driver, o);
  for (int i = 0; i < instances; ++i) {
    NodeSpec spec;
    spec.node_id = "n" + std::to_string(i);
    spec.hostname = spec.node_id;
    spec.image.image_id = "v1";
    spec.size = *LookupVmSize("Standard_D2s_v3");
    if (!driver->Create(spec).ok()) return 1;
    set.Add(spec.node_id, "v1");
  }
  env.Advance(std::chrono::minutes(2));
  const double cpu0 = CpuSeconds();
  StatusOr<RolloutState> begun = Rollout::Begin(set, "bench", "v2", {}, env.NowMicros());
  if (!begun.ok()) return 1;
  RolloutState state = begun.value();
  int steps = 0;
  while (!state.done() && steps < 100000) {
    if (!Rollout::Step(set, state, env.NowMicros()).ok()) return 1;
    env.Advance(std::chrono::seconds(1));
    ++steps;
  }
  const double cpu = CpuSeconds() - cpu0;
  std::printf(
      "{\"instances\": %d, \"failureRate\": %.2f, \"status\": \"%s\", \"batches\": %zu, "
      "\"steps\": %d, \"simulatedSeconds\": %d, \"cpuSeconds\": %.3f, "
      "\"cpuMicrosPerInstanceStep\": %.3f, \"peakRssKiB\": %ld, \"succeeded\": %zu, "
      "\"failed\": %zu, \"rolledBack\": %d}\n",
      instances, rate, std::string(RunningStatusName(state.status)).c_str(), state.batches.size(),
      steps, steps, cpu, 1e6 * cpu / (double(steps) * instances), PeakRssKiB(),
      state.succeeded.size(), state.failed.size(), state.rolled_back_succeeded);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: rollout_bench INSTANCES RATE [RATE...]\n");
    return 2;
  }
  int n = std::atoi(argv[1]);
  for (int i = 2; i < argc; ++i) {
    if (Run(n, std::atof(argv[i])) != 0) {
      std::fprintf(stderr, "rollout_bench: the rollout failed\n");
      return 1;
    }
  }
  return 0;
}
