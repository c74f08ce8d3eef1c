#include "catalog/boot_disk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/sha256.h"
#include "base/strings.h"
#include "catalog/test_util.h"

namespace imagesmith::catalog {
namespace {

using testing::Put;
using testing::TempDir;

BootConfig FixedConfig() {
  BootConfig c;
  c.generation = Generation::kV1;
  c.root_uuid = "0c3a6a3e-5f0b-4b8e-9d2c-1f2e3d4c5b6a";
  c.esp_volume_id = "7cd26817";
  c.hostname = "img1";
  c.kernel_cmdline_extra = "net.ifnames=0";
  return c;
}

std::string ReadAt(const std::string& path, uint64_t offset, size_t n) {
  std::string buf(n, '\0');
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::pread(fd, buf.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  ::close(fd);
  return buf;
}

uint64_t Le64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}

std::string RunTool(const std::vector<std::string>& argv, int* exit_code = nullptr) {
  ProcessOptions o;
  o.argv = argv;
  auto r = Env::Default()->RunProcess(o);
  EXPECT_TRUE(r.ok());
  if (exit_code != nullptr) *exit_code = r->exit_code;
  return r->stdout_data + r->stderr_data;
}

// A tiny stand-in for a Debian tree: enough for mke2fs and the checks.
void MakeTinyTree(const std::string& dir) {
  Put(dir + "/boot/vmlinuz-6.1.0-1-cloud-amd64", "kernel");
  Put(dir + "/boot/initrd.img-6.1.0-1-cloud-amd64", "initrd");
  ASSERT_EQ(::symlink("boot/vmlinuz-6.1.0-1-cloud-amd64", (dir + "/vmlinuz").c_str()), 0);
  ASSERT_EQ(::symlink("boot/initrd.img-6.1.0-1-cloud-amd64", (dir + "/initrd.img").c_str()), 0);
  Put(dir + "/etc/hostname", "builder\n");
}

TEST(NewBootConfig, MakesValidFreshIdentifiers) {
  BootConfig a = NewBootConfig(Generation::kV2);
  BootConfig b = NewBootConfig(Generation::kV2);
  EXPECT_TRUE(ValidateBootConfig(a).ok()) << ValidateBootConfig(a).ToString();
  EXPECT_EQ(a.generation, Generation::kV2);
  EXPECT_EQ(a.root_uuid[14], '4');
  EXPECT_NE(a.root_uuid, b.root_uuid);
  EXPECT_NE(a.esp_volume_id, b.esp_volume_id);
}

TEST(ValidateBootConfig, RejectsWhatGrubCfgCannotCarry) {
  BootConfig c = FixedConfig();
  c.root_uuid = "0C3A6A3E-5F0B-4B8E-9D2C-1F2E3D4C5B6A";
  EXPECT_EQ(ValidateBootConfig(c).code(), StatusCode::kInvalidArgument);
  c = FixedConfig();
  c.esp_volume_id = "7cd2-6817";
  EXPECT_EQ(ValidateBootConfig(c).code(), StatusCode::kInvalidArgument);
  c = FixedConfig();
  c.kernel_cmdline_extra = "quiet\"; reboot";
  EXPECT_EQ(ValidateBootConfig(c).code(), StatusCode::kInvalidArgument);
  c = FixedConfig();
  c.hostname = "bad_name";
  EXPECT_EQ(ValidateBootConfig(c).code(), StatusCode::kInvalidArgument);
}

TEST(WriteBootFiles, WritesRootByUuidIntoAnEmptyDirectory) {
  TempDir dir;
  BootConfig c = FixedConfig();
  ASSERT_TRUE(WriteBootFiles(*Env::Default(), c, dir.path()).ok());
  Env& env = *Env::Default();
  std::string fstab = *env.ReadFile(dir.File("etc/fstab"), 1 << 20);
  EXPECT_NE(fstab.find("UUID=" + c.root_uuid + " /          ext4"), std::string::npos) << fstab;
  EXPECT_NE(fstab.find("UUID=7CD2-6817"), std::string::npos) << fstab;
  std::string cfg = *env.ReadFile(dir.File("boot/grub/grub.cfg"), 1 << 20);
  EXPECT_NE(cfg.find("search --no-floppy --fs-uuid --set=root " + c.root_uuid), std::string::npos);
  EXPECT_NE(cfg.find("linux /vmlinuz root=UUID=" + c.root_uuid +
                     " ro console=tty0 console=ttyS0,115200n8 net.ifnames=0"),
            std::string::npos)
      << cfg;
  std::string def = *env.ReadFile(dir.File("etc/default/grub.d/imagesmith.cfg"), 1 << 20);
  EXPECT_NE(def.find("GRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200n8 net.ifnames=0\""),
            std::string::npos)
      << def;
  EXPECT_EQ(*env.ReadFile(dir.File("etc/machine-id"), 1), "");
  EXPECT_EQ(*env.ReadFile(dir.File("etc/hostname"), 100), "img1\n");
  EXPECT_TRUE(env.FileExists(dir.File("boot/grub/i386-pc/normal.mod")));
  EXPECT_TRUE(env.FileExists(dir.File("boot/grub/i386-pc/command.lst")));
  EXPECT_TRUE(env.FileExists(dir.File("boot/grub/x86_64-efi/normal.mod")));
  EXPECT_TRUE(env.IsDirectory(dir.File("boot/efi")));
}

TEST(RootFsCommand, NamesTheTreeByPlaceholder) {
  BootConfig c = FixedConfig();
  c.timestamp = 1700000000;
  std::vector<std::string> argv = RootFsCommand(c, "/w/root.img", (1ull << 30) + 123);
  ASSERT_EQ(argv.size(), 9u);
  EXPECT_EQ(argv[0], "/bin/sh");
  EXPECT_NE(argv[2].find("MKE2FS_CONFIG=$tree/etc/mke2fs.conf"), std::string::npos) << argv[2];
  EXPECT_NE(argv[2].find("hash_seed=$uuid"), std::string::npos) << argv[2];
  EXPECT_EQ(std::vector<std::string>(argv.begin() + 4, argv.end()),
            (std::vector<std::string>{"{tree}", "/w/root.img", "1048576k",
                                      "0c3a6a3e-5f0b-4b8e-9d2c-1f2e3d4c5b6a", "1700000000"}));
}

TEST(BootConfigJson, RoundTripsAndNamesTheBadField) {
  BootConfig c = FixedConfig();
  c.generation = Generation::kV2;
  c.timestamp = 1700000000;
  auto back = BootConfigFromJson(BootConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(BootConfigToJson(*back).Dump(), BootConfigToJson(c).Dump());
  Json bad = BootConfigToJson(c);
  bad.Set("rootUuid", Json::String("nope"));
  auto s = BootConfigFromJson(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("root_uuid"), std::string::npos) << s.status().ToString();
  bad = BootConfigToJson(c);
  bad.Set("timestamp", Json::String("yesterday"));
  s = BootConfigFromJson(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("timestamp"), std::string::npos) << s.status().ToString();
}

std::string DigestOf(const std::string& path) {
  auto data = Env::Default()->ReadFile(path, 1ull << 30);
  EXPECT_TRUE(data.ok());
  return Sha256Of(*data).ToHex();
}

// The same tree (contents, owners, modes, mtimes) and config give the same
// bytes, although the trees' ctimes, atimes and directory order differ and
// the two disks are made at different times: what lets the store make a
// published image's disk again from its tree.
TEST(MakeBootableDisk, SameTreeAndConfigGiveTheSameBytes) {
  TempDir dir;
  BootConfig c = FixedConfig();
  c.timestamp = 1700000000;
  std::vector<std::string> digests;
  for (int round = 0; round < 2; ++round) {
    const std::string tree = dir.File("tree" + std::to_string(round));
    MakeTinyTree(tree);
    // Files created in a different order each round, some names that need
    // quoting for debugfs.
    std::vector<std::string> names = {"a", "b c", "d\"e", "f'g", "h"};
    if (round == 1) std::reverse(names.begin(), names.end());
    for (const std::string& n : names) Put(tree + "/srv/" + n, "content of " + n);
    ASSERT_EQ(::mkfifo((tree + "/srv/fifo").c_str(), 0600), 0);
    ASSERT_EQ(::link((tree + "/srv/a").c_str(), (tree + "/srv/a-link").c_str()), 0);
    // The same mtimes in both trees (WriteBootFiles writes files now).
    ASSERT_TRUE(WriteBootFiles(*Env::Default(), c, tree).ok());
    ASSERT_EQ(RunTool({"find", tree, "-exec", "touch", "-h", "-d", "@1600000000", "{}", "+"}), "");
    const std::string root = dir.File("root" + std::to_string(round) + ".ext4");
    std::vector<std::string> argv = RootFsCommand(c, root, RootPartitionBytes(128ull << 20));
    for (std::string& a : argv) {
      if (a == kTreePlaceholder) a = tree;
    }
    int rc = -1;
    std::string out = RunTool(argv, &rc);
    ASSERT_EQ(rc, 0) << out;
    out = RunTool({"e2fsck", "-fn", root}, &rc);
    EXPECT_EQ(rc, 0) << out;
    const std::string disk = dir.File("disk" + std::to_string(round) + ".raw");
    Status s = AssembleDisk(*Env::Default(), c, root, 128ull << 20, disk);
    ASSERT_TRUE(s.ok()) << s.ToString();
    digests.push_back(DigestOf(disk));
    // The root, with its write counters zeroed, is still a clean ext4.
    out = RunTool({"e2fsck", "-fn", disk + "?offset=" + std::to_string(kRootStartLba * 512)}, &rc);
    EXPECT_EQ(rc, 0) << out;
    if (round == 0) ::sleep(2);  // FAT times have 2 s resolution
  }
  EXPECT_EQ(digests[0], digests[1]) << RunTool(
      {"sh", "-c",
       "cmp -l " + dir.File("disk0.raw") + " " + dir.File("disk1.raw") + " | head -n 20; cmp -l " +
           dir.File("disk0.raw") + " " + dir.File("disk1.raw") + " | wc -l"});
}

TEST(MakeBootableDisk, RefusesAFileNameWithANewline) {
  TempDir dir;
  const std::string tree = dir.File("tree");
  MakeTinyTree(tree);
  Put(tree + "/srv/two\nlines", "x");
  Status s =
      MakeBootableDisk(*Env::Default(), FixedConfig(), tree, 128ull << 20, dir.File("disk.raw"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("newline"), std::string::npos) << s.ToString();
  EXPECT_FALSE(Env::Default()->FileExists(dir.File("disk.raw")));
}

TEST(RootPartitionBytes, LeavesRoomForTheOtherPartitions) {
  EXPECT_EQ(kRootStartLba, 135168u);
  EXPECT_EQ(RootPartitionBytes(2ull << 30), (2048ull - 67) << 20);
  EXPECT_EQ(RootPartitionBytes(67ull << 20), 0u);
}

// Builds a real (tiny) disk with the real tools and checks every byte the
// BIOS and UEFI paths depend on. Booting is proven by catalog_e2e_test.
TEST(MakeBootableDisk, LaysOutGptBiosBootEspAndRoot) {
  TempDir dir;
  const std::string tree = dir.File("tree");
  MakeTinyTree(tree);
  const std::string disk = dir.File("disk.raw");
  BootConfig c = FixedConfig();
  const uint64_t size = 128ull << 20;
  Status s = MakeBootableDisk(*Env::Default(), c, tree, size, disk);
  ASSERT_TRUE(s.ok()) << s.ToString();

  struct stat st {};
  ASSERT_EQ(::stat(disk.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), size);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, size / 2) << "the disk should be sparse";

  int rc = -1;
  std::string verify = RunTool({"sgdisk", "-v", disk}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(verify.find("No problems found"), std::string::npos) << verify;
  std::string table = RunTool({"sgdisk", "-p", disk});
  EXPECT_NE(table.find("   1            2048            4095   1024.0 KiB  EF02  bios"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("   2            4096          135167   64.0 MiB    EF00  esp"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("   3          135168          260095   61.0 MiB    8300  root"),
            std::string::npos)
      << table;

  // MBR: boot.img's code, its two patched variables, and the protective
  // MBR's partition entry and signature kept.
  std::string mbr = ReadAt(disk, 0, 512);
  std::string boot_img = *Env::Default()->ReadFile("/usr/lib/grub/i386-pc/boot.img", 512);
  EXPECT_EQ(mbr.substr(0, 0x5c), boot_img.substr(0, 0x5c));
  EXPECT_EQ(Le64(mbr, 0x5c), 2048u);
  EXPECT_EQ(static_cast<uint8_t>(mbr[0x66]), 0x90);
  EXPECT_EQ(static_cast<uint8_t>(mbr[0x67]), 0x90);
  EXPECT_EQ(mbr.substr(0x68, 440 - 0x68), boot_img.substr(0x68, 440 - 0x68));
  EXPECT_EQ(static_cast<uint8_t>(mbr[446 + 4]), 0xEE);  // protective partition type
  EXPECT_EQ(static_cast<uint8_t>(mbr[510]), 0x55);
  EXPECT_EQ(static_cast<uint8_t>(mbr[511]), 0xAA);
  // core.img's blocklist points at the sector after diskboot.img.
  std::string diskboot = ReadAt(disk, 2048 * 512, 512);
  EXPECT_EQ(Le64(diskboot, 0x1f4), 2049u);
  EXPECT_GT(static_cast<uint16_t>(static_cast<uint8_t>(diskboot[0x1fc]) |
                                  (static_cast<uint8_t>(diskboot[0x1fd]) << 8)),
            0);
  // The ESP is FAT32 with the volume serial fstab names.
  std::string esp = ReadAt(disk, 4096 * 512, 512);
  EXPECT_EQ(esp.substr(0x52, 5), "FAT32");
  EXPECT_EQ(static_cast<uint8_t>(esp[0x43]), 0x17);  // serial 0x7cd26817, little-endian
  EXPECT_EQ(static_cast<uint8_t>(esp[0x46]), 0x7c);
  std::string dir_listing =
      RunTool({"mdir", "-i", disk + "@@" + std::to_string(4096 * 512), "::/EFI/BOOT"});
  EXPECT_NE(dir_listing.find("BOOTX64  EFI"), std::string::npos) << dir_listing;
  // The root is ext4 (magic 0xEF53) with the configured UUID.
  std::string sb = ReadAt(disk, 135168ull * 512 + 1024, 1024);
  EXPECT_EQ(static_cast<uint8_t>(sb[0x38]), 0x53);
  EXPECT_EQ(static_cast<uint8_t>(sb[0x39]), 0xEF);
  EXPECT_EQ(static_cast<uint8_t>(sb[0x68]), 0x0c);
  EXPECT_EQ(static_cast<uint8_t>(sb[0x69]), 0x3a);
  // No work files are left beside the output.
  auto names = Env::Default()->ListDir(dir.path());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"disk.raw", "tree"}));
}

TEST(AssembleDisk, TooSmallDiskLeavesNothingBehind) {
  TempDir dir;
  Put(dir.File("root.img"), std::string(4096, 'r'));
  ASSERT_EQ(::truncate(dir.File("root.img").c_str(), 100ll << 20), 0);
  Status s = AssembleDisk(*Env::Default(), FixedConfig(), dir.File("root.img"), 128ull << 20,
                          dir.File("disk.raw"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("it needs at least 175112192"), std::string::npos) << s.message();
  auto names = Env::Default()->ListDir(dir.path());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"root.img"}));
}

TEST(AssembleDisk, RejectsSizeThatIsNotWholeMiB) {
  TempDir dir;
  Put(dir.File("root.img"), "r");
  Status s = AssembleDisk(*Env::Default(), FixedConfig(), dir.File("root.img"),
                          (128ull << 20) + 512, dir.File("disk.raw"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

// Forwards to the real Env but makes one tool fail, as a broken or missing
// tool would.
class FailingToolEnv : public Env {
 public:
  explicit FailingToolEnv(std::string tool) : tool_(std::move(tool)) {}
  StatusOr<std::string> ReadFile(const std::string& p, uint64_t m) override {
    return base_.ReadFile(p, m);
  }
  Status WriteFileAtomic(const std::string& p, std::string_view d) override {
    return base_.WriteFileAtomic(p, d);
  }
  bool FileExists(const std::string& p) override { return base_.FileExists(p); }
  bool IsDirectory(const std::string& p) override { return base_.IsDirectory(p); }
  Status CreateDirs(const std::string& p) override { return base_.CreateDirs(p); }
  StatusOr<std::vector<std::string>> ListDir(const std::string& p) override {
    return base_.ListDir(p);
  }
  Status RemoveAll(const std::string& p) override { return base_.RemoveAll(p); }
  Status Rename(const std::string& a, const std::string& b) override { return base_.Rename(a, b); }
  int64_t NowMicros() override { return base_.NowMicros(); }
  int64_t MonotonicMicros() override { return base_.MonotonicMicros(); }
  void SleepFor(std::chrono::milliseconds d) override { base_.SleepFor(d); }
  StatusOr<ProcessResult> RunProcess(const ProcessOptions& options) override {
    if (options.argv.empty() || options.argv[0] != tool_) return base_.RunProcess(options);
    ProcessOptions o = options;
    o.argv = {"sh", "-c", "echo first >&2; echo 'disk full' >&2; exit 3"};
    return base_.RunProcess(o);
  }

 private:
  Env& base_ = *Env::Default();
  std::string tool_;
};

TEST(AssembleDisk, ToolFailureNamesTheToolAndCleansUp) {
  TempDir dir;
  Put(dir.File("root.img"), "r");
  FailingToolEnv env("mcopy");
  Status s =
      AssembleDisk(env, FixedConfig(), dir.File("root.img"), 128ull << 20, dir.File("disk.raw"));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "mcopy failed (exit status 3): first\ndisk full");
  auto names = Env::Default()->ListDir(dir.path());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"root.img"}));
}

TEST(MakeBootableDisk, TreeWithoutKernelIsAFailedPrecondition) {
  TempDir dir;
  Put(dir.File("tree/etc/hostname"), "x\n");
  Status s = MakeBootableDisk(*Env::Default(), FixedConfig(), dir.File("tree"), 128ull << 20,
                              dir.File("disk.raw"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("/vmlinuz"), std::string::npos);
}

TEST(DefaultDiskSize, IsWholeGiBAndAtLeastTwo) {
  TempDir dir;
  Put(dir.File("f"), std::string(1000, 'x'));
  auto n = DefaultDiskSize(*Env::Default(), dir.path());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2ull << 30);
}

}  // namespace
}  // namespace imagesmith::catalog
