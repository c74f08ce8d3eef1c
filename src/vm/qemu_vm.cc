#include "vm/qemu_vm.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "base/json.h"
#include "base/strings.h"
#include "vm/boot_watch.h"
#include "vm/overlay.h"
#include "vm/socket_dir.h"

namespace imagesmith::vm {

namespace {

constexpr const char kOvmfCode[] = "/usr/share/OVMF/OVMF_CODE.fd";
constexpr const char kOvmfVars[] = "/usr/share/OVMF/OVMF_VARS.fd";

Accel ProbeOnce(Env& env, std::string* why) {
  if (const char* forced = std::getenv("IMAGESMITH_VM_ACCEL"); forced != nullptr && *forced) {
    std::string f = forced;
    *why = "IMAGESMITH_VM_ACCEL=" + f;
    return f == "kvm" ? Accel::kKvm : Accel::kTcg;
  }
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *why = std::string("/dev/kvm cannot be opened (") + std::strerror(errno) + "), using TCG";
    return Accel::kTcg;
  }
  ::close(fd);
  char dir[] = "/tmp/imagesmith-kvm-probe-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    *why = "cannot make a directory for the KVM probe, using TCG";
    return Accel::kTcg;
  }
  // Both firmwares real guests use, with the CPU model they use (-cpu host),
  // side by side: SeaBIOS with no disk prints its progress on the debug port
  // 0x402 and ends with "No bootable device"; OVMF reaches its boot manager
  // (BdsDxe) and says so on the serial port. A KVM that starts but stalls the
  // guest, or that cannot run one of them, never gets there.
  std::string seabios_out = std::string(dir) + "/seabios.log";
  std::string ovmf_out = std::string(dir) + "/ovmf.log";
  std::string ovmf_vars = std::string(dir) + "/OVMF_VARS.fd";
  auto vars = env.ReadFile(kOvmfVars, 64 << 20);
  bool have_ovmf = vars.ok() && env.WriteFileAtomic(ovmf_vars, *vars).ok();
  auto probe = [&](std::vector<std::string> machine) {
    ProcessOptions o;
    o.argv = {"setpriv",  "--pdeathsig", "KILL", "--",   "qemu-system-x86_64",
              "-accel",   "kvm",         "-cpu", "host", "-nodefaults",
              "-display", "none",        "-m",   "64",   "-no-reboot"};
    o.argv.insert(o.argv.end(), machine.begin(), machine.end());
    for (std::string& a : QemuConfinementArgs()) o.argv.push_back(std::move(a));
    o.timeout = std::chrono::seconds(5);
    return o;
  };
  std::vector<ProcessOptions> guests = {
      probe({"-machine", "pc", "-chardev", "file,id=dbg,path=" + seabios_out, "-device",
             "isa-debugcon,iobase=0x402,chardev=dbg"})};
  if (have_ovmf) {
    guests.push_back(probe({"-machine", "q35", "-drive",
                            std::string("if=pflash,format=raw,readonly=on,file=") + kOvmfCode,
                            "-drive", "if=pflash,format=raw,file=" + ovmf_vars, "-chardev",
                            "file,id=con,path=" + ovmf_out, "-serial", "chardev:con"}));
  }
  std::vector<std::string> stderr_text(guests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < guests.size(); ++i) {
    threads.emplace_back([&, i] {
      auto r = env.RunProcess(guests[i]);
      if (r.ok()) stderr_text[i] = r->stderr_data;
    });
  }
  auto reached = [&](const std::string& file, const char* marker) {
    auto t = env.ReadFile(file, 1 << 20);
    return t.ok() && t->find(marker) != std::string::npos;
  };
  bool seabios_ok = false, ovmf_ok = !have_ovmf;
  for (int i = 0; i < 50 && !(seabios_ok && ovmf_ok); ++i) {
    env.SleepFor(std::chrono::milliseconds(100));
    seabios_ok = seabios_ok || reached(seabios_out, "No bootable device");
    ovmf_ok = ovmf_ok || reached(ovmf_out, "BdsDxe");
  }
  // The probe guests never exit by themselves; the 5 s timeout kills them
  // (their process groups) if they are still there.
  for (std::thread& t : threads) t.join();
  (void)env.RemoveAll(dir);
  bool ok = seabios_ok && ovmf_ok;
  std::string failed =
      !seabios_ok ? (ovmf_ok ? "a SeaBIOS guest" : "SeaBIOS and OVMF guests") : "an OVMF guest";
  std::string said;
  for (const std::string& e : stderr_text) {
    std::string first = e.substr(0, e.find('\n'));
    std::string_view line = TrimWhitespace(first);
    if (!line.empty() && said.empty()) said = " (qemu said: " + std::string(line) + ")";
  }
  *why = ok ? std::string(
                  "KVM works (probe guests ran SeaBIOS and OVMF to their boot managers "
                  "with -cpu host)")
            : "KVM does not work here: /dev/kvm opens but " + failed +
                  " did not reach the boot manager under it within 5 s" + said +
                  "; using TCG (much slower)";
  return ok ? Accel::kKvm : Accel::kTcg;
}

