// vm_bench DISK [uefi|bios] [RUNS]: boots DISK as a validation VM RUNS times
// (default 3) and prints, per run and as a median: the time from qemu's
// start to the agent's first answer, to the end of the guest's boot
// (`systemctl is-system-running --wait`), and for the whole phase (overlay,
// boot, one validator, power-off). The KVM probe runs once before the timed
// runs and is reported on its own. See bench/vm/results.md.
//
// A run whose VM does not become ready is counted and the loop goes on (the
// 50-boot loop of doc/vm.md "A boot that stalls"). VM_BENCH_READY_SECONDS sets
// the ready limit (default 120 s; validation uses 240 s). The summary gives
// min, median and max, and how many runs failed. VM_BENCH_AGENT_ONLY=1 stops
// each run once the agent answers.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "base/env.h"
#include "vm/overlay.h"
#include "vm/qemu_vm.h"

using namespace imagesmith;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: vm_bench DISK [uefi|bios] [RUNS] [slow]\n");
    return 2;
  }
  Env& env = *Env::Default();
  std::string disk = argv[1];
  bool uefi = argc < 3 || std::string(argv[2]) == "uefi";
  int runs = argc > 3 ? std::atoi(argv[3]) : 3;
  bool fast = !(argc > 4 && std::string(argv[4]) == "slow");
  std::vector<double> ready, booted, whole;
  int failed = 0;
  // The accelerator is chosen once, before the timed runs, as a build does
  // while its image is made (vm::AccelPrefetch); its cost is printed apart.
  int64_t p0 = env.MonotonicMicros();
  std::string why;
  vm::Accel accel = vm::ProbeAccel(env, &why);
  std::printf("accelerator %s, chosen in %.1f s: %s\n", vm::AccelName(accel),
              static_cast<double>(env.MonotonicMicros() - p0) / 1e6, why.c_str());
  // The SSH host keys a build makes while it builds (doc/vm.md), made here
  // before the timed runs too.
  char keys_dir[] = "/var/tmp/imagesmith-vm-bench-keys-XXXXXX";
  if (::mkdtemp(keys_dir) == nullptr) return 1;
  std::string keys = std::string(keys_dir) + "/keys";
  if (accel == vm::Accel::kTcg) {
    auto k = vm::SshHostKeysForValidation(env, keys);
    if (!k.ok()) {
      std::fprintf(stderr, "%s\n", k.status().ToString().c_str());
      return 1;
    }
  }
  for (int i = 0; i < runs; ++i) {
    char dir[] = "/var/tmp/imagesmith-vm-bench-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return 1;
    int64_t t0 = env.MonotonicMicros();
    vm::VmConfig c;
    c.disk = disk;
    c.firmware = uefi ? vm::Firmware::kUefi : vm::Firmware::kBios;
    c.work_dir = dir;
    c.fast_boot = fast;
    if (const char* limit = std::getenv("VM_BENCH_READY_SECONDS"); limit != nullptr) {
      c.ready_timeout = std::chrono::seconds(std::atoi(limit));
    }
    c.ssh_keys_cache = keys;
    c.progress = [](std::string_view l) {
      std::fprintf(stderr, "  %.*s\n", static_cast<int>(l.size()), l.data());
    };
    auto v = vm::Vm::Start(env, c);
    if (!v.ok()) {
      std::printf("run %d: FAILED after %.1f s: %s\n", i + 1,
                  static_cast<double>(env.MonotonicMicros() - t0) / 1e6,
                  v.status().ToString().c_str());
      std::fflush(stdout);
      ++failed;
      if (std::getenv("VM_BENCH_KEEP") == nullptr) (void)env.RemoveAll(dir);
      continue;
    }
    if (std::getenv("VM_BENCH_AGENT_ONLY") != nullptr) {
      // Only whether and when the agent answered (the 50-boot loop): no
      // waiting for the rest of the boot.
      Status s = (*v)->Shutdown();
      std::printf("run %d: accel %s, agent ready %.1f s after qemu start (shutdown %s)\n", i + 1,
                  vm::AccelName((*v)->accel()), (*v)->seconds_to_ready(),
                  s.ok() ? "ok" : s.ToString().c_str());
      std::fflush(stdout);
      ready.push_back((*v)->seconds_to_ready());
      booted.push_back((*v)->seconds_to_ready());
      whole.push_back(static_cast<double>(env.MonotonicMicros() - t0) / 1e6);
      v->reset();
      (void)env.RemoveAll(dir);
      continue;
    }
    vm::ExecRequest wait;
    wait.argv = {"systemctl", "is-system-running", "--wait"};
    wait.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
    wait.timeout = std::chrono::seconds(120);
    auto w = (*v)->agent().Exec(wait, env.MonotonicMicros() + 130000000, nullptr);
    double t_boot = static_cast<double>(env.MonotonicMicros() - t0) / 1e6;
    vm::ExecRequest check;
    check.argv = {"/bin/sh", "-ec", "systemctl is-enabled nginx || true; uname -r"};
    check.env = wait.env;
    check.timeout = std::chrono::seconds(60);
    check.on_line = [](std::string_view l, bool) {
      std::fprintf(stderr, "  guest: %.*s\n", static_cast<int>(l.size()), l.data());
    };
    auto r = (*v)->agent().Exec(check, env.MonotonicMicros() + 70000000, nullptr);
    Status s = (*v)->Shutdown();
    double t_all = static_cast<double>(env.MonotonicMicros() - t0) / 1e6;
    std::printf(
        "run %d: accel %s, agent ready %.1f s after qemu start, boot finished %.1f s, whole phase "
        "%.1f s (%s; %s; shutdown %s)\n",
        i + 1, vm::AccelName((*v)->accel()), (*v)->seconds_to_ready(), t_boot, t_all,
        w.ok() ? w->Describe(wait.timeout).c_str() : w.status().ToString().c_str(),
        r.ok() ? r->Describe(check.timeout).c_str() : r.status().ToString().c_str(),
        s.ok() ? "ok" : s.ToString().c_str());
    std::fflush(stdout);
    ready.push_back((*v)->seconds_to_ready());
    booted.push_back(t_boot);
    whole.push_back(t_all);
    v->reset();
    if (std::getenv("VM_BENCH_KEEP") == nullptr) {
      (void)env.RemoveAll(dir);
    } else {
      std::printf("kept %s\n", dir);
    }
  }
  (void)env.RemoveAll(keys_dir);
  if (ready.empty()) {
    std::printf("no run of %d reached the agent\n", runs);
    return 1;
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto lo = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
  auto hi = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  std::printf("median of %zu: agent ready %.1f s, boot finished %.1f s, whole phase %.1f s\n",
              ready.size(), median(ready), median(booted), median(whole));
  std::printf(
      "%zu of %d runs reached the agent (%d failed); agent ready min %.1f s, median %.1f s, max "
      "%.1f s\n",
      ready.size(), runs, failed, lo(ready), median(ready), hi(ready));
  return failed == 0 ? 0 : 1;
}
