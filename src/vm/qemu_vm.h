// The qemu runner: boots an image's disk in a throwaway VM and connects to
// the guest agent in it (doc/vm.md).
//
// - Firmware: SeaBIOS for generation 1 (machine pc), OVMF for generation 2
//   (machine q35, a private copy of OVMF_VARS.fd).
// - Acceleration: KVM when a probe guest really runs under it, TCG otherwise.
// - The disk is the backing file of a qcow2 overlay in the work directory and
//   is only ever read (MakeAgentOverlay places the agent in the overlay).
// - The serial console goes to <work_dir>/console.log. The agent's socket
//   is in a SocketDir, not in work_dir, so work_dir's length does not matter.
// - Hard limits: the agent must be ready within ready_timeout, and qemu never
//   runs longer than lifetime. qemu runs in its own process group with
//   PR_SET_PDEATHSIG (setpriv), and every exit path of Vm kills that group,
//   so no qemu outlives its Vm object or imagesmith.
//
// A Vm is used from one thread (the agent connection is not shared).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"
#include "base/statusor.h"
#include "vm/agent_client.h"
#include "vm/socket_dir.h"

namespace imagesmith::vm {

// The system user qemu runs as once it has opened its files (./setup.sh
// creates it); "nobody" stands in where it does not exist.
inline constexpr char kQemuUser[] = "imagesmith-qemu";

// The flags that confine a qemu started as root (doc/vm.md, "What qemu may
// do"): -runas drops to kQemuUser after start-up, -sandbox turns on qemu's
// seccomp filter (no exec, no obsolete calls, no scheduler changes). Empty
// when imagesmith does not run as root (qemu then has the caller's rights).
std::vector<std::string> QemuConfinementArgs();

enum class Firmware { kBios, kUefi };
enum class Accel { kKvm, kTcg };
const char* AccelName(Accel a);

// Whether KVM really works here: /dev/kvm must open, and a probe guest
// (SeaBIOS with no disk) must reach "No bootable device" on its debug port
// within 5 s under -accel kvm (on some hosts KVM starts but the guest
// stalls). The answer is computed once per process. $IMAGESMITH_VM_ACCEL
// (kvm or tcg) overrides the probe. `why` (may be null) gets a sentence
// explaining the choice.
//
// `cache_file` (may be empty) keeps the verdict across processes: it is
// reused while the host's boot id and the qemu binary (path, size, mtime)
// are the ones it was probed with, so a reboot, a qemu upgrade or a kvm
// module change made across a reboot probes again. The first caller's
// `cache_file` is the one used.
Accel ProbeAccel(Env& env, std::string* why, const std::string& cache_file = "");
// ProbeAccel without the once-per-process memory: reads or probes, and
// writes `cache_file` (if not empty). For tests.
Accel ProbeAccelUncached(Env& env, std::string* why, const std::string& cache_file);

// Replaces this process's verdict (and `cache_file`'s, if not empty) with
// `accel`: a VM that failed under KVM after the probe passed turns KVM off
// for every later VM of this boot of the host.
void RecordAccelVerdict(Env& env, const std::string& cache_file, Accel accel,
                        const std::string& reason);

// How long after GRUB starts the kernel's menu entry a vCPU must be seen
// running kernel code before the boot counts as stalled and the VM is
// restarted once (doc/vm.md, "A boot that stalls"). 150 s;
// $IMAGESMITH_VM_KERNEL_LIMIT (seconds) overrides it, for tests.
std::chrono::milliseconds KernelHandoffLimit();

// Does a validation VM's slow preparation on a thread of its own, so that it
// overlaps other work (the build): ProbeAccel (5 s when KVM stalls; its later
// callers wait for its answer) and, under TCG, SshHostKeysForValidation in
// `ssh_keys_cache` (if not empty). The destructor joins the thread.
class ValidationPrefetch {
 public:
  ValidationPrefetch(Env& env, std::string accel_cache, std::string ssh_keys_cache);
  ~ValidationPrefetch();
  ValidationPrefetch(const ValidationPrefetch&) = delete;
  ValidationPrefetch& operator=(const ValidationPrefetch&) = delete;

