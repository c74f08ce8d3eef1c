// End-to-end: the real Debian 12 base built with mmdebstrap from the host's
// apt sources, turned into Gen1 and Gen2 disks, each booted in qemu (TCG,
// no -kernel: firmware -> GRUB on the disk -> kernel -> login prompt).
//
// The base is built once per cache: $IMAGESMITH_TEST_CACHE when set (CI
// points it at a fresh directory per run, so every run builds a new base and
// the tests share it), otherwise a temporary directory per test process.
// The disks and boots are never cached.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "base/strings.h"
#include "catalog/boot_disk.h"
#include "catalog/catalog.h"
#include "catalog/debian_base.h"
#include "catalog/test_util.h"

namespace imagesmith::catalog {
namespace {

using testing::TempDir;

// Boots take 30-80 s under TCG on a busy 2-core machine.
constexpr int kBootTimeoutSeconds = 200;

tmpl::PlatformImageSource Debian12(std::string sku) {
  tmpl::PlatformImageSource s;
  s.publisher = "Debian";
  s.offer = "debian-12";
  s.sku = std::move(sku);
  s.version = "latest";
  return s;
}

double SecondsSince(int64_t start) {
  return static_cast<double>(Env::Default()->MonotonicMicros() - start) / 1e6;
}

ProcessResult MustRun(const std::vector<std::string>& argv) {
  ProcessOptions o;
  o.argv = argv;
  o.timeout = std::chrono::minutes(5);
  auto r = Env::Default()->RunProcess(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return ProcessResult();
  EXPECT_TRUE(r->success()) << argv[0] << ": " << r->Describe() << "\n" << r->stderr_data;
  return *r;
}

// A qemu process group, killed (SIGKILL to the whole group) and reaped when
// the object goes away, so no qemu outlives a test, whatever it asserts.
// qemu also runs under timeout(1) in case this process itself dies.
class Qemu {
 public:
  explicit Qemu(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"timeout", "--kill-after=5",
                                     std::to_string(kBootTimeoutSeconds + 60),
                                     "qemu-system-x86_64"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::execvp(cargv[0], cargv.data());
      ::_exit(127);
    }
    if (pid_ > 0) ::setpgid(pid_, pid_);
  }
  ~Qemu() { Stop(); }
  Qemu(const Qemu&) = delete;
  Qemu& operator=(const Qemu&) = delete;

  bool started() const { return pid_ > 0; }
  // True while the child has not exited.
  bool Running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

struct BootResult {
  bool login = false;
  double seconds = 0;
  std::string log;
};

// Boots `disk` with SeaBIOS (kV1) or OVMF (kV2) and waits for "login:" on
// the serial console.
BootResult Boot(const std::string& disk, Generation generation, const std::string& work) {
  const std::string log = JoinPath(work, generation == Generation::kV1 ? "bios.log" : "uefi.log");
  std::vector<std::string> args = {"-accel",     "tcg",     "-m",         "1024",
                                   "-display",   "none",    "-monitor",   "none",
                                   "-no-reboot", "-serial", "file:" + log};
  if (generation == Generation::kV2) {
    const std::string vars = JoinPath(work, "OVMF_VARS.fd");
    MustRun({"cp", "/usr/share/OVMF/OVMF_VARS.fd", vars});
    args.insert(args.end(),
                {"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd",
                 "-drive", "if=pflash,format=raw,file=" + vars});
  }
  args.insert(args.end(), {"-drive", "file=" + disk + ",format=raw,if=virtio"});
  BootResult result;
  Env& env = *Env::Default();
  const int64_t start = env.MonotonicMicros();
  Qemu qemu(args);
  EXPECT_TRUE(qemu.started());
  while (SecondsSince(start) < kBootTimeoutSeconds) {
    auto text = env.ReadFile(log, 64 << 20);
    if (text.ok()) result.log = *text;
    if (result.log.find("login:") != std::string::npos) {
      result.login = true;
      break;
    }
    if (!qemu.Running()) break;
    env.SleepFor(std::chrono::milliseconds(500));
  }
  result.seconds = SecondsSince(start);
  qemu.Stop();
  return result;
}

class DebianBaseE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* shared = std::getenv("IMAGESMITH_TEST_CACHE");
    if (shared != nullptr && *shared != '\0') {
      cache_dir_ = new std::string(shared);
    } else {
      own_cache_ = new TempDir();
      cache_dir_ = new std::string(own_cache_->path());
    }
    Catalog catalog(*Env::Default(), *cache_dir_);
    const int64_t start = Env::Default()->MonotonicMicros();
    bool built = false;
    auto image = catalog.Ensure(Debian12("12"), [&built](std::string_view line) {
      built = true;
      std::cerr << "  mmdebstrap| " << line << "\n";
    });
    if (!image.ok()) {
      build_error_ = new std::string(image.status().ToString());
      return;
    }
    image_ = new BaseImage(*image);
    std::cout << "base " << image_->entry.Urn() << (built ? " built in " : " found in cache in ")
              << SecondsSince(start) << " s" << std::endl;
  }
  static void TearDownTestSuite() {
    delete image_;
    delete build_error_;
    delete cache_dir_;
    delete own_cache_;
    image_ = nullptr;
    build_error_ = nullptr;
    cache_dir_ = nullptr;
    own_cache_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(build_error_, nullptr) << *build_error_;
    ASSERT_NE(image_, nullptr);
  }