// What a cached verdict is valid for: this boot of this host, with this
// qemu binary. Empty when it cannot be told (then nothing is cached).
std::string ProbeKey(Env& env) {
  auto boot = env.ReadFile("/proc/sys/kernel/random/boot_id", 256);
  if (!boot.ok()) return "";
  const char* path_env = std::getenv("PATH");
  for (const std::string& dir :
       Split(path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    std::string qemu = dir + "/qemu-system-x86_64";
    struct stat st;
    if (::stat(qemu.c_str(), &st) != 0) continue;
    return "boot " + std::string(TrimWhitespace(*boot)) + ", " + qemu + " size " +
           std::to_string(st.st_size) + " mtime " + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec);
  }
  return "";
}

void WriteVerdict(Env& env, const std::string& cache_file, const std::string& key, Accel a,
                  const std::string& why) {
  if (key.empty() || cache_file.empty()) return;
  Json j = Json::MakeObject();
  j.Set("key", Json::String(key));
  j.Set("accel", Json::String(AccelName(a)));
  j.Set("reason", Json::String(why));
  // A cache that cannot be written only costs the next process a probe.
  if (env.CreateDirs(Dirname(cache_file)).ok()) {
    (void)env.WriteFileAtomic(cache_file, j.Dump() + "\n");
  }
}

// This process's verdict (ProbeAccel), and who may change it.
struct AccelState {
  std::mutex mu;
  bool known = false;         // guarded by mu
  Accel accel = Accel::kTcg;  // guarded by mu
  std::string reason;         // guarded by mu
};

AccelState& State() {
  static auto* state = new AccelState();
  return *state;
}

}  // namespace

Accel ProbeAccelUncached(Env& env, std::string* why, const std::string& cache_file) {
  if (const char* forced = std::getenv("IMAGESMITH_VM_ACCEL"); forced != nullptr && *forced) {
    return ProbeOnce(env, why);
  }
  std::string key = cache_file.empty() ? "" : ProbeKey(env);
  if (!key.empty()) {
    auto text = env.ReadFile(cache_file, 64 << 10);
    auto j = text.ok() ? ParseJson(*text) : StatusOr<Json>(text.status());
    auto field = [&](std::string_view name) -> std::string {
      const Json* v = j.ok() && j->is_object() ? j->Find(name) : nullptr;
      return v != nullptr && v->is_string() ? v->string_value() : "";
    };
    std::string accel = field("accel");
    if (field("key") == key && (accel == "kvm" || accel == "tcg")) {
      *why = field("reason") + " [probed earlier in this boot; cached in " + cache_file + "]";
      return accel == "kvm" ? Accel::kKvm : Accel::kTcg;
    }
  }
  Accel a = ProbeOnce(env, why);
  WriteVerdict(env, cache_file, key, a, *why);
  return a;
}

namespace {

std::string SecondsText(std::chrono::milliseconds ms) {
  return std::to_string(ms.count() / 1000) + " s";
}

int64_t NowUs(Env& env) { return env.MonotonicMicros(); }

// Under KVM a guest runs its kernel within seconds; one that has not after
// this long is stuck.
constexpr int64_t kKvmKernelLimitUs = 60 * 1000000LL;

}  // namespace

std::vector<std::string> QemuConfinementArgs() {
  if (::geteuid() != 0) return {};  // qemu already runs unprivileged
  // getpwnam_r, not getpwnam: builds run validations on several threads.
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  const bool own_user = ::getpwnam_r(kQemuUser, &pw, buf, sizeof(buf), &found) == 0 && found;
  return {// Once qemu has opened its disks, sockets and firmware as root, it
          // becomes this user: no capabilities, no_new_privs, no root files.
          "-runas", own_user ? kQemuUser : "nobody",
          // qemu's own seccomp filter: no exec of helpers, no obsolete system
          // calls, no scheduler or affinity changes.
          "-sandbox", "on,obsolete=deny,spawn=deny,resourcecontrol=deny"};
}

