// End-to-end: build the example template and boot the images it makes, with
// their own bootloaders (no -kernel), under qemu (TCG on machines without KVM).
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "base/json.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

// Boots `disk` on a throwaway snapshot and waits for a login prompt on the
// serial console. Returns the console output.
std::string BootToLogin(const std::string& disk, bool uefi, const std::string& dir) {
  std::string serial = dir + "/serial.log";
  std::string pidfile = dir + "/qemu.pid";
  // TCG explicitly: a /dev/kvm that does not work can make kvm:tcg hang instead of
  // falling back. (Probing KVM is the VM runner's job.)
  std::vector<std::string> argv = {"qemu-system-x86_64",
                                   "-accel",
                                   "tcg",
                                   "-m",
                                   "1024",
                                   "-display",
                                   "none",
                                   "-serial",
                                   "file:" + serial,
                                   "-pidfile",
                                   pidfile,
                                   "-nic",
                                   "none",
                                   "-drive",
                                   "file=" + disk + ",format=raw,if=virtio,snapshot=on"};
  if (uefi) {
    std::string vars = dir + "/OVMF_VARS.fd";
    auto v = Env::Default()->ReadFile("/usr/share/OVMF/OVMF_VARS.fd", 16 << 20);
    EXPECT_TRUE(v.ok() && Env::Default()->WriteFileAtomic(vars, *v).ok());
    argv.insert(argv.end(),
                {"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd",
                 "-drive", "if=pflash,format=raw,file=" + vars});
  }
  ProcessOptions o;
  o.argv = argv;
  o.timeout = std::chrono::seconds(300);
  std::thread qemu([o] { (void)Env::Default()->RunProcess(o); });
  std::string console;
  for (int i = 0; i < 1200; ++i) {
    console = ReadOrEmpty(serial);
    if (console.find("login:") != std::string::npos) break;
    Env::Default()->SleepFor(std::chrono::milliseconds(250));
  }
  std::string pid = ReadOrEmpty(pidfile);
  if (!pid.empty()) ::kill(std::stoi(pid), SIGKILL);
  qemu.join();
  return console;
}

// `debugfs -R "stat PATH"` on the root partition, through a read-only loop
// device at the partition's offset (no mount needed).
class RootFs {
 public:
  explicit RootFs(const std::string& disk) {
    ProcessOptions o;
    o.argv = {"losetup", "-f", "--show", "-r", "--offset", std::to_string(135168ull * 512), disk};
    auto r = Env::Default()->RunProcess(o);
    if (r.ok() && r->success()) loop_ = std::string(TrimWhitespace(r->stdout_data));
  }
  ~RootFs() {
    if (loop_.empty()) return;
    ProcessOptions o;
    o.argv = {"losetup", "-d", loop_};
    (void)Env::Default()->RunProcess(o);
  }
  bool ok() const { return !loop_.empty(); }
  std::string Debugfs(const std::string& cmd) const {
    ProcessOptions o;
    o.argv = {"debugfs", "-R", cmd, loop_};
    auto r = Env::Default()->RunProcess(o);
    return r.ok() ? r->stdout_data + r->stderr_data : "";
  }
  bool Exists(const std::string& path) const {
    return Debugfs("stat " + path).find("Inode:") != std::string::npos;
  }
  uint64_t Size(const std::string& path) const {
    std::string s = Debugfs("stat " + path);
    size_t at = s.find("Size: ");
    return at == std::string::npos ? UINT64_MAX : std::stoull(s.substr(at + 6));
  }

 private:
  std::string loop_;
};

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override { env_ = DataDirWithSharedCatalog(&home_); }
  std::map<std::string, std::string> env_;
  std::string home_;
};