  // Copies the base tree (the cache stays untouched), makes a disk for
  // `generation`, checks it with qemu-img and sgdisk, and boots it.
  void MakeAndBoot(Generation generation) {
    TempDir work;
    const std::string tree = work.File("tree");
    MustRun({"cp", "-a", image_->rootfs_dir, tree});
    auto size = DefaultDiskSize(*Env::Default(), tree);
    ASSERT_TRUE(size.ok()) << size.status().ToString();
    BootConfig config = NewBootConfig(generation);
    const std::string disk = work.File("disk.raw");
    const int64_t start = Env::Default()->MonotonicMicros();
    Status s = MakeBootableDisk(*Env::Default(), config, tree, *size, disk);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::cout << "disk " << *size << " bytes assembled in " << SecondsSince(start) << " s"
              << std::endl;

    ProcessResult info = MustRun({"qemu-img", "info", "--output=json", disk});
    auto json = ParseJson(info.stdout_data);
    ASSERT_TRUE(json.ok()) << info.stdout_data;
    EXPECT_EQ(json->Find("format")->string_value(), "raw");
    EXPECT_EQ(json->Find("virtual-size")->AsInt64(), static_cast<int64_t>(*size));
    EXPECT_NE(MustRun({"sgdisk", "-v", disk}).stdout_data.find("No problems found"),
              std::string::npos);
    const std::string table = MustRun({"sgdisk", "-p", disk}).stdout_data;
    EXPECT_NE(table.find("EF02  bios"), std::string::npos) << table;
    EXPECT_NE(table.find("EF00  esp"), std::string::npos) << table;
    EXPECT_NE(table.find("8300  root"), std::string::npos) << table;

    // The root is named by UUID in grub.cfg and fstab.
    Env& env = *Env::Default();
    EXPECT_NE(env.ReadFile(work.File("tree/boot/grub/grub.cfg"), 1 << 20)
                  ->find("root=UUID=" + config.root_uuid),
              std::string::npos);
    EXPECT_NE(
        env.ReadFile(work.File("tree/etc/fstab"), 1 << 20)->find("UUID=" + config.root_uuid + " /"),
        std::string::npos);
    // The boot reads nothing from the tree copy: drop it before booting.
    ASSERT_TRUE(env.RemoveAll(tree).ok());

    BootResult boot = Boot(disk, generation, work.path());
    std::cout << GenerationName(generation)
              << " boot: " << (boot.login ? "login prompt after " : "no login prompt after ")
              << boot.seconds << " s" << std::endl;
    ASSERT_TRUE(boot.login) << "no \"login:\" on the serial console within " << kBootTimeoutSeconds
                            << " s; last output:\n"
                            << LastLines(boot.log, 40);
    // GRUB on the disk started the kernel with our command line (the UUID
    // was made after the base was built, so nothing in the initramfs knew it).
    EXPECT_NE(boot.log.find("root=UUID=" + config.root_uuid + " ro"), std::string::npos);
    EXPECT_NE(boot.log.find("Network Configuration"), std::string::npos)
        << "systemd-networkd did not start";
    if (generation == Generation::kV2) {
      EXPECT_NE(boot.log.find("BdsDxe: starting"), std::string::npos) << "not booted by OVMF";
    } else {
      EXPECT_EQ(boot.log.find("BdsDxe"), std::string::npos) << "booted by UEFI, not BIOS";
    }
  }