namespace {

// qemu's command line for one boot of the validation VM (doc/vm.md, "What runs").
StatusOr<std::vector<std::string>> QemuArgv(Env& env, const VmConfig& c, Accel accel,
                                            const std::string& overlay,
                                            const std::string& agent_socket,
                                            const std::string& qmp_socket,
                                            const std::string& console,
                                            const std::string& pidfile) {
  std::vector<std::string> argv = {"setpriv", "--pdeathsig", "KILL", "--", "qemu-system-x86_64",
                                   "-name", "imagesmith-validate",
                                   // Only the devices below: no default NIC,
                                   // CD-ROM or floppy for the firmware to try.
                                   "-nodefaults", "-accel", AccelName(accel)};
  for (std::string& a : QemuConfinementArgs()) argv.push_back(std::move(a));
  if (c.firmware == Firmware::kUefi) {
    std::string vars = c.work_dir + "/OVMF_VARS.fd";
    ASSIGN_OR_RETURN(std::string v, env.ReadFile(kOvmfVars, 64 << 20));
    RETURN_IF_ERROR(env.WriteFileAtomic(vars, v));
    argv.insert(argv.end(), {"-machine", "q35", "-drive",
                             std::string("if=pflash,format=raw,readonly=on,file=") + kOvmfCode,
                             "-drive", "if=pflash,format=raw,file=" + vars});
  } else {
    argv.insert(argv.end(), {"-machine", "pc"});
  }
  if (accel == Accel::kTcg) argv.insert(argv.end(), {"-cpu", "max"});
  if (accel == Accel::kKvm) argv.insert(argv.end(), {"-cpu", "host"});
  argv.insert(argv.end(),
              {"-smp", std::to_string(c.cpus), "-m", std::to_string(c.memory_mb), "-display",
               "none", "-vga", "none", "-no-reboot", "-pidfile", pidfile,
               // The monitor: BootWatch reads how far a boot got.
               "-qmp", "unix:" + qmp_socket + ",server=on,wait=off", "-chardev",
               "file,id=con,path=" + console, "-serial", "chardev:con", "-drive",
               "file=" + overlay + ",format=qcow2,if=virtio,cache=unsafe,discard=unmap", "-device",
               "virtio-serial-pci,id=vser0", "-chardev",
               "socket,id=agent,path=" + agent_socket + ",server=on,wait=off", "-device",
               std::string("virtserialport,bus=vser0.0,chardev=agent,name=") + proto::kPortName,
               "-device", "virtio-rng-pci"});
  if (c.network) {
    // romfile= leaves out the NIC's iPXE option ROM: the firmware boots the
    // disk, never the network, and loading iPXE costs ~1 s under TCG.
    argv.insert(argv.end(),
                {"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="});
  }
  return argv;
}

}  // namespace

const char* AccelName(Accel a) { return a == Accel::kKvm ? "kvm" : "tcg"; }

Accel ProbeAccel(Env& env, std::string* why, const std::string& cache_file) {
  AccelState& st = State();
  // Later callers wait here for the first one's probe.
  std::lock_guard<std::mutex> lock(st.mu);
  if (!st.known) {
    st.accel = ProbeAccelUncached(env, &st.reason, cache_file);
    st.known = true;
  }
  if (why != nullptr) *why = st.reason;
  return st.accel;
}

void RecordAccelVerdict(Env& env, const std::string& cache_file, Accel accel,
                        const std::string& reason) {
  {
    AccelState& st = State();
    std::lock_guard<std::mutex> lock(st.mu);
    st.known = true;
    st.accel = accel;
    st.reason = reason;
  }
  WriteVerdict(env, cache_file, ProbeKey(env), accel, reason);
}

std::chrono::milliseconds KernelHandoffLimit() {
  if (const char* e = std::getenv("IMAGESMITH_VM_KERNEL_LIMIT"); e != nullptr && std::atoi(e) > 0) {
    return std::chrono::seconds(std::atoi(e));
  }
  return std::chrono::seconds(150);
}

ValidationPrefetch::ValidationPrefetch(Env& env, std::string accel_cache,
                                       std::string ssh_keys_cache)
    : thread_(
          [&env, accel_cache = std::move(accel_cache), ssh_keys_cache = std::move(ssh_keys_cache)] {
            if (ProbeAccel(env, nullptr, accel_cache) == Accel::kTcg && !ssh_keys_cache.empty()) {
              // A failure here is met again, and reported, when the VM starts.
              (void)SshHostKeysForValidation(env, ssh_keys_cache);
            }
          }) {}

