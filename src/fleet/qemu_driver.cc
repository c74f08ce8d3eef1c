// The qemu node driver (doc/fleet.md). A node is a daemonized qemu (its own
// session, no parent-death signal: it outlives imagesmith) booting a qcow2
// overlay over the regional disk, with the node agent and the node's
// hostname written into the overlay. Its agent channels are unix sockets in
// /tmp/isn-<node id>/: a0.sock for hello, heartbeats and setup, a1..aN.sock
// for tasks (one per task slot), qmp.sock for the monitor.
//
// Each node this driver object knows has one watcher thread: it connects to
// a0, says hello, asks INFO, then pings every kHeartbeatInterval. Observe reads what the watcher
// last saw. A new driver object adopts a running node by pid and start time and starts a watcher
// for it; the guest is not touched.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "base/process.h"
#include "base/strings.h"
#include "fleet/host_capacity.h"
#include "fleet/node_driver.h"
#include "vm/agent_client.h"
#include "vm/overlay.h"
#include "vm/qemu_vm.h"
#include "vm/qmp.h"
#include "vm/unix_socket.h"

namespace imagesmith::fleet {
namespace {

using Machine = NodeObservation::Machine;
using std::chrono::milliseconds;

constexpr const char kOvmfCode[] = "/usr/share/OVMF/OVMF_CODE.fd";
constexpr const char kOvmfVars[] = "/usr/share/OVMF/OVMF_VARS.fd";

// Runs a task: $1 working dir, $2 user ("" for root), $3 command line, $4
// the file that gets the task's pid (its process group, for cancel), $5 the
// data disk's mount point ("" without one). The
// auto-user is made by the first non-admin task that needs it (a second one
// racing it finds it made), so that a node's hello waits for nothing.
//
// The agent starts early in sysinit (vm/overlay.cc), so a task may come
// before systemd has remounted the root file system read-write: the wrapper
// waits for that, and for systemd to mount the data disk, up to 60 s.
constexpr const char kTaskWrapper[] = R"sh(wd=$1 user=$2 cmd=$3 pidf=$4 data=$5
i=0
while [ ! -w / ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
if [ -n "$data" ]; then
  while ! mountpoint -q "$data" && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
  mountpoint -q "$data" || { echo "the data disk is not mounted at $data yet" >&2; exit 125; }
fi
mkdir -p /run/imagesmith-tasks && echo $$ > "$pidf" || exit 125
if [ -n "$user" ] && ! id -u "$user" >/dev/null 2>&1; then
  useradd --create-home --user-group --shell /bin/sh "$user" || id -u "$user" >/dev/null || exit 125
fi
mkdir -p "$wd" || exit 125
if [ -n "$user" ]; then chown "$user:" "$wd" || exit 125; fi
cd "$wd" || exit 125
if [ -n "$user" ]; then
  exec setpriv --reuid="$user" --regid="$user" --init-groups -- /bin/sh -c "$cmd"
fi
exec /bin/sh -c "$cmd"
)sh";

// The data disk is mounted by a oneshot service rather than a mount unit:
// a mount unit waits for its udev device unit, and under TCG on a loaded
// host systemd's 90 s device timeout expired before udev got to it (the
// guest's clock jumps at boot; /boot/efi timed out the same way). The
// script waits for the label itself (blkid probes /dev, which devtmpfs
// fills without udev). noinit_itable: the file system was made with lazy
// inode tables on a sparse file; without it the guest kernel would zero them
// in the background and fill the file on the host.
constexpr const char kDataDiskScriptPath[] = "/usr/local/lib/imagesmith-data-disk";
constexpr const char kDataDiskUnitPath[] = "/etc/systemd/system/imagesmith-data-disk.service";
constexpr const char kDataDiskUnitLink[] =
    "/etc/systemd/system/local-fs.target.wants/imagesmith-data-disk.service";
std::string DataDiskScript() {
  return std::string("label=") + kDataDiskLabel + " where=" + kDataDiskMountPoint + R"sh(
i=0
until dev=$(blkid -L "$label"); do
  i=$((i + 1))
  if [ $i -gt 1500 ]; then echo "no disk labelled $label" >&2; exit 1; fi
  sleep 0.2
done
mkdir -p "$where"
mountpoint -q "$where" || exec mount -t ext4 -o noinit_itable "$dev" "$where"
)sh";
}
std::string DataDiskUnit() {
  return std::string(
             "[Unit]\n"
             "Description=imagesmith node data disk (dataDiskSizeGB) at ") +
         kDataDiskMountPoint +
         "\n"
         "DefaultDependencies=no\n"
         "After=systemd-remount-fs.service local-fs-pre.target\n"
         "Before=local-fs.target\n"
         "\n"
         "[Service]\n"
         "Type=oneshot\n"
         "RemainAfterExit=yes\n"
         "TimeoutStartSec=infinity\n"
         "ExecStart=/bin/sh " +
         kDataDiskScriptPath + "\n";
}

bool ValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

// Whether `pid` is the process that started at `ticks` and is not a zombie.
bool MachineRuns(int64_t pid, uint64_t ticks) {
  if (pid <= 0 || !ProcessAlive(static_cast<int>(pid), ticks)) return false;
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "re");
  if (f == nullptr) return false;
  char buf[512] = {};
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  (void)std::fclose(f);
  std::string_view s(buf, n);
  size_t p = s.rfind(')');
  return p != std::string_view::npos && p + 2 < s.size() && s[p + 2] != 'Z';
}