TEST_F(ImageTest, ExampleBuildsAGeneralizedNginxImageThatBootsWithUefi) {
  CliResult r = RunCli({"build", "examples/debian12-nginx.json"}, SourceDir(), env_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok()) << r.out;
  const Json* last = t->Find("properties")->Find("lastRun");
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(t->Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
            "Succeeded");
  EXPECT_EQ(last->Find("hyperVGeneration")->string_value(), "V2");
  std::string disk = last->Find("disk")->string_value();

  // The VHD run output: fixed, a whole number of MiB, as Azure requires.
  CliResult runs = RunCli({"image-template", "show-runs", "-g", "imagesmith", "-n",
                           "debian12-nginx", "--output-name", "debian12-nginx-vhd"},
                          "", env_);
  ASSERT_EQ(runs.exit_code, 0) << runs.err;
  auto ro = ParseJson(runs.out);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(ro->Find("properties")->Find("provisioningState")->string_value(), "Succeeded");
  std::string vhd = ro->Find("properties")->Find("artifactUri")->string_value();
  ProcessOptions info;
  // A fixed VHD is a raw image with a footer, so qemu-img must be told.
  info.argv = {"qemu-img", "info", "-f", "vpc", "--output", "json", vhd};
  auto qi = Env::Default()->RunProcess(info);
  ASSERT_TRUE(qi.ok() && qi->success());
  auto qj = ParseJson(qi->stdout_data);
  ASSERT_TRUE(qj.ok());
  EXPECT_EQ(qj->Find("format")->string_value(), "vpc");
  EXPECT_EQ(*qj->Find("virtual-size")->AsInt64() % (1 << 20), 0);

  {
    RootFs root(disk);
    ASSERT_TRUE(root.ok());
    EXPECT_TRUE(root.Exists("/usr/sbin/nginx"));
    EXPECT_TRUE(root.Exists("/var/www/imagesmith/index.html"));
    EXPECT_TRUE(root.Exists("/etc/systemd/system/multi-user.target.wants/nginx.service"));
    // Generalized: no identity, no host keys, no leftovers.
    EXPECT_EQ(root.Size("/etc/machine-id"), 0u);
    EXPECT_FALSE(root.Exists("/etc/ssh/ssh_host_ed25519_key"));
    EXPECT_FALSE(root.Exists("/tmp/index.html"));
    EXPECT_FALSE(root.Exists("/usr/sbin/policy-rc.d"));
    std::string lists = root.Debugfs("ls /var/lib/apt/lists");
    EXPECT_EQ(lists.find("_Packages"), std::string::npos) << lists;
  }
  std::string console = BootToLogin(disk, true, MakeTempDir());
  EXPECT_NE(console.find("login:"), std::string::npos)
      << console.substr(console.size() > 3000 ? console.size() - 3000 : 0);
  EXPECT_NE(console.find("keys removed by generalization"), std::string::npos);
}

TEST_F(ImageTest, Gen1ImageBootsWithBios) {
  std::string dir = MakeTempDir();
  ASSERT_TRUE(Env::Default()
                  ->WriteFileAtomic(dir + "/gen1.json", R"({
  "type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2022-07-01",
  "location": "eastus",
  "properties": {
    "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
               "sku": "12", "version": "latest"},
    "customize": [{"type": "Shell", "name": "motd", "inline": ["echo built-by-imagesmith > /etc/motd"]}]
  }})")
                  .ok());
  CliResult r = RunCli({"build", "gen1.json"}, dir, env_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto t = ParseJson(r.out);
  ASSERT_TRUE(t.ok());
  const Json* last = t->Find("properties")->Find("lastRun");
  EXPECT_EQ(last->Find("hyperVGeneration")->string_value(), "V1");
  std::string console = BootToLogin(last->Find("disk")->string_value(), false, MakeTempDir());
  EXPECT_NE(console.find("login:"), std::string::npos);
  EXPECT_EQ(console.find("BdsDxe"), std::string::npos) << "booted with UEFI, not BIOS";
}

}  // namespace
}  // namespace imagesmith::e2e
