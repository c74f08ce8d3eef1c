// fleet_bench: the measurements of bench/fleet/run.sh.
//
//   fleet_bench disk CACHE OUT        makes a bootable raw Debian 12 disk at OUT from
//                                     the catalog base in CACHE ($IMAGESMITH_TEST_CACHE)
//   fleet_bench node DISK DIR         qemu driver: Create one node, wait for its
//                                     agent's hello (kReady), print seconds; then
//                                     print the overlay's allocated bytes, delete
//   fleet_bench peer DISK DIR         plain qemu-system-x86_64 on an overlay with
//                                     the agent (made before the clock starts), to
//                                     the agent's READY; print seconds
//
// Both boots use the same disk, firmware (SeaBIOS), vCPUs (1), memory (512 MiB),
// accelerator and devices; the node additionally gets its task channels.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "base/env.h"
#include "catalog/boot_disk.h"
#include "catalog/catalog.h"
#include "fleet/node_driver.h"
#include "vm/agent_client.h"
#include "vm/overlay.h"
#include "vm/qemu_vm.h"
#include "vm/unix_socket.h"

using namespace imagesmith;

namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "fleet_bench: %s\n", s.ToString().c_str());
  return 1;
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

int MakeDisk(const std::string& cache, const std::string& out) {
  Env& env = *Env::Default();
  catalog::Catalog cat(env, cache);
  tmpl::PlatformImageSource src;
  src.publisher = "Debian";
  src.offer = "debian-12";
  src.sku = "12";
  src.version = "latest";
  auto image = cat.Ensure(src, [](std::string_view) {});
  if (!image.ok()) return Fail(image.status());
  std::string tree = out + ".tree";
  ProcessOptions cp;
  cp.argv = {"cp", "-a", image->rootfs_dir, tree};
  auto copied = env.RunProcess(cp);
  if (!copied.ok() || !copied->success()) return Fail(InternalError("cp -a failed"));
  auto size = catalog::DefaultDiskSize(env, tree);
  if (!size.ok()) return Fail(size.status());
  Status s = catalog::MakeBootableDisk(env, catalog::NewBootConfig(catalog::Generation::kV1), tree,
                                       *size, out);
  (void)env.RemoveAll(tree);
  if (!s.ok()) return Fail(s);
  std::printf("disk %s: %llu bytes, %llu allocated\n", out.c_str(),
              static_cast<unsigned long long>(*size),
              static_cast<unsigned long long>(AllocatedBytes(out)));
  return 0;
}

int Node(const std::string& disk, const std::string& dir) {
  Env& env = *Env::Default();
  std::string work = dir + "/node";
  if (!env.CreateDirs(work).ok()) return 1;
  // The KVM-or-TCG verdict is kept in the data directory (VmAccelCacheFile)
  // and made at its first VM: the image's own validation boot, before any
  // pool can use the image. So the timed create starts with the verdict
  // known, as a pool create does; the probe's one-time cost is printed.
  std::string accel_cache = dir + "/state/vm-accel.json";
  std::string why;
  int64_t p0 = env.MonotonicMicros();
  (void)vm::ProbeAccel(env, &why, accel_cache);
  std::printf("one-time accelerator probe %.2f s (%s)\n",
              static_cast<double>(env.MonotonicMicros() - p0) / 1e6, why.c_str());
  auto driver = fleet::MakeQemuDriver(env, dir + "/state", accel_cache);
  fleet::NodeSpec spec;
  spec.node_id = "bench-" + std::to_string(::getpid());
  spec.hostname = "bench";
  spec.mac = "52:54:00:be:ec:01";
  spec.image.image_id = "bench";
  spec.image.disk = disk;
  spec.size = *fleet::LookupVmSize("Standard_A1_v2");
  spec.work_dir = work;
  int64_t t0 = env.MonotonicMicros();
  auto runtime = driver->Create(spec);
  if (!runtime.ok()) return Fail(runtime.status());
  double created = static_cast<double>(env.MonotonicMicros() - t0) / 1e6;
  while (driver->Observe(spec.node_id).machine == fleet::NodeObservation::Machine::kBooting &&
         env.MonotonicMicros() - t0 < 600000000) {
    env.SleepFor(std::chrono::milliseconds(50));
  }
  double ready = static_cast<double>(env.MonotonicMicros() - t0) / 1e6;
  auto obs = driver->Observe(spec.node_id);
  if (obs.machine != fleet::NodeObservation::Machine::kReady) {
    (void)driver->Delete(spec.node_id);
    return Fail(InternalError("the node did not become ready: " + obs.detail));
  }
  // The guest's own uptime just after ready, to tell a slow guest boot from
  // time lost outside the guest.
  fleet::TaskSpec uptime;
  uptime.command_line = "cut -d' ' -f1 /proc/uptime";
  uptime.stdout_path = work + "/uptime.txt";
  uptime.stderr_path = "";
  if (driver->RunTask(spec.node_id, uptime, nullptr).ok()) {
    auto text = env.ReadFile(uptime.stdout_path, 100);
    if (text.ok()) std::printf("node guest uptime after ready %s", text->c_str());
  }
  // Settle: what the guest writes in its first seconds after boot.
  env.SleepFor(std::chrono::seconds(10));
  uint64_t overlay = AllocatedBytes(work + "/machine/overlay.qcow2");
  std::printf("node create %.2f s, ready %.2f s, overlay %llu bytes allocated\n", created, ready,
              static_cast<unsigned long long>(overlay));
  Status s = driver->Delete(spec.node_id);
  return s.ok() ? 0 : Fail(s);
}

