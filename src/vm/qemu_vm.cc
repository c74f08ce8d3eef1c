#include "vm/qemu_vm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "base/json.h"
#include "base/strings.h"
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
  std::string out = std::string(dir) + "/debugcon.log";
  // SeaBIOS with no disk prints its progress on the debug port 0x402 and
  // ends with "No bootable device". A KVM that starts but stalls the guest
  // never gets there.
  ProcessOptions o;
  o.argv = {"setpriv",
            "--pdeathsig",
            "KILL",
            "--",
            "qemu-system-x86_64",
            "-accel",
            "kvm",
            "-cpu",
            "host",  // the CPU model real runs use under KVM
            "-nodefaults",
            "-display",
            "none",
            "-m",
            "16",
            "-no-reboot",
            "-chardev",
            "file,id=dbg,path=" + out,
            "-device",
            "isa-debugcon,iobase=0x402,chardev=dbg"};
  o.timeout = std::chrono::seconds(5);
  bool ok = false;
  std::thread t([&] { (void)env.RunProcess(o); });
  for (int i = 0; i < 50 && !ok; ++i) {
    env.SleepFor(std::chrono::milliseconds(100));
    auto s = env.ReadFile(out, 1 << 20);
    ok = s.ok() && s->find("No bootable device") != std::string::npos;
  }
  // The probe guest never exits by itself; the 5 s timeout kills it (its
  // process group) if it is still there.
  t.join();
  (void)env.RemoveAll(dir);
  *why = ok ? "KVM works (a probe guest ran to the end of its firmware)"
            : "KVM does not work here: /dev/kvm opens but a probe guest stalled under it; "
              "using TCG (much slower)";
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
  if (!key.empty()) {
    Json j = Json::MakeObject();
    j.Set("key", Json::String(key));
    j.Set("accel", Json::String(AccelName(a)));
    j.Set("reason", Json::String(*why));
    // A cache that cannot be written only costs the next process a probe.
    if (env.CreateDirs(Dirname(cache_file)).ok()) {
      (void)env.WriteFileAtomic(cache_file, j.Dump() + "\n");
    }
  }
  return a;
}

namespace {

std::string SecondsText(std::chrono::milliseconds ms) {
  return std::to_string(ms.count() / 1000) + " s";
}

int64_t NowUs(Env& env) { return env.MonotonicMicros(); }

}  // namespace

const char* AccelName(Accel a) { return a == Accel::kKvm ? "kvm" : "tcg"; }

Accel ProbeAccel(Env& env, std::string* why, const std::string& cache_file) {
  static std::once_flag once;
  static Accel accel = Accel::kTcg;
  static std::string* reason = new std::string();
  std::call_once(once, [&] { accel = ProbeAccelUncached(env, reason, cache_file); });
  if (why != nullptr) *why = *reason;
  return accel;
}

ValidationPrefetch::ValidationPrefetch(Env& env, std::string accel_cache,
                                       std::string ssh_keys_cache)
    : thread_([&env, accel_cache = std::move(accel_cache),
               ssh_keys_cache = std::move(ssh_keys_cache)] {
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

  std::vector<std::string> argv = {"setpriv",
                                   "--pdeathsig",
                                   "KILL",
                                   "--",
                                   "qemu-system-x86_64",
                                   "-name",
                                   "imagesmith-validate",
                                   // Only the devices below: no default NIC,
                                   // CD-ROM or floppy for the firmware to try.
                                   "-nodefaults",
                                   "-accel",
                                   AccelName(vm->accel_)};
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
  if (vm->accel_ == Accel::kTcg) argv.insert(argv.end(), {"-cpu", "max"});
  if (vm->accel_ == Accel::kKvm) argv.insert(argv.end(), {"-cpu", "host"});
  argv.insert(argv.end(),
              {"-smp",
               std::to_string(c.cpus),
               "-m",
               std::to_string(c.memory_mb),
               "-display",
               "none",
               "-vga",
               "none",
               "-no-reboot",
               "-pidfile",
               vm->pidfile_,
               "-chardev",
               "file,id=con,path=" + vm->console_,
               "-serial",
               "chardev:con",
               "-drive",
               "file=" + overlay + ",format=qcow2,if=virtio,cache=unsafe,discard=unmap",
               "-device",
               "virtio-serial-pci,id=vser0",
               "-chardev",
               "socket,id=agent,path=" + socket + ",server=on,wait=off",
               "-device",
               std::string("virtserialport,bus=vser0.0,chardev=agent,name=") + proto::kPortName,
               "-device",
               "virtio-rng-pci"});
  if (c.network) {
    // romfile= leaves out the NIC's iPXE option ROM: the firmware boots the
    // disk, never the network, and loading iPXE costs ~1 s under TCG.
    argv.insert(argv.end(), {"-netdev", "user,id=net0", "-device",
                             "virtio-net-pci,netdev=net0,romfile="});
  }
  say("qemu: " + imagesmith::Join(argv, " "));

  ProcessOptions po;
  po.argv = argv;
  po.timeout = c.lifetime;
  po.max_capture_bytes = 1 << 20;
  int64_t started = NowUs(env);
  Vm* raw = vm.get();
  vm->thread_ = std::thread([raw, po] {
    auto r = raw->env_.RunProcess(po);
    raw->qemu_stderr_ = r.ok() ? r->stderr_data + (r->timed_out ? "(killed at its lifetime)" : "")
                               : r.status().ToString();
    raw->exited_.store(true);
  });

  int64_t ready_deadline = started + c.ready_timeout.count() * 1000;
  auto fail_not_ready = [&](const Status& s) -> Status {
    vm->Kill();
    std::string stderr_text = vm->qemu_stderr_;
    std::string detail = s.message();
    if (!stderr_text.empty()) detail += "; qemu said: " + std::string(TrimWhitespace(stderr_text));
    return Status(s.code(), detail + "\nlast lines of the serial console (" + vm->console_ +
                                "):\n" + vm->ConsoleTail(25));
  };
  auto agent = AgentClient::Connect(socket, std::min(ready_deadline, started + 30000000));
  if (!agent.ok()) return fail_not_ready(agent.status());
  vm->agent_ = std::move(*agent);
  auto hello =
      vm->agent_->WaitReady(ready_deadline, cancelled, [raw] { return !raw->exited_.load(); });
  if (!hello.ok()) {
    if (hello.status().code() == StatusCode::kDeadlineExceeded) {
      return fail_not_ready(
          DeadlineExceededError("the guest never became ready: the agent did not answer within " +
                                SecondsText(c.ready_timeout) +
                                " of qemu's start (the image may not boot, or its "
                                "boot is stuck; the console below shows how far it got)"));
    }
    if (hello.status().code() == StatusCode::kCancelled) {
      vm->Kill();
      return CancelledError("canceled while the VM was booting");
    }
    return fail_not_ready(hello.status().WithContext("the guest never became ready"));
  }
  vm->hello_ = *hello;
  vm->seconds_to_ready_ = static_cast<double>(NowUs(env) - started) / 1e6;
  char buf[160];
  std::snprintf(buf, sizeof buf, "agent ready %.1f s after qemu started (guest uptime %.1f s, %s)",
                vm->seconds_to_ready_, static_cast<double>(hello->guest_uptime_ms) / 1000.0,
                hello->name.c_str());
  say(buf);
  return vm;
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