  static inline std::string* cache_dir_ = nullptr;
  static inline TempDir* own_cache_ = nullptr;
  static inline BaseImage* image_ = nullptr;
  static inline std::string* build_error_ = nullptr;
};

TEST_F(DebianBaseE2E, BaseIsCachedWithManifestAndNoDiskIdentity) {
  const Json& m = image_->manifest;
  EXPECT_EQ(m.Find("base")->string_value(), "debian-12");
  EXPECT_EQ(m.Find("version")->string_value(), image_->entry.version);
  EXPECT_EQ(m.Find("suite")->string_value(), "bookworm");
  EXPECT_TRUE(StartsWith(m.Find("kernel")->string_value(), "6.1."))
      << m.Find("kernel")->string_value();
  EXPECT_GT(*m.Find("treeBytes")->AsInt64(), 100 << 20);
  EXPECT_FALSE(m.Find("sources")->array_items().empty());
  std::vector<std::string> names;
  for (const Json& p : m.Find("packages")->array_items())
    names.push_back(p.Find("name")->string_value());
  for (const char* want : {"linux-image-cloud-amd64", "openssh-server", "systemd-sysv", "sudo",
                           "initramfs-tools", "systemd-resolved"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
  // Both skus share the tree, and the cache answers without building.
  Catalog catalog(*Env::Default(), *cache_dir_);
  auto gen2 = catalog.Ensure(Debian12("12-gen2"), [](std::string_view) {
    ADD_FAILURE() << "the cached base was built again";
  });
  ASSERT_TRUE(gen2.ok()) << gen2.status().ToString();
  EXPECT_EQ(gen2->rootfs_dir, image_->rootfs_dir);
  EXPECT_EQ(gen2->entry.generation, Generation::kV2);
  // The tree names no root filesystem: fstab and the initramfs config are
  // written per disk, and the initramfs is built for ext4 by type only.
  Env& env = *Env::Default();
  auto fstab = env.ReadFile(JoinPath(image_->rootfs_dir, "etc/fstab"), 1 << 20);
  ASSERT_TRUE(fstab.ok());
  EXPECT_EQ(fstab->find("UUID="), std::string::npos) << *fstab;
  EXPECT_EQ(*env.ReadFile(
                JoinPath(image_->rootfs_dir, "etc/initramfs-tools/conf.d/imagesmith-fstype"), 100),
            "FSTYPE=ext4\n");
  EXPECT_TRUE(env.FileExists(JoinPath(image_->rootfs_dir, "vmlinuz")));
  EXPECT_TRUE(env.FileExists(JoinPath(image_->rootfs_dir, "initrd.img")));
}

TEST_F(DebianBaseE2E, Gen1DiskBootsToLoginUnderSeaBios) { MakeAndBoot(Generation::kV1); }

TEST_F(DebianBaseE2E, Gen2DiskBootsToLoginUnderOvmf) { MakeAndBoot(Generation::kV2); }

}  // namespace
}  // namespace imagesmith::catalog

namespace imagesmith::catalog {
namespace {

// Mount points under `dir` in this process's mount namespace.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mounts");
  std::string device, point, rest;
  while (in >> device >> point && std::getline(in, rest)) {
    if (point.rfind(dir, 0) == 0) out.push_back(point);
  }
  return out;
}

// A template's buildTimeoutInMinutes covers building a missing base: Ensure
// stops mmdebstrap at the time it is given, keeps no version and no
// half-built tree, and leaves no mount of the killed build on the host.
TEST(CatalogTimeLimitE2E, EnsureStopsABaseBuildAtItsTimeLimitAndKeepsNothing) {
  TempDir dir;
  Catalog catalog(*Env::Default(), dir.path());
  std::vector<std::string> lines;
  auto image = catalog.Ensure(
      Debian12("12"), [&lines](std::string_view line) { lines.emplace_back(line); },
      std::chrono::seconds(12));
  ASSERT_FALSE(image.ok()) << "the base was built in less than 12 s; the limit was not exercised";
  EXPECT_EQ(image.status().code(), StatusCode::kDeadlineExceeded) << image.status().ToString();
  EXPECT_NE(image.status().message().find("stopped after 12 s"), std::string::npos)
      << image.status().message();
  EXPECT_FALSE(lines.empty());  // mmdebstrap did start
  EXPECT_TRUE(MountsUnder(dir.path()).empty());
  EXPECT_TRUE(catalog.CachedVersions("debian-12").empty());
  auto names = Env::Default()->ListDir(dir.File("debian-12"));
  ASSERT_TRUE(names.ok());
  for (const std::string& n : *names) EXPECT_EQ(n.rfind(".build-", 0), std::string::npos) << n;
}

}  // namespace
}  // namespace imagesmith::catalog
