// The qemu runner against real qemu: a disk that cannot boot must fail
// within the ready timeout, with the console's tail, and leave no qemu.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <thread>

#include "base/env.h"
#include "base/strings.h"
#include "vm/boot_watch.h"
#include "vm/overlay.h"
#include "vm/qemu_vm.h"

namespace imagesmith::vm {
namespace {

std::string TempDir() {
  char t[] = "/var/tmp/imagesmith-vm-test-XXXXXX";
  if (::mkdtemp(t) == nullptr) std::abort();
  return t;
}

Status Sh(const std::string& script) {
  ProcessOptions o;
  o.argv = {"/bin/sh", "-ec", script};
  o.timeout = std::chrono::seconds(60);
  auto r = Env::Default()->RunProcess(o);
  if (!r.ok()) return r.status();
  if (!r->success()) return InternalError(r->Describe() + ": " + r->stderr_data);
  return Status::Ok();
}

// A disk in imagesmith's layout (an ext4 root with /boot/grub/grub.cfg at
// LBA 135168) but with no boot code at all: the firmware finds nothing.
// `tree_setup` runs in the tree's directory before the file system is made.
std::string UnbootableDisk(const std::string& dir, const std::string& tree_setup = "true") {
  std::string disk = dir + "/unbootable.raw";
  Status s = Sh("rm -rf " + dir + "/tree " + dir + "/root.ext4 " + disk + " && mkdir -p " + dir +
                "/tree/boot/grub " + dir + "/tree/usr/local/lib " + dir +
                "/tree/etc/systemd/system && (cd " + dir + "/tree && " + tree_setup +
                ") && printf 'set timeout=1\\nlinux /vmlinuz "
                "root=UUID=x ro console=tty0 console=ttyS0,115200n8\\n' > " +
                dir + "/tree/boot/grub/grub.cfg && mke2fs -q -t ext4 -d " + dir + "/tree " + dir +
                "/root.ext4 64M && truncate -s 200M " + disk + " && dd if=" + dir +
                "/root.ext4 of=" + disk + " bs=512 seek=135168 conv=notrunc,sparse status=none");
  EXPECT_TRUE(s.ok()) << s.ToString();
  return disk;
}

bool Alive(const std::string& pidfile) {
  auto p = Env::Default()->ReadFile(pidfile, 64);
  if (!p.ok()) return false;
  int pid = std::atoi(p->c_str());
  return pid > 1 && ::kill(pid, 0) == 0;
}

class VmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("IMAGESMITH_AGENT", IMAGESMITH_AGENT_BINARY, 1);
    dir_ = TempDir();
  }
  void TearDown() override { (void)Env::Default()->RemoveAll(dir_); }
  std::string dir_;
};

TEST_F(VmTest, DiskThatCannotBootFailsWithinTheReadyTimeoutWithTheConsoleTail) {
  for (Firmware fw : {Firmware::kBios, Firmware::kUefi}) {
    std::string work = dir_ + (fw == Firmware::kBios ? "/bios" : "/uefi");
    ASSERT_TRUE(Env::Default()->CreateDirs(work).ok());
    VmConfig c;
    c.disk = UnbootableDisk(dir_);
    c.firmware = fw;
    c.work_dir = work;
    c.ready_timeout = std::chrono::seconds(20);
    c.network = false;
    int64_t t0 = Env::Default()->MonotonicMicros();
    auto vm = Vm::Start(*Env::Default(), c);
    double took = static_cast<double>(Env::Default()->MonotonicMicros() - t0) / 1e6;
    ASSERT_FALSE(vm.ok());
    EXPECT_EQ(vm.status().code(), StatusCode::kDeadlineExceeded) << vm.status().ToString();
    EXPECT_NE(vm.status().message().find("the guest never became ready"), std::string::npos)
        << vm.status().message();
    EXPECT_NE(vm.status().message().find("last lines of the serial console"), std::string::npos);
    // Bounded: the 20 s ready timeout plus the overlay and the kill.
    EXPECT_LT(took, 35.0) << vm.status().message();
    EXPECT_FALSE(Alive(work + "/qemu.pid")) << "qemu outlived the failed start";
  }
}