ValidationPrefetch::~ValidationPrefetch() {
  if (thread_.joinable()) thread_.join();
}

StatusOr<std::unique_ptr<Vm>> Vm::Start(Env& env, const VmConfig& c) {
  auto say = [&](const std::string& s) {
    if (c.progress) c.progress(s);
  };
  auto cancelled = [&] { return c.cancel != nullptr && c.cancel->load(); };
  std::unique_ptr<Vm> vm(new Vm(env));
  vm->console_ = c.work_dir + "/console.log";
  vm->pidfile_ = c.work_dir + "/qemu.pid";
  std::string overlay = c.work_dir + "/overlay.qcow2";
  // Not in work_dir: its path may be of any length, a socket's may not.
  ASSIGN_OR_RETURN(vm->socket_dir_, SocketDir::Make(env));
  std::string socket = vm->socket_dir_->Path("agent.sock");
  std::string qmp_socket = vm->socket_dir_->Path("qmp.sock");

  ASSIGN_OR_RETURN(std::string agent_bin, FindAgentBinary(env));
  std::string why;
  vm->accel_ = ProbeAccel(env, &why, c.accel_cache);
  say("accelerator: " + std::string(AccelName(vm->accel_)) + " (" + why + ")");

  int64_t t0 = NowUs(env);
  OverlaySpec os;
  os.disk = c.disk;
  os.overlay = overlay;
  os.agent_binary = agent_bin;
  os.scratch_dir = c.work_dir;
  os.fast_boot = c.fast_boot;
  if (vm->accel_ == Accel::kTcg && !c.ssh_keys_cache.empty()) {
    auto keys = SshHostKeysForValidation(env, c.ssh_keys_cache);
    if (keys.ok()) {
      os.ssh_host_keys_dir = *keys;
    } else {
      // Only slower: the image makes its own keys on first boot.
      say("no SSH host keys for the overlay (" + keys.status().message() +
          "); the image makes its own on first boot, which is slow under TCG");
    }
  }
  bool keys_placed = false;
  os.ssh_host_keys_placed = &keys_placed;
  RETURN_IF_ERROR(MakeAgentOverlay(env, os));
  say("overlay " + overlay + " over " + c.disk + " (read-only backing file) with the agent, in " +
      std::to_string((NowUs(env) - t0) / 1000) + " ms");
  if (keys_placed) {
    say("the image makes its SSH host keys on first boot, which takes 3-9 s under TCG: the "
        "overlay has keys made on this host instead (" +
        os.ssh_host_keys_dir + "); the published image has none");
  }
  if (cancelled()) return CancelledError("canceled before the VM started");

  int64_t deadline = NowUs(env) + c.ready_timeout.count() * 1000;
  std::string kvm_failure;  // why the first attempt failed under KVM
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(
        std::vector<std::string> argv,
        QemuArgv(env, c, vm->accel_, overlay, socket, qmp_socket, vm->console_, vm->pidfile_));
    say("qemu: " + imagesmith::Join(argv, " "));
    Boot boot = vm->BootOnce(argv, c, deadline, qmp_socket, socket);
    if (!kvm_failure.empty() && boot.kernel_started) {
      std::string reason =
          "KVM does not work here: a guest that passed the probe failed under it "
          "before its kernel ran, and ran under TCG (" +
          kvm_failure + "); using TCG";
      RecordAccelVerdict(env, c.accel_cache, Accel::kTcg, reason);
      say("accelerator verdict changed to tcg: " + reason);
      kvm_failure.clear();
    }
    if (boot.status.ok()) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "agent ready %.1f s after qemu started (guest uptime %.1f s, %s)",
                    vm->seconds_to_ready_, static_cast<double>(vm->hello_.guest_uptime_ms) / 1000.0,
                    vm->hello_.name.c_str());
      say(buf);
      say("boot: " + boot.watch_summary);
      if (std::getenv("IMAGESMITH_VM_TRACE") != nullptr) say("boot timeline:\n" + boot.timeline);
      return vm;
    }
    if (boot.status.code() == StatusCode::kCancelled) return boot.status;
    say("where the boot spent its time (vCPU instruction pointers sampled through qemu's "
        "monitor; the kernel runs at ffff8... and above):\n" +
        boot.timeline);
    // One restart, for what a new start fixes: KVM that fails the real guest
    // (the probe guest is not the real one), or a guest that stopped between
    // the bootloader and the kernel (doc/vm.md, "A boot that stalls").
    std::string why_restart;
    if (vm->accel_ == Accel::kKvm && !boot.kernel_started) {
      // The probe guest is not the real one: KVM may still fail this guest.
      // TCG decides: if the guest reaches its kernel there, KVM is at fault
      // and is turned off for this host's boot; if not, the image is.
      why_restart = "the guest did not reach its kernel under KVM (" +
                    boot.status.message().substr(0, boot.status.message().find('\n')) + ")";
      kvm_failure = boot.status.message().substr(0, 300);
      vm->accel_ = Accel::kTcg;
    } else if (boot.stalled_before_kernel) {
      why_restart = boot.status.message().substr(0, boot.status.message().find('\n'));
    }
    if (attempt > 1 || why_restart.empty()) return boot.status;
    // The first attempt's console stays for the record.
    (void)env.Rename(vm->console_, c.work_dir + "/console-attempt1.log");
    (void)env.RemoveAll(vm->pidfile_);
    say("restarting the VM once, under " + std::string(AccelName(vm->accel_)) + ": " + why_restart +
        " (its console is kept as console-attempt1.log)");
    // The retry gets a fresh time budget: what the first attempt used was lost
    // to a fault, not to the image.
    deadline = NowUs(env) + c.ready_timeout.count() * 1000;
  }
}