std::map<std::string, std::string> ParseOsRelease(std::string_view text) {
  std::map<std::string, std::string> out;
  for (const std::string& raw : Split(text, '\n')) {
    std::string_view line = TrimWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string value(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    out[vm::SanitizeGuestText(line.substr(0, eq), 64)] = vm::SanitizeGuestText(value, 256);
  }
  return out;
}

std::string ReadOrEmpty(Env& env, const std::string& path) {
  StatusOr<std::string> text = env.ReadFile(path, 64 << 20);
  return text.ok() ? *text : std::string();
}

std::string Tail(const std::string& text, size_t lines) {
  std::vector<std::string> all = Split(text, '\n');
  while (!all.empty() && TrimWhitespace(all.back()).empty()) all.pop_back();
  size_t from = all.size() > lines ? all.size() - lines : 0;
  std::string out;
  for (size_t i = from; i < all.size(); ++i) out += vm::SanitizeGuestText(all[i], 300) + "\n";
  return out;
}

struct Node {
  NodeSpec spec;
  std::string machine_dir;  // work_dir/machine: overlay, console, pid file, OVMF vars
  std::string data_disk;    // work_dir/data.raw (kept across Reimage)
  std::string socket_dir;   // /tmp/isn-<id>
  int channels = 1;         // task channels a1..aN

  std::mutex mu;  // guards the fields below
  NodeRuntime runtime;
  Machine machine = Machine::kBooting;
  std::optional<GuestInfo> guest;
  int64_t last_heartbeat_us = 0;
  uint64_t last_uptime_ms = 0;
  std::string detail;
  // Bumped whenever the guest is found (re)booting or gone: tasks running
  // across it end Unavailable instead of waiting for an EXIT that never comes.
  std::atomic<int> generation{0};
  bool stop = false;  // the watcher ends
  std::condition_variable wake;
  std::vector<std::unique_ptr<vm::AgentClient>> task_clients;  // index i: channel a(i+1)
  std::vector<bool> busy;

  std::mutex control_mu;  // guards control (the watcher and cancel use it)
  std::unique_ptr<vm::AgentClient> control;

  std::thread watcher;
};

class QemuDriver final : public NodeDriver {
 public:
  QemuDriver(Env& env, std::string state_dir, std::string accel_cache)
      : env_(env),
        state_dir_(std::move(state_dir)),
        accel_cache_(accel_cache.empty() ? JoinPath(state_dir_, "accel.json")
                                         : std::move(accel_cache)),
        capacity_(env, state_dir_) {}

  ~QemuDriver() override {
    std::map<std::string, std::shared_ptr<Node>> nodes;
    {
      std::lock_guard lock(mu_);
      nodes.swap(nodes_);
    }
    for (auto& [id, node] : nodes) StopWatcher(*node);
  }

  std::string_view Name() const override { return "qemu"; }

  StatusOr<NodeRuntime> Create(const NodeSpec& spec) override {
    RETURN_IF_ERROR(CheckSpec(spec));
    if (!env_.FileExists(spec.image.disk)) {
      return NotFoundError("the disk " + spec.image.disk + " of image " + spec.image.image_id +
                           " does not exist");
    }
    {
      std::lock_guard lock(mu_);
      if (nodes_.count(spec.node_id) != 0) {
        return AlreadyExistsError("node " + spec.node_id + " already exists");
      }
    }
    auto node = NewNode(spec);
    RETURN_IF_ERROR(capacity_.Reserve(spec.node_id, spec.size.cpus, QemuGuestMemoryMb(spec.size)));
    // A new node gets an empty data disk, whatever an earlier node of the
    // same id left.
    Status s = env_.RemoveAll(node->data_disk);
    if (s.ok()) s = StartMachine(*node);
    if (!s.ok()) {
      RemoveFiles(*node);
      (void)env_.RemoveAll(node->data_disk);
      (void)capacity_.Release(spec.node_id);
      return s;
    }
    NodeRuntime runtime;
    {
      std::lock_guard lock(node->mu);
      runtime = node->runtime;
    }
    RETURN_IF_ERROR(capacity_.SetProcess(spec.node_id, runtime.pid, runtime.start_ticks));
    Install(node);
    return runtime;
  }

  Status Adopt(const NodeSpec& spec, const NodeRuntime& runtime) override {
    RETURN_IF_ERROR(CheckSpec(spec));
    if (runtime.driver != "qemu") {
      return InvalidArgumentError("node " + spec.node_id + " was made by the " + runtime.driver +
                                  " driver, not qemu");
    }
    if (!MachineRuns(runtime.pid, runtime.start_ticks)) {
      return NotFoundError("node " + spec.node_id + "'s machine (qemu pid " +
                           std::to_string(runtime.pid) +
                           ") is gone, or the pid now belongs to another process");
    }
    {
      std::lock_guard lock(mu_);
      if (nodes_.count(spec.node_id) != 0) return Status::Ok();
    }
    auto node = NewNode(spec);
    node->runtime = runtime;
    // The channels are what qemu was started with: count the sockets.
    auto names = env_.ListDir(node->socket_dir);
    if (names.ok()) {
      int n = 0;
      for (const std::string& name : *names) n += name != "a0.sock" && StartsWith(name, "a");
      if (n > 0) node->channels = n;
    }
    node->task_clients.resize(static_cast<size_t>(node->channels));
    node->busy.assign(static_cast<size_t>(node->channels), false);
    node->detail = "adopted; waiting for the agent's hello";
    Install(node);
    // A node that was ready is ready again as soon as its agent answers:
    // wait a little for that, so that Observe right after Adopt tells a
    // running node from one that is really (re)booting.
    int64_t deadline = env_.MonotonicMicros() + 15000000;
    std::unique_lock lock(node->mu);
    while (node->machine == Machine::kBooting && env_.MonotonicMicros() < deadline) {
      node->wake.wait_for(lock, milliseconds(50));
    }
    return Status::Ok();
  }

  NodeObservation Observe(const std::string& node_id) override {
    std::shared_ptr<Node> node = Find(node_id);
    NodeObservation obs;
    if (node == nullptr) {
      obs.machine = Machine::kGone;
      obs.detail = "no node " + node_id + " in this driver";
      return obs;
    }
    std::lock_guard lock(node->mu);
    obs.machine = node->machine;
    obs.guest = node->guest;
    obs.last_heartbeat_us = node->last_heartbeat_us;
    obs.detail = node->detail;
    return obs;
  }

  StatusOr<NodeRuntime> Runtime(const std::string& node_id) override {
    std::shared_ptr<Node> node = Find(node_id);
    if (node == nullptr) return NotFoundError("no node " + node_id + " in this driver");
    std::lock_guard lock(node->mu);
    return node->runtime;
  }

  StatusOr<TaskResult> RunTask(const std::string& node_id, const TaskSpec& task,
                               const std::atomic<bool>* cancel) override;

  Status Reboot(const std::string& node_id) override {
    std::shared_ptr<Node> node = Find(node_id);
    if (node == nullptr) return NotFoundError("no node " + node_id + " in this driver");
    SyncGuest(*node);
    auto qmp =
        vm::QmpClient::Connect(node->socket_dir + "/qmp.sock", vm::MonotonicNowUs() + 5000000);
    if (!qmp.ok()) return qmp.status().WithContext("rebooting node " + node_id);
    RETURN_IF_ERROR((*qmp)
                        ->Hmp("system_reset", vm::MonotonicNowUs() + 5000000)
                        .status()
                        .WithContext("rebooting node " + node_id));
    MarkBooting(*node, "rebooting");
    return Status::Ok();
  }

  Status Reimage(const std::string& node_id, const NodeImage& image) override {
    std::shared_ptr<Node> node = Find(node_id);
    if (node == nullptr) return NotFoundError("no node " + node_id + " in this driver");
    if (!env_.FileExists(image.disk)) {
      return NotFoundError("the disk " + image.disk + " of image " + image.image_id +
                           " does not exist");
    }
    SyncGuest(*node);
    StopWatcher(*node);
    KillMachine(*node);
    RemoveFiles(*node);
    {
      // Connections to the old machine's sockets are dead; tasks still
      // running on them end Unavailable.
      std::lock_guard lock(node->mu);
      for (auto& client : node->task_clients) client.reset();
    }
    node->spec.image = image;
    {
      std::lock_guard lock(node->mu);
      node->stop = false;
      node->machine = Machine::kBooting;
      node->guest.reset();
      node->last_heartbeat_us = 0;
      node->last_uptime_ms = 0;
      node->detail = "reimaging";
    }
    Status s = StartMachine(*node);
    if (!s.ok()) {
      std::lock_guard lock(node->mu);
      node->machine = Machine::kGone;
      node->detail = s.ToString();
      return s;
    }
    RETURN_IF_ERROR(capacity_.SetProcess(node_id, node->runtime.pid, node->runtime.start_ticks));
    node->watcher = std::thread([this, node] { Watch(node); });
    return Status::Ok();
  }

  Status Delete(const std::string& node_id) override {
    std::shared_ptr<Node> node;
    {
      std::lock_guard lock(mu_);
      auto it = nodes_.find(node_id);
      if (it == nodes_.end()) return Status::Ok();
      node = it->second;
      nodes_.erase(it);
    }
    StopWatcher(*node);
    KillMachine(*node);
    RemoveFiles(*node);
    (void)env_.RemoveAll(node->data_disk);
    (void)env_.RemoveAll(node->socket_dir);
    return capacity_.Release(node_id);
  }

 private:
  Status CheckSpec(const NodeSpec& spec) {
    if (!ValidNodeId(spec.node_id)) {
      return InvalidArgumentError("node id " + QuoteForMessage(spec.node_id) +
                                  " must be 1-64 characters of [a-z0-9_-]");
    }
    if (spec.work_dir.empty() || !env_.IsDirectory(spec.work_dir)) {
      return InvalidArgumentError("node " + spec.node_id + ": the work_dir " +
                                  QuoteForMessage(spec.work_dir) + " is not a directory");
    }
    if (spec.mac.size() != 17) {
      return InvalidArgumentError("node " + spec.node_id + ": mac " + QuoteForMessage(spec.mac) +
                                  " is not of the form 52:54:00:xx:xx:xx");
    }
    if (spec.task_slots < 1) {
      return InvalidArgumentError("node " + spec.node_id + ": task_slots must be at least 1");
    }
    if (spec.data_disk_gb < 0 || spec.data_disk_gb > kMaxDataDiskGb) {
      return InvalidArgumentError("node " + spec.node_id + ": data_disk_gb " +
                                  std::to_string(spec.data_disk_gb) + " must be 0 (none) to " +
                                  std::to_string(kMaxDataDiskGb));
    }
    return Status::Ok();
  }

  std::shared_ptr<Node> NewNode(const NodeSpec& spec) {
    auto node = std::make_shared<Node>();
    node->spec = spec;
    node->machine_dir = JoinPath(spec.work_dir, "machine");
    node->data_disk = JoinPath(spec.work_dir, "data.raw");
    node->socket_dir = "/tmp/isn-" + spec.node_id;
    node->channels = std::min(spec.task_slots, kMaxTaskChannels);
    node->task_clients.resize(static_cast<size_t>(node->channels));
    node->busy.assign(static_cast<size_t>(node->channels), false);
    return node;
  }

  std::shared_ptr<Node> Find(const std::string& node_id) {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node_id);
    return it == nodes_.end() ? nullptr : it->second;
  }

  void Install(const std::shared_ptr<Node>& node) {
    {
      std::lock_guard lock(mu_);
      nodes_[node->spec.node_id] = node;
    }
    node->watcher = std::thread([this, node] { Watch(node); });
  }

  void StopWatcher(Node& node) {
    {
      std::lock_guard lock(node.mu);
      node.stop = true;
    }
    node.wake.notify_all();
    if (node.watcher.joinable()) node.watcher.join();
    std::lock_guard lock(node.control_mu);
    node.control.reset();
  }

  void MarkBooting(Node& node, const std::string& why) {
    std::lock_guard lock(node.mu);
    node.machine = Machine::kBooting;
    node.guest.reset();
    node.last_uptime_ms = 0;
    node.detail = why;
    ++node.generation;
    node.wake.notify_all();
  }

  // Asks a ready guest to write its caches back (`sync`, up to 10 s) before
  // its machine is reset or killed, so that what tasks wrote to the data
  // disk survives a Reimage or Reboot. Best effort: a guest that does not
  // answer is reset anyway.
  void SyncGuest(Node& node) {
    {
      std::lock_guard lock(node.mu);
      if (node.machine != Machine::kReady) return;
    }
    std::lock_guard control_lock(node.control_mu);
    if (node.control == nullptr) return;
    vm::ExecRequest sync;
    sync.argv = {"/bin/sync"};
    sync.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
    sync.timeout = std::chrono::seconds(10);
    (void)node.control->Exec(sync, vm::MonotonicNowUs() + 15000000, nullptr);
  }
  // Makes the overlay (and the data disk when the node has one and it is
  // missing) and starts qemu, daemonized. Sets node.runtime.
  Status StartMachine(Node& node);
  // A sparse raw file of spec.data_disk_gb GiB at node.data_disk with an
  // empty ext4 file system labelled kDataDiskLabel; nothing is left on error.
  Status MakeDataDisk(Node& node);
  // SIGKILLs the machine (if it is still the recorded process) and waits
  // up to 10 s for it to go.
  void KillMachine(Node& node);
  // Removes what StartMachine made in work_dir.
  void RemoveFiles(Node& node) { (void)env_.RemoveAll(node.machine_dir); }
  // The watcher thread's body.
  void Watch(std::shared_ptr<Node> node);

  Env& env_;
  const std::string state_dir_;
  const std::string accel_cache_;
  HostCapacity capacity_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Node>> nodes_;  // guarded by mu_
};