TEST_F(VmTest, DiskWithoutImagesmithsLayoutIsRefusedBeforeQemuStarts) {
  std::string disk = dir_ + "/zeros.raw";
  ASSERT_TRUE(Sh("truncate -s 100M " + disk).ok());
  VmConfig c;
  c.disk = disk;
  c.work_dir = dir_;
  auto vm = Vm::Start(*Env::Default(), c);
  ASSERT_FALSE(vm.ok());
  EXPECT_EQ(vm.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(vm.status().message().find(disk), std::string::npos) << vm.status().message();
  EXPECT_FALSE(Env::Default()->FileExists(dir_ + "/qemu.pid"));
  EXPECT_FALSE(Env::Default()->FileExists(dir_ + "/overlay.qcow2"));
}

// The KVM verdict is kept per boot and qemu binary: a cached answer is used
// as it is (even a planted, wrong one: that proves it was not probed again),
// and one for another boot, or a damaged file, is probed again and replaced.
TEST_F(VmTest, AccelVerdictIsCachedForThisBootAndQemuOnly) {
  const char* forced = std::getenv("IMAGESMITH_VM_ACCEL");
  std::string saved = forced != nullptr ? forced : "";
  ::unsetenv("IMAGESMITH_VM_ACCEL");
  Env& env = *Env::Default();
  std::string cache = dir_ + "/cache/vm-accel.json";
  std::string why;
  Accel probed = ProbeAccelUncached(env, &why, cache);
  auto text = env.ReadFile(cache, 1 << 16);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto boot = env.ReadFile("/proc/sys/kernel/random/boot_id", 256);
  ASSERT_TRUE(boot.ok());
  std::string boot_id(TrimWhitespace(*boot));
  EXPECT_NE(text->find(boot_id), std::string::npos) << *text;
  EXPECT_NE(text->find("qemu-system-x86_64 size "), std::string::npos) << *text;
  EXPECT_NE(text->find(std::string("\"accel\": \"") + AccelName(probed) + "\""), std::string::npos)
      << *text;

  Accel other = probed == Accel::kKvm ? Accel::kTcg : Accel::kKvm;
  auto plant = [&](const std::string& from, const std::string& to) {
    std::string t = *text;
    size_t at = t.find(from);
    ASSERT_NE(at, std::string::npos) << from << " in " << t;
    t.replace(at, from.size(), to);
    ASSERT_TRUE(env.WriteFileAtomic(cache, t).ok());
  };
  std::string accel_field = std::string("\"accel\": \"") + AccelName(probed) + "\"";
  std::string planted_field = std::string("\"accel\": \"") + AccelName(other) + "\"";
  plant(accel_field, planted_field);
  EXPECT_EQ(ProbeAccelUncached(env, &why, cache), other);
  EXPECT_NE(why.find("cached in " + cache), std::string::npos) << why;

  // Another boot's verdict is not used, and is replaced by this boot's.
  text = env.ReadFile(cache, 1 << 16);
  ASSERT_TRUE(text.ok());
  plant(boot_id, "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(ProbeAccelUncached(env, &why, cache), probed);
  EXPECT_EQ(why.find("cached in"), std::string::npos) << why;
  text = env.ReadFile(cache, 1 << 16);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find(boot_id), std::string::npos) << *text;

  // A damaged file is probed over.
  ASSERT_TRUE(env.WriteFileAtomic(cache, "{\"key\": ").ok());
  EXPECT_EQ(ProbeAccelUncached(env, &why, cache), probed);
  text = env.ReadFile(cache, 1 << 16);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find(accel_field), std::string::npos) << *text;
  if (!saved.empty()) ::setenv("IMAGESMITH_VM_ACCEL", saved.c_str(), 1);
}