int Peer(const std::string& disk, const std::string& dir) {
  Env& env = *Env::Default();
  auto agent = vm::FindAgentBinary(env);
  if (!agent.ok()) return Fail(agent.status());
  std::string work = dir + "/peer";
  if (!env.CreateDirs(work).ok()) return 1;
  vm::OverlaySpec os;
  os.disk = disk;
  os.overlay = work + "/overlay.qcow2";
  os.agent_binary = *agent;
  os.scratch_dir = work;
  Status s = vm::MakeAgentOverlay(env, os);
  if (!s.ok()) return Fail(s);
  std::string why;
  vm::Accel accel = vm::ProbeAccel(env, &why);
  std::string sock = "/tmp/isb-" + std::to_string(::getpid()) + ".sock";
  ProcessOptions po;
  po.argv = {"qemu-system-x86_64",
             "-nodefaults",
             "-accel",
             vm::AccelName(accel),
             "-machine",
             "pc",
             "-cpu",
             accel == vm::Accel::kKvm ? "host" : "max",
             "-smp",
             "1",
             "-m",
             "512",
             "-display",
             "none",
             "-vga",
             "none",
             "-serial",
             "file:" + work + "/console.log",
             "-drive",
             "file=" + os.overlay + ",format=qcow2,if=virtio",
             "-device",
             "virtio-serial-pci,id=vser0",
             "-chardev",
             "socket,id=agent,path=" + sock + ",server=on,wait=off",
             "-device",
             std::string("virtserialport,bus=vser0.0,chardev=agent,name=") + vm::proto::kPortName,
             "-device",
             "virtio-rng-pci",
             "-netdev",
             "user,id=net0",
             "-device",
             "virtio-net-pci,netdev=net0,romfile="};
  if (std::getenv("FLEET_BENCH_PEER_NODE_SERIAL") != nullptr) {
    // The node's virtio-serial layout: 32 ports possible, a second port.
    for (std::string& a : po.argv) {
      if (a == "virtio-serial-pci,id=vser0") a += ",max_ports=32";
    }
    po.argv.insert(po.argv.end(),
                   {"-chardev", "socket,id=agent1,path=" + sock + "1,server=on,wait=off", "-device",
                    std::string("virtserialport,bus=vser0.0,chardev=agent1,name=") +
                        vm::proto::kPortPrefix + "1"});
  }
  if (std::getenv("FLEET_BENCH_PEER_CONFINED") != nullptr) {
    // The node's confinement (-runas, -sandbox) on the peer too, to tell
    // its cost from the driver's.
    for (std::string& a : vm::QemuConfinementArgs()) po.argv.push_back(std::move(a));
  }
  po.timeout = std::chrono::seconds(600);
  int64_t t0 = env.MonotonicMicros();
  std::atomic<bool> exited{false};
  std::thread qemu([&] {
    (void)env.RunProcess(po);
    exited = true;
  });
  auto client = vm::AgentClient::Connect(sock, vm::MonotonicNowUs() + 30000000);
  double ready = -1;
  if (client.ok()) {
    auto hello = (*client)->WaitReady(vm::MonotonicNowUs() + 600000000, nullptr,
                                      [&] { return !exited.load(); });
    if (hello.ok()) {
      ready = static_cast<double>(env.MonotonicMicros() - t0) / 1e6;
      std::printf("peer guest uptime at ready %.2f\n",
                  static_cast<double>(hello->guest_uptime_ms) / 1000.0);
    }
    (void)(*client)->PowerOff(vm::MonotonicNowUs() + 5000000);
  }
  qemu.join();
  (void)env.RemoveAll(sock);
  (void)env.RemoveAll(sock + "1");
  if (ready < 0) return Fail(InternalError("the peer's agent never answered"));
  std::printf("peer ready %.2f s\n", ready);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: fleet_bench disk CACHE OUT | node DISK DIR | peer DISK DIR\n");
    return 2;
  }
  std::string mode = argv[1];
  if (mode == "disk") return MakeDisk(argv[2], argv[3]);
  if (mode == "node") return Node(argv[2], argv[3]);
  if (mode == "peer") return Peer(argv[2], argv[3]);
  std::fprintf(stderr, "fleet_bench: unknown mode %s\n", mode.c_str());
  return 2;
}