Status QemuDriver::StartMachine(Node& node) {
  const NodeSpec& spec = node.spec;
  RETURN_IF_ERROR(env_.RemoveAll(node.machine_dir));
  RETURN_IF_ERROR(env_.CreateDirs(node.machine_dir));
  (void)env_.RemoveAll(node.socket_dir);
  if (::mkdir(node.socket_dir.c_str(), 0700) != 0) {
    return ErrnoError("making the node's socket directory " + node.socket_dir, errno);
  }
  ASSIGN_OR_RETURN(std::string agent_bin, vm::FindAgentBinary(env_));
  vm::OverlaySpec os;
  os.disk = spec.image.disk;
  os.overlay = node.machine_dir + "/overlay.qcow2";
  os.agent_binary = agent_bin;
  os.scratch_dir = node.machine_dir;
  os.fast_boot = true;
  std::string hostname = spec.hostname.empty() ? spec.node_id : spec.hostname;
  os.extra_files = {{"/etc/hostname", hostname + "\n"}};
  const bool data_disk = spec.data_disk_gb > 0;
  if (data_disk) {
    if (!env_.FileExists(node.data_disk)) RETURN_IF_ERROR(MakeDataDisk(node));
    os.extra_files.emplace_back(kDataDiskScriptPath, DataDiskScript());
    os.extra_files.emplace_back(kDataDiskUnitPath, DataDiskUnit());
    os.extra_symlinks.emplace_back(kDataDiskUnitLink, kDataDiskUnitPath);
  }
  RETURN_IF_ERROR(vm::MakeAgentOverlay(env_, os).WithContext("node " + spec.node_id));
  for (const char* scratch : {"grub.cfg", "imagesmith-agent.service", "debugfs.cmds", "extra-0"}) {
    (void)env_.RemoveAll(node.machine_dir + "/" + scratch);
  }

  std::string why;
  vm::Accel accel = vm::ProbeAccel(env_, &why, accel_cache_);
  std::string pidfile = node.machine_dir + "/qemu.pid";
  std::vector<std::string> argv = {
      "qemu-system-x86_64", "-name",  "imagesmith-node-" + spec.node_id,
      "-nodefaults",        "-accel", vm::AccelName(accel),
      "-pidfile",           pidfile};
  for (std::string& a : vm::QemuConfinementArgs()) argv.push_back(std::move(a));
  if (spec.image.uefi) {
    std::string vars = node.machine_dir + "/OVMF_VARS.fd";
    ASSIGN_OR_RETURN(std::string v, env_.ReadFile(kOvmfVars, 64 << 20));
    RETURN_IF_ERROR(env_.WriteFileAtomic(vars, v));
    argv.insert(argv.end(), {"-machine", "q35", "-drive",
                             std::string("if=pflash,format=raw,readonly=on,file=") + kOvmfCode,
                             "-drive", "if=pflash,format=raw,file=" + vars});
  } else {
    argv.insert(argv.end(), {"-machine", "pc"});
  }
  argv.insert(argv.end(), {"-cpu", accel == vm::Accel::kKvm ? "host" : "max"});
  argv.insert(argv.end(),
              {"-smp",
               std::to_string(spec.size.cpus),
               "-m",
               std::to_string(QemuGuestMemoryMb(spec.size)),
               "-display",
               "none",
               "-vga",
               "none",
               "-qmp",
               "unix:" + node.socket_dir + "/qmp.sock,server=on,wait=off",
               "-chardev",
               "file,id=con,path=" + node.machine_dir + "/console.log",
               "-serial",
               "chardev:con",
               "-drive",
               "file=" + node.machine_dir +
                   "/overlay.qcow2,format=qcow2,if=virtio,cache=writeback,discard=unmap",
               "-device",
               "virtio-serial-pci,id=vser0,max_ports=32",
               "-device",
               "virtio-rng-pci",
               "-netdev",
               "user,id=net0",
               "-device",
               "virtio-net-pci,netdev=net0,romfile=,mac=" + spec.mac});
  if (data_disk) {
    // The second virtio disk (vdb in the guest), found by its label.
    argv.insert(argv.end(), {"-drive", "file=" + node.data_disk +
                                           ",format=raw,if=virtio,cache=writeback,discard=unmap"});
  }
  for (int i = 0; i <= node.channels; ++i) {
    std::string id = "agent" + std::to_string(i);
    argv.insert(argv.end(), {"-chardev",
                             "socket,id=" + id + ",path=" + node.socket_dir + "/a" +
                                 std::to_string(i) + ".sock,server=on,wait=off",
                             "-device",
                             "virtserialport,bus=vser0.0,chardev=" + id +
                                 ",name=" + vm::proto::kPortPrefix + std::to_string(i)});
  }
  // Not qemu's -daemonize: its fork is refused by the seccomp filter of
  // QemuConfinementArgs (spawn=deny). setsid --fork puts qemu in a session
  // of its own, not a child of imagesmith, with no parent-death signal.
  std::string errlog = node.machine_dir + "/qemu.stderr";
  ProcessOptions po;
  po.argv = {"setsid", "--fork", "/bin/sh", "-c", "exec \"$@\" </dev/null >/dev/null 2>>\"$0\"",
             errlog};
  po.argv.insert(po.argv.end(), argv.begin(), argv.end());
  po.timeout = std::chrono::seconds(30);
  ASSIGN_OR_RETURN(ProcessResult forked, env_.RunProcess(po));
  if (!forked.success()) {
    return InternalError("starting qemu for node " + spec.node_id + " failed (" +
                         forked.Describe() + "): " + Tail(forked.stderr_data, 10));
  }
  // qemu writes its pid file and makes its sockets before the guest runs.
  int64_t pid = 0;
  uint64_t ticks = 0;
  int64_t deadline = env_.MonotonicMicros() + 30000000;
  while (env_.MonotonicMicros() < deadline) {
    StatusOr<std::string> pid_text = env_.ReadFile(pidfile, 64);
    if (pid_text.ok() && !TrimWhitespace(*pid_text).empty()) {
      pid = std::atoll(std::string(TrimWhitespace(*pid_text)).c_str());
      ticks = pid > 0 ? ProcessStartTicks(static_cast<int>(pid)) : 0;
      if (ticks != 0 && env_.FileExists(node.socket_dir + "/qmp.sock")) break;
    }
    if (env_.FileExists(errlog) && !ReadOrEmpty(env_, errlog).empty() &&
        (ticks == 0 || !MachineRuns(pid, ticks))) {
      break;
    }
    env_.SleepFor(milliseconds(20));
  }
  if (ticks == 0 || !MachineRuns(pid, ticks)) {
    if (ticks != 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
    return InternalError("qemu for node " + spec.node_id +
                         " did not start: " + Tail(ReadOrEmpty(env_, errlog), 10));
  }
  std::lock_guard lock(node.mu);
  node.runtime.driver = "qemu";
  node.runtime.pid = pid;
  node.runtime.start_ticks = ticks;
  node.runtime.agent_socket = node.socket_dir + "/a0.sock";
  node.runtime.created_us = env_.NowMicros();
  return Status::Ok();
}

Status QemuDriver::MakeDataDisk(Node& node) {
  const std::string tmp = node.data_disk + ".tmp";
  (void)env_.RemoveAll(tmp);
  auto run = [&](std::vector<std::string> argv) -> Status {
    ProcessOptions po;
    po.argv = std::move(argv);
    po.timeout = std::chrono::seconds(60);
    ASSIGN_OR_RETURN(ProcessResult r, env_.RunProcess(po));
    if (!r.success()) {
      return InternalError(po.argv[0] + " for node " + node.spec.node_id + "'s data disk failed (" +
                           r.Describe() + "): " + Tail(r.stderr_data + r.stdout_data, 10));
    }
    return Status::Ok();
  };
  // Lazy inode tables and journal: a 1 TiB disk is made in well under a
  // second and takes a few MiB on the host until the guest writes to it.
  Status s = run({"truncate", "-s", std::to_string(node.spec.data_disk_gb) + "G", tmp});
  if (s.ok()) {
    s = run({"mke2fs", "-q", "-F", "-t", "ext4", "-L", kDataDiskLabel, "-m", "0", "-E",
             "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0", tmp});
  }
  if (s.ok()) s = env_.Rename(tmp, node.data_disk);
  if (!s.ok()) (void)env_.RemoveAll(tmp);
  return s;
}

void QemuDriver::KillMachine(Node& node) {
  int64_t pid;
  uint64_t ticks;
  {
    std::lock_guard lock(node.mu);
    pid = node.runtime.pid;
    ticks = node.runtime.start_ticks;
  }
  if (!MachineRuns(pid, ticks)) return;
  ::kill(static_cast<pid_t>(pid), SIGKILL);
  // qemu is not our child: whoever adopted it (init) reaps it. Wait until
  // it is gone from /proc, or at least dead (a zombie) after 10 s.
  for (int i = 0; i < 1000 && ProcessAlive(static_cast<int>(pid), ticks); ++i) {
    if (i >= 200 && !MachineRuns(pid, ticks)) break;
    env_.SleepFor(milliseconds(10));
  }
}

void QemuDriver::Watch(std::shared_ptr<Node> node) {
  auto stopped = [&] {
    std::lock_guard lock(node->mu);
    return node->stop;
  };
  auto pause = [&](milliseconds d) {
    std::unique_lock lock(node->mu);
    node->wake.wait_for(lock, d, [&] { return node->stop; });
  };
  std::string console = node->machine_dir + "/console.log";
  while (!stopped()) {
    int64_t pid;
    uint64_t ticks;
    bool ready;
    {
      std::lock_guard lock(node->mu);
      pid = node->runtime.pid;
      ticks = node->runtime.start_ticks;
      ready = node->machine == Machine::kReady;
    }
    if (!MachineRuns(pid, ticks)) {
      std::string tail = Tail(ReadOrEmpty(env_, console), 20);
      std::lock_guard lock(node->mu);
      node->machine = Machine::kGone;
      ++node->generation;
      node->detail = "qemu (pid " + std::to_string(pid) +
                     ") is not running; the console's last lines:\n" + tail;
      return;
    }
    std::unique_lock control_lock(node->control_mu);
    if (node->control == nullptr) {
      auto client =
          vm::AgentClient::Connect(node->socket_dir + "/a0.sock", vm::MonotonicNowUs() + 1000000);
      if (client.ok()) node->control = std::move(*client);
    }
    if (node->control == nullptr) {
      control_lock.unlock();
      pause(milliseconds(500));
      continue;
    }
    auto hello = node->control->Ping(vm::MonotonicNowUs() + (ready ? 3000000 : 1000000));
    if (!hello.ok()) {
      if (hello.status().code() != StatusCode::kDeadlineExceeded) node->control.reset();
      control_lock.unlock();
      if (!ready) pause(milliseconds(200));
      continue;
    }
    int64_t now = env_.NowMicros();
    bool rebooted;
    {
      std::lock_guard lock(node->mu);
      rebooted = hello->guest_uptime_ms < node->last_uptime_ms;
      node->last_uptime_ms = hello->guest_uptime_ms;
    }
    if (rebooted) MarkBooting(*node, "the guest rebooted");
    if (!ready || rebooted) {
      // First hello of this boot: what the guest is.
      auto info = node->control->Info(vm::MonotonicNowUs() + 10000000);
      Status setup = info.status();
      if (!setup.ok() &&
          (setup.code() == StatusCode::kUnavailable || setup.code() == StatusCode::kDataLoss)) {
        node->control.reset();
      }
      control_lock.unlock();
      if (!setup.ok()) {
        // Stays booting; a node that never gets ready is the controller's
        // to call unusable. The watcher tries again a second later.
        {
          std::lock_guard lock(node->mu);
          node->detail = "node setup: " + setup.ToString();
        }
        pause(milliseconds(1000));
        continue;
      }
      std::lock_guard lock(node->mu);
      GuestInfo guest;
      guest.os_release = ParseOsRelease(info->os_release);
      guest.agent_version = hello->name;
      guest.hostname = info->hostname;
      node->guest = std::move(guest);
      node->machine = Machine::kReady;
      node->last_heartbeat_us = now;
      node->detail.clear();
      continue;
    }
    control_lock.unlock();
    {
      std::lock_guard lock(node->mu);
      node->last_heartbeat_us = now;
    }
    pause(std::chrono::duration_cast<milliseconds>(kHeartbeatInterval));
  }
}

StatusOr<TaskResult> QemuDriver::RunTask(const std::string& node_id, const TaskSpec& task,
                                         const std::atomic<bool>* cancel) {
  std::shared_ptr<Node> node = Find(node_id);
  if (node == nullptr) return FailedPreconditionError("no node " + node_id + " in this driver");
  const int generation = node->generation.load();
  auto cancelled = [&] { return cancel != nullptr && cancel->load(); };
  auto lost = [&] { return node->generation.load() != generation; };
  // A free channel; tasks beyond the node's channels wait for one.
  size_t channel = 0;
  {
    std::unique_lock lock(node->mu);
    for (;;) {
      if (node->machine != Machine::kReady) {
        return FailedPreconditionError(
            "node " + node_id + " is not ready (" +
            (node->detail.empty() ? "its agent has not said hello" : node->detail) + ")");
      }
      if (cancelled()) return CancelledError("task cancelled before it started");
      auto free = std::find(node->busy.begin(), node->busy.end(), false);
      if (free != node->busy.end()) {
        channel = static_cast<size_t>(free - node->busy.begin());
        *free = true;
        break;
      }
      node->wake.wait_for(lock, milliseconds(200));
    }
  }
  std::unique_ptr<vm::AgentClient> client;
  {
    std::lock_guard lock(node->mu);
    client = std::move(node->task_clients[channel]);
  }
  auto release = [&](bool keep) {
    std::lock_guard lock(node->mu);
    if (keep) node->task_clients[channel] = std::move(client);
    node->busy[channel] = false;
    node->wake.notify_all();
  };
  std::string socket = node->socket_dir + "/a" + std::to_string(channel + 1) + ".sock";
  if (client == nullptr) {
    auto connected = vm::AgentClient::Connect(socket, vm::MonotonicNowUs() + 5000000);
    if (!connected.ok()) {
      release(false);
      return UnavailableError("node " + node_id + ": cannot reach the agent's task channel " +
                              socket + ": " + connected.status().message());
    }
    client = std::move(*connected);
  }
  // The output files exist from the start, so they can be read while it runs.
  // (An empty path discards that stream.)
  auto open_output = [](const std::string& path) {
    return ::open(path.empty() ? "/dev/null" : path.c_str(),
                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  };
  int out_fd = open_output(task.stdout_path);
  int err_fd = open_output(task.stderr_path);
  if (out_fd < 0 || err_fd < 0) {
    int e = errno;
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    release(true);
    return ErrnoError(
        "opening the task's output files " + task.stdout_path + " and " + task.stderr_path, e);
  }
  std::string user = task.admin ? "" : kAutoUser;
  std::string pidfile = "/run/imagesmith-tasks/a" + std::to_string(channel + 1) + ".pid";
  vm::ExecRequest req;
  req.argv = {
      "/bin/sh",
      "-c",
      kTaskWrapper,
      "imagesmith-task",
      task.working_dir.empty() ? (task.admin ? "/root" : "/home/" + user) : task.working_dir,
      user,
      task.command_line,
      pidfile,
      node->spec.data_disk_gb > 0 ? kDataDiskMountPoint : ""};
  req.env = {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
             {"HOME", task.admin ? "/root" : "/home/" + user},
             {"USER", task.admin ? "root" : user},
             {"LOGNAME", task.admin ? "root" : user}};
  for (const std::string& kv : task.environment) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    req.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  int64_t wall_ms = task.max_wall_clock.count();
  req.timeout = milliseconds(std::clamp<int64_t>(wall_ms, 1, 0xffffffffLL));
  req.max_output_bytes = ~0ull;  // the files take all of it
  Status write_error;
  req.on_output = [&](std::string_view data, bool is_stderr) {
    int fd = is_stderr ? err_fd : out_fd;
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        if (write_error.ok()) write_error = ErrnoError("writing the task's output", errno);
        return;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  };
  auto result = client->Exec(req, vm::MonotonicNowUs() + (wall_ms + 60000) * 1000,
                             [&] { return cancelled() || lost(); });
  if (!result.ok() && result.status().code() == StatusCode::kCancelled && lost()) {
    ::close(out_fd);
    ::close(err_fd);
    release(false);
    return UnavailableError("node " + node_id + " rebooted or went away while the task ran");
  }
  ::close(out_fd);
  ::close(err_fd);
  if (!result.ok() && result.status().code() == StatusCode::kCancelled) {
    // Kill the task's process group in the guest through the control channel.
    std::lock_guard control_lock(node->control_mu);
    if (node->control != nullptr) {
      vm::ExecRequest kill;
      kill.argv = {"/bin/sh", "-c", "kill -KILL -- -$(cat \"$1\") 2>/dev/null; true",
                   "imagesmith-cancel", pidfile};
      kill.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
      kill.timeout = std::chrono::seconds(10);
      (void)node->control->Exec(kill, vm::MonotonicNowUs() + 20000000, nullptr);
    }
    release(true);  // the EXIT of the cancelled task is skipped by its id
    return result.status();
  }
  if (!result.ok()) {
    release(false);
    if (result.status().code() == StatusCode::kInternal) return result.status();
    return UnavailableError("node " + node_id +
                            " was lost while the task ran: " + result.status().message());
  }
  release(true);
  RETURN_IF_ERROR(write_error);
  TaskResult out;
  out.timed_out = result->timed_out;
  out.exit_code = result->signal != 0 ? 128 + result->signal : result->exit_code;
  if (out.timed_out) out.exit_code = -1;
  if (result->exit_code == 125) {
    out.failure =
        "the task could not be set up in the guest (root file system not writable, data disk not "
        "mounted, or working directory " +
        req.argv[4] + "); see its stderr";
  }
  return out;
}

}  // namespace

std::unique_ptr<NodeDriver> MakeQemuDriver(Env& env, std::string state_dir,
                                           std::string accel_cache) {
  return std::make_unique<QemuDriver>(env, std::move(state_dir), std::move(accel_cache));
}

}  // namespace imagesmith::fleet