namespace {

// qemu drops to its own user (-runas), which clears a parent-death signal, and
// runs in its own process group, so nothing stops it when the process that
// started it is killed (SIGKILL: a crashed or killed build). A guard process,
// detached (double fork, so it is never a zombie of ours), waits for qemu's
// pidfile, then checks every second that its starter still runs; when the
// starter is gone it kills qemu's process group. It exits when qemu does.
// (dash's kill takes `-PGID` but not `-- -PGID`.)
void StartQemuGuard(const std::string& pidfile) {
  static constexpr char kGuard[] = R"sh(parent=$1; pidfile=$2; n=0
while [ ! -s "$pidfile" ]; do
  n=$((n + 1)); [ $n -gt 600 ] && exit 0
  sleep 0.5
done
q=$(cat "$pidfile")
case $q in ''|*[!0-9]*) exit 0;; esac
while kill -0 "$q" 2>/dev/null; do
  if ! kill -0 "$parent" 2>/dev/null; then kill -KILL "-$q" 2>/dev/null; exit 0; fi
  sleep 1
done)sh";
  const std::string parent = std::to_string(::getpid());
  pid_t child = ::fork();
  if (child < 0) return;
  if (child == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execl("/bin/sh", "sh", "-c", kGuard, "imagesmith-qemu-guard", parent.c_str(), pidfile.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

Vm::Boot Vm::BootOnce(const std::vector<std::string>& argv, const VmConfig& c,
                      int64_t ready_deadline, const std::string& qmp_socket,
                      const std::string& agent_socket) {
  auto cancelled = [&] { return c.cancel != nullptr && c.cancel->load(); };
  exited_.store(false);
  qemu_stderr_.clear();
  agent_.reset();
  ProcessOptions po;
  po.argv = argv;
  po.timeout = c.lifetime;
  po.max_capture_bytes = 1 << 20;
  int64_t started = NowUs(env_);
  ready_deadline = std::max(ready_deadline, started);
  StartQemuGuard(pidfile_);
  thread_ = std::thread([this, po] {
    auto r = env_.RunProcess(po);
    qemu_stderr_ = r.ok() ? r->stderr_data + (r->timed_out ? "(killed at its lifetime)" : "")
                          : r.status().ToString();
    exited_.store(true);
  });

  Boot boot;
  BootWatch watch(env_, qmp_socket, console_, started);
  auto finish = [&](Status s) -> Boot {
    boot.kernel_started = watch.kernel_started();
    boot.watch_summary = watch.Describe();
    boot.timeline = watch.timeline();
    boot.status = std::move(s);
    return boot;
  };
  auto fail_not_ready = [&](const Status& s) -> Boot {
    Kill();
    std::string detail = s.message() + "; " + watch.Describe();
    if (!qemu_stderr_.empty()) {
      detail += "; qemu said: " + std::string(TrimWhitespace(qemu_stderr_));
    }
    return finish(Status(s.code(), detail + "\nlast lines of the serial console (" + console_ +
                                       "):\n" + ConsoleTail(25)));
  };
  auto agent = AgentClient::Connect(agent_socket, std::min(ready_deadline, started + 30000000));
  if (!agent.ok()) return fail_not_ready(agent.status());
  agent_ = std::move(*agent);
  auto hello = agent_->WaitReady(ready_deadline, cancelled, [this, &watch, &boot, started] {
    if (exited_.load()) return false;
    watch.Poll();
    int64_t now = NowUs(env_);
    if (watch.StalledBeforeKernel(now, KernelHandoffLimit())) {
      boot.stalled_before_kernel = true;
      return false;
    }
    // Under KVM firmware and GRUB take a few seconds; a guest that has not
    // reached its kernel in a minute is stuck (a host where KVM half works).
    if (accel_ == Accel::kKvm && !watch.kernel_started() && now - started > kKvmKernelLimitUs) {
      boot.stalled_before_kernel = true;
      return false;
    }
    return true;
  });
  if (hello.ok()) {
    hello_ = *hello;
    seconds_to_ready_ = static_cast<double>(NowUs(env_) - started) / 1e6;
    return finish(Status::Ok());
  }
  if (boot.stalled_before_kernel) {
    return fail_not_ready(DeadlineExceededError(
        watch.bootloader_done()
            ? "the guest stalled between its bootloader and its kernel: no vCPU ran kernel code " +
                  SecondsText(KernelHandoffLimit()) + " after GRUB started the menu entry"
            : "the guest did not reach its kernel within " +
                  SecondsText(std::chrono::milliseconds(kKvmKernelLimitUs / 1000)) + " under KVM"));
  }
  if (hello.status().code() == StatusCode::kDeadlineExceeded) {
    return fail_not_ready(DeadlineExceededError(
        "the guest never became ready: the agent did not answer within " +
        SecondsText(std::chrono::milliseconds((ready_deadline - started) / 1000)) +
        " of qemu's start (the image may not boot, or its boot is stuck; the console below "
        "shows how far it got)"));
  }
  if (hello.status().code() == StatusCode::kCancelled) {
    Kill();
    return finish(CancelledError("canceled while the VM was booting"));
  }
  return fail_not_ready(hello.status().WithContext("the guest never became ready"));
}

void Vm::Kill() {
  // qemu is the leader of its own process group (RunProcess), so the
  // group's id is the pid qemu wrote. Before the pidfile exists, wait for
  // it; the thread's lifetime timeout is the backstop.
  if (!thread_.joinable()) return;  // qemu was never started
  for (int i = 0; !exited_.load(); ++i) {
    auto pid = env_.ReadFile(pidfile_, 64);
    if (pid.ok() && !TrimWhitespace(*pid).empty()) {
      int p = std::atoi(std::string(TrimWhitespace(*pid)).c_str());
      if (p > 1) ::kill(-p, SIGKILL);
    }
    if (exited_.load()) break;
    env_.SleepFor(std::chrono::milliseconds(i < 20 ? 10 : 100));
  }
  Join();
}

void Vm::Join() {
  if (thread_.joinable()) thread_.join();
}

Status Vm::Shutdown() {
  if (exited_.load()) {
    Join();
    return Status::Ok();
  }
  int64_t deadline = env_.MonotonicMicros() + 15000000;
  Status s = agent_ != nullptr ? agent_->PowerOff(env_.MonotonicMicros() + 5000000) : Status::Ok();
  while (s.ok() && !exited_.load() && env_.MonotonicMicros() < deadline) {
    env_.SleepFor(std::chrono::milliseconds(50));
  }
  bool clean = exited_.load();
  Kill();
  if (!s.ok()) return s;
  if (!clean)
    return DeadlineExceededError("the guest did not power off within 15 s; qemu was killed");
  return Status::Ok();
}

Vm::~Vm() {
  agent_.reset();
  Kill();
}

std::string Vm::ConsoleTail(size_t lines) const {
  auto s = env_.ReadFile(console_, 256 << 20);
  if (!s.ok()) return "(no console output: " + s.status().message() + ")";
  std::vector<std::string> all = Split(*s, '\n');
  while (!all.empty() && TrimWhitespace(all.back()).empty()) all.pop_back();
  if (all.empty()) return "(the console is empty: the firmware printed nothing)";
  size_t from = all.size() > lines ? all.size() - lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i) {
    std::string l = all[i];
    if (!l.empty() && l.back() == '\r') l.pop_back();
    out += "  | " + l + "\n";
  }
  return out;
}

}  // namespace imagesmith::vm