 private:
  std::thread thread_;
};

struct VmConfig {
  std::string disk;         // a raw disk in imagesmith's layout; only read
  std::string accel_cache;  // ProbeAccel's cache_file; may be empty
  // Under TCG: SshHostKeysForValidation's cache directory (see
  // OverlaySpec::ssh_host_keys_dir); empty: the image makes its own.
  std::string ssh_keys_cache;
  Firmware firmware = Firmware::kBios;
  std::string work_dir;  // exists; the overlay, socket and console live here
  int cpus = 2;
  uint64_t memory_mb = 2048;
  // From qemu's start until the agent answers.
  std::chrono::milliseconds ready_timeout{std::chrono::seconds(120)};
  // qemu is killed after this long whatever happens.
  std::chrono::milliseconds lifetime{std::chrono::minutes(30)};
  bool fast_boot = true;                      // see OverlaySpec::fast_boot
  bool network = true;                        // user-mode NAT (guest can reach the host's network)
  const std::atomic<bool>* cancel = nullptr;  // borrowed; may be null
  std::function<void(std::string_view)> progress;  // one line per event; may be empty
};

class Vm {
 public:
  // Makes the overlay, starts qemu and waits for the agent. On failure
  // nothing runs any more and the error says what happened; when the guest
  // never became ready it says so, with how far the boot got (BootWatch) and
  // the last lines of the console.
  //
  // Restarts qemu once, with a fresh ready_timeout, when (a) the guest did
  // not reach its kernel under KVM (qemu died, or no kernel within 60 s):
  // the VM restarts under TCG, and if the guest reaches its kernel there,
  // KVM is turned off for this host's boot (RecordAccelVerdict); or (b) the
  // guest stalled between GRUB and the kernel (KernelHandoffLimit). The
  // progress callback says why.
  static StatusOr<std::unique_ptr<Vm>> Start(Env& env, const VmConfig& config);
  // Kills qemu if it still runs and waits for it.
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  AgentClient& agent() { return *agent_; }
  // Asks the agent to power off and waits up to 15 s for qemu to exit,
  // then kills it. Idempotent.
  Status Shutdown();
  // Kills qemu now.
  void Kill();
  bool Running() const { return !exited_.load(); }

  const std::string& console_path() const { return console_; }
  // The console's last `lines` lines.
  std::string ConsoleTail(size_t lines) const;

  Accel accel() const { return accel_; }
  const AgentHello& hello() const { return hello_; }
  // Seconds from qemu's start to the agent's first answer.
  double seconds_to_ready() const { return seconds_to_ready_; }
  // qemu's stderr, once it has exited.
  const std::string& qemu_stderr() const { return qemu_stderr_; }

 private:
  explicit Vm(Env& env) : env_(env) {}
  void Join();

  // One start of qemu, up to the agent's answer or a failure (qemu then
  // killed). `status` is OK when the agent answered.
  struct Boot {
    Status status;
    bool kernel_started = false;
    bool stalled_before_kernel = false;
    std::string watch_summary;  // BootWatch::Describe
    std::string timeline;       // BootWatch::timeline
  };
  Boot BootOnce(const std::vector<std::string>& argv, const VmConfig& c, int64_t ready_deadline,
                const std::string& qmp_socket, const std::string& agent_socket);

  Env& env_;
  std::string console_;
  std::string pidfile_;
  std::thread thread_;
  std::atomic<bool> exited_{false};
  std::string qemu_stderr_;  // written by thread_ before exited_
  std::unique_ptr<AgentClient> agent_;
  Accel accel_ = Accel::kTcg;
  AgentHello hello_;
  double seconds_to_ready_ = 0;
  std::unique_ptr<SocketDir> socket_dir_;  // the agent's socket; removed after qemu
};

}  // namespace imagesmith::vm