// qemu-img resolves a relative backing file against the overlay's
// directory; the overlay must still find a disk named relative to the
// working directory.
TEST_F(VmTest, OverlayOfADiskNamedByARelativePath) {
  std::string disk = UnbootableDisk(dir_);
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(dir_.c_str()), 0);
  ASSERT_TRUE(Env::Default()->CreateDirs(dir_ + "/work").ok());
  OverlaySpec os;
  os.disk = "unbootable.raw";
  os.overlay = dir_ + "/work/overlay.qcow2";
  os.agent_binary = IMAGESMITH_AGENT_BINARY;
  os.scratch_dir = dir_ + "/work";
  Status made = MakeAgentOverlay(*Env::Default(), os);
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(made.ok()) << made.ToString();
  ProcessOptions info;
  info.argv = {"qemu-img", "info", "--backing-chain", "--output=json", os.overlay};
  info.timeout = std::chrono::seconds(30);
  auto r = Env::Default()->RunProcess(info);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->success()) << r->stderr_data;
  EXPECT_NE(r->stdout_data.find("\"backing-filename\": \"" + disk + "\""), std::string::npos)
      << r->stdout_data;
}

std::string Debugfs(const std::string& image, const std::string& request) {
  ProcessOptions o;
  o.argv = {"debugfs", "-R", request, image + "?offset=" + std::to_string(135168 * 512)};
  o.timeout = std::chrono::seconds(30);
  auto r = Env::Default()->RunProcess(o);
  return r.ok() ? r->stdout_data : "";
}

// Under TCG the overlay gets SSH host keys made on the host, but only for an
// image that has an OpenSSH server and no keys (it would make them on first
// boot); the disk itself never gets them.
TEST_F(VmTest, SshHostKeysGoIntoTheOverlayOnlyWhenTheImageHasNone) {
  Env& env = *Env::Default();
  auto keys = SshHostKeysForValidation(env, dir_ + "/cache/keys");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  auto pub = env.ReadFile(*keys + "/ssh_host_ed25519_key.pub", 4096);
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(pub->rfind("ssh-ed25519 ", 0), 0u) << *pub;
  auto again = SshHostKeysForValidation(env, dir_ + "/cache/keys");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*env.ReadFile(*again + "/ssh_host_ed25519_key.pub", 4096), *pub) << "not reused";

  auto overlay_with = [&](const std::string& tree_setup, bool* placed) {
    std::string disk = UnbootableDisk(dir_, tree_setup);
    std::string work = dir_ + "/work";
    (void)env.RemoveAll(work);
    EXPECT_TRUE(env.CreateDirs(work).ok());
    OverlaySpec os;
    os.disk = disk;
    os.overlay = work + "/overlay.qcow2";
    os.agent_binary = IMAGESMITH_AGENT_BINARY;
    os.scratch_dir = work;
    os.ssh_host_keys_dir = *keys;
    os.ssh_host_keys_placed = placed;
    Status made = MakeAgentOverlay(env, os);
    EXPECT_TRUE(made.ok()) << made.ToString();
    EXPECT_TRUE(Sh("qemu-img convert -O raw " + os.overlay + " " + work + "/flat.raw").ok());
    return std::pair(disk, work + "/flat.raw");
  };

  bool placed = false;
  auto [disk, flat] = overlay_with("mkdir -p etc/ssh && touch etc/ssh/sshd_config", &placed);
  EXPECT_TRUE(placed);
  EXPECT_EQ(Debugfs(flat, "cat /etc/ssh/ssh_host_ed25519_key.pub"), *pub);
  EXPECT_NE(Debugfs(flat, "stat /etc/ssh/ssh_host_rsa_key").find("Mode:  0600"), std::string::npos);
  EXPECT_NE(Debugfs(flat, "stat /etc/ssh/ssh_host_rsa_key.pub").find("Mode:  0644"),
            std::string::npos);
  EXPECT_EQ(Debugfs(disk, "ls /etc/ssh").find("ssh_host_"), std::string::npos)
      << "the image itself was written";

  // Its own keys: left alone. No OpenSSH server: nothing placed.
  placed = true;
  auto [own_disk, own_flat] = overlay_with(
      "mkdir -p etc/ssh && touch etc/ssh/sshd_config && echo mine > "
      "etc/ssh/ssh_host_ed25519_key.pub",
      &placed);
  EXPECT_FALSE(placed);
  EXPECT_EQ(Debugfs(own_flat, "cat /etc/ssh/ssh_host_ed25519_key.pub"), "mine\n");
  placed = true;
  overlay_with("true", &placed);
  EXPECT_FALSE(placed);
}

// The watch reads how far a boot got from qemu's monitor: a guest that sits
// in its firmware after the console showed GRUB's "Booting" line counts as
// stalled before its kernel once the limit has passed, and the description
// gives the instruction pointers it saw.
TEST_F(VmTest, BootWatchTellsAGuestThatNeverReachesItsKernel) {
  Env& env = *Env::Default();
  std::string qmp = dir_ + "/qmp.sock";
  std::string console = dir_ + "/console.log";
  ASSERT_TRUE(
      env.WriteFileAtomic(console, "Welcome to GRUB!\n  Booting `Debian GNU/Linux'\n").ok());
  ProcessOptions o;
  // SeaBIOS with no disk: it never loads anything, let alone a kernel.
  o.argv = {"setpriv",
            "--pdeathsig",
            "KILL",
            "--",
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-nodefaults",
            "-display",
            "none",
            "-m",
            "32",
            "-qmp",
            "unix:" + qmp + ",server=on,wait=off"};
  o.timeout = std::chrono::seconds(30);
  int64_t started = env.MonotonicMicros();
  std::thread qemu([&] { (void)env.RunProcess(o); });
  BootWatch watch(env, qmp, console, started);
  while (env.MonotonicMicros() - started < 6000000) {
    watch.Poll(std::chrono::milliseconds(500));
    env.SleepFor(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(watch.bootloader_done());
  EXPECT_FALSE(watch.kernel_started()) << watch.timeline();
  EXPECT_FALSE(watch.last_registers().empty());
  EXPECT_NE(watch.timeline().find(" s: "), std::string::npos) << watch.timeline();
  EXPECT_TRUE(watch.StalledBeforeKernel(env.MonotonicMicros(), std::chrono::seconds(2)));
  EXPECT_FALSE(watch.StalledBeforeKernel(env.MonotonicMicros(), std::chrono::seconds(60)));
  EXPECT_NE(watch.Describe().find("no vCPU was ever seen in the kernel"), std::string::npos)
      << watch.Describe();
  (void)Sh("pkill -KILL -f 'unix:" + qmp + "'");
  qemu.join();
}

// IMAGESMITH_VM_ACCEL=kvm on a host where KVM fails real guests (qemu dies,
// or the guest never reaches its kernel): the VM is restarted once under
// TCG, and the first attempt's console is kept. This disk cannot boot at
// all, so TCG does not reach a kernel either: the error is the image's, and
// the host's verdict is not changed to TCG for it.
TEST_F(VmTest, ForcedKvmThatFailsIsRetriedOnceUnderTcg) {
  const char* forced = std::getenv("IMAGESMITH_VM_ACCEL");
  std::string saved = forced != nullptr ? forced : "";
  ::setenv("IMAGESMITH_VM_ACCEL", "kvm", 1);
  std::string work = dir_ + "/work";
  ASSERT_TRUE(Env::Default()->CreateDirs(work).ok());
  VmConfig c;
  c.disk = UnbootableDisk(dir_);
  c.firmware = Firmware::kUefi;
  c.work_dir = work;
  c.ready_timeout = std::chrono::seconds(15);
  c.network = false;
  std::vector<std::string> said;
  c.progress = [&](std::string_view l) { said.emplace_back(l); };
  auto vm = Vm::Start(*Env::Default(), c);
  if (!saved.empty()) {
    ::setenv("IMAGESMITH_VM_ACCEL", saved.c_str(), 1);
  } else {
    ::unsetenv("IMAGESMITH_VM_ACCEL");
  }
  ASSERT_FALSE(vm.ok());
  std::string all = Join(said, "\n");
  EXPECT_NE(all.find("accelerator: kvm"), std::string::npos) << all;
  EXPECT_NE(all.find("restarting the VM once, under tcg: the guest did not reach its kernel "
                     "under KVM"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("-accel tcg"), std::string::npos) << all;
  EXPECT_EQ(all.find("accelerator verdict changed"), std::string::npos) << all;
  EXPECT_TRUE(Env::Default()->FileExists(work + "/console-attempt1.log"));
  EXPECT_FALSE(Alive(work + "/qemu.pid")) << "qemu outlived the failed start";
}

TEST_F(VmTest, MissingAgentBinaryIsAClearError) {
  ::setenv("IMAGESMITH_AGENT", (dir_ + "/nope").c_str(), 1);
  auto p = FindAgentBinary(*Env::Default());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_NE(p.status().message().find(dir_ + "/nope"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith::vm

namespace imagesmith::vm {
namespace {

// The line "<key>:\t<value>" of /proc/<pid>/status, or "".
std::string ProcStatus(int pid, const std::string& key) {
  auto s = Env::Default()->ReadFile("/proc/" + std::to_string(pid) + "/status", 1 << 16);
  if (!s.ok()) return "";
  size_t at = s->find("\n" + key + ":");
  if (at == std::string::npos) return "";
  size_t start = s->find_first_not_of(" \t", at + key.size() + 2);
  return s->substr(start, s->find('\n', start) - start);
}

// A validation VM's qemu, started by imagesmith as root, runs the guest as
// an unprivileged user with no capabilities, no_new_privs and qemu's seccomp
// filter: a guest that breaks out of qemu gets none of root's rights.
TEST_F(VmTest, QemuRunsTheGuestAsAnUnprivilegedConfinedUser) {
  VmConfig c;
  c.disk = UnbootableDisk(dir_);
  c.firmware = Firmware::kBios;
  c.work_dir = dir_ + "/work";
  ASSERT_TRUE(Env::Default()->CreateDirs(c.work_dir).ok());
  c.ready_timeout = std::chrono::seconds(20);
  c.network = false;
  std::thread start([&] { (void)Vm::Start(*Env::Default(), c); });
  int pid = 0;
  std::string uid, caps, nnp, seccomp;
  for (int i = 0; i < 150 && uid.empty(); ++i) {
    Env::Default()->SleepFor(std::chrono::milliseconds(100));
    auto p = Env::Default()->ReadFile(c.work_dir + "/qemu.pid", 64);
    if (!p.ok() || (pid = std::atoi(p->c_str())) <= 1) continue;
    Env::Default()->SleepFor(std::chrono::milliseconds(500));  // past -runas
    uid = ProcStatus(pid, "Uid");
    caps = ProcStatus(pid, "CapEff");
    nnp = ProcStatus(pid, "NoNewPrivs");
    seccomp = ProcStatus(pid, "Seccomp");
  }
  start.join();
  ASSERT_FALSE(uid.empty()) << "qemu's pid file never appeared";
  EXPECT_EQ(uid.find("0\t"), std::string::npos) << "qemu still has uid 0: " << uid;
  EXPECT_EQ(caps, "0000000000000000");
  EXPECT_EQ(nnp, "1");
  EXPECT_EQ(seccomp, "2");  // a filter is installed
}

}  // namespace
}  // namespace imagesmith::vm
