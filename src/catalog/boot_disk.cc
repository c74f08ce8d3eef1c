#include "catalog/boot_disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>

#include "base/random.h"
#include "base/sha256.h"
#include "base/strings.h"
#include "catalog/debian_base.h"

namespace imagesmith::catalog {
namespace {

constexpr const char* kGrubPcDir = "/usr/lib/grub/i386-pc";
constexpr const char* kGrubEfiDir = "/usr/lib/grub/x86_64-efi";
constexpr const char* kConsoles = "console=tty0 console=ttyS0,115200n8";
constexpr const char* kSerialCommand =
    "serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1";
// Built into both core images, so GRUB reaches grub.cfg without probing.
constexpr const char* kCoreModules[] = {
    "part_gpt",   "part_msdos", "ext2", "fat",  "search", "search_fs_uuid", "normal",
    "configfile", "linux",      "echo", "test", "serial", "terminal"};
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kBiosBootSectors = kEspStartLba - kBiosBootStartLba;

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-'
             : !(std::isdigit(static_cast<unsigned char>(s[i])) || (s[i] >= 'a' && s[i] <= 'f'))) {
      return false;
    }
  }
  return true;
}

bool IsHostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (const std::string& label : Split(s, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

std::string KernelCmdline(const BootConfig& c) {
  std::string s = "root=UUID=" + c.root_uuid + " ro " + kConsoles;
  if (!c.kernel_cmdline_extra.empty()) s += " " + c.kernel_cmdline_extra;
  return s;
}

std::string GrubCfg(const BootConfig& c) {
  return "# Written by imagesmith. update-grub regenerates an equivalent file from\n"
         "# /etc/default/grub.d/imagesmith.cfg once GRUB's packages are installed.\n"
         "set timeout=1\n"
         "set default=0\n" +
         std::string(kSerialCommand) +
         "\n"
         "terminal_input serial console\n"
         "terminal_output serial console\n"
         "search --no-floppy --fs-uuid --set=root " +
         c.root_uuid +
         "\n"
         "menuentry 'Debian GNU/Linux' {\n"
         "    search --no-floppy --fs-uuid --set=root " +
         c.root_uuid +
         "\n"
         "    linux /vmlinuz " +
         KernelCmdline(c) +
         "\n"
         "    initrd /initrd.img\n"
         "}\n";
}

std::string EarlyCfg(const BootConfig& c) {
  return "search --no-floppy --fs-uuid --set=root " + c.root_uuid +
         "\nset prefix=($root)/boot/grub\n";
}

std::string DefaultGrub(const BootConfig& c) {
  std::string extra = c.kernel_cmdline_extra.empty() ? "" : " " + c.kernel_cmdline_extra;
  return "# Written by imagesmith: update-grub (grub-mkconfig) then produces a grub.cfg\n"
         "# equivalent to the one on the disk (serial and VGA console, root by UUID).\n"
         "GRUB_TIMEOUT=1\n"
         "GRUB_DISABLE_OS_PROBER=true\n"
         "GRUB_CMDLINE_LINUX_DEFAULT=\"\"\n"
         "GRUB_CMDLINE_LINUX=\"" +
         std::string(kConsoles) + extra +
         "\"\n"
         "GRUB_TERMINAL=\"serial console\"\n"
         "GRUB_SERIAL_COMMAND=\"" +
         kSerialCommand + "\"\n";
}

Status ToolError(std::string_view tool, const ProcessResult& r) {
  std::string msg = std::string(tool) + " failed (" + r.Describe() + ")";
  std::string tail = LastLines(r.stderr_data.empty() ? r.stdout_data : r.stderr_data, 5);
  if (!tail.empty()) msg += ": " + tail;
  return InternalError(msg);
}

Status RunTool(Env& env, std::vector<std::string> argv,
               std::map<std::string, std::string> extra_env = {}, ProcessResult* out = nullptr) {
  ProcessOptions opts;
  opts.argv = std::move(argv);
  opts.extra_env = std::move(extra_env);
  opts.timeout = std::chrono::minutes(20);
  auto r = env.RunProcess(opts);
  if (!r.ok()) return r.status().WithContext("starting " + opts.argv[0]);
  if (!r->success()) return ToolError(opts.argv[0], *r);
  if (out != nullptr) *out = std::move(r).value();
  return Status::Ok();
}

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status PWriteAll(int fd, const void* data, size_t n, uint64_t offset, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return ErrnoError("writing " + what, w < 0 ? errno : EIO);
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Copies `src` into `dst_fd` at `offset`, skipping the source's holes and
// all-zero blocks: the destination region is freshly truncated, so zeros
// are already there and stay unallocated.
Status SpliceSparse(const std::string& src, int dst_fd, uint64_t offset, const std::string& dst) {
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoError("opening " + src, errno);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) return ErrnoError("stat " + src, errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::string buf(kMiB, '\0');
  uint64_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(in.get(), static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;       // only a hole is left
      data = static_cast<off_t>(pos);  // no SEEK_DATA support: read everything
    }
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) hole = static_cast<off_t>(size);
    pos = static_cast<uint64_t>(data);
    const uint64_t end = static_cast<uint64_t>(hole);
    while (pos < end) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - pos));
      const ssize_t got = ::pread(in.get(), buf.data(), want, static_cast<off_t>(pos));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return ErrnoError("reading " + src, got < 0 ? errno : EIO);
      const size_t n = static_cast<size_t>(got);
      bool zero = true;
      for (size_t i = 0; i < n && zero; ++i) zero = buf[i] == '\0';
      if (!zero) RETURN_IF_ERROR(PWriteAll(dst_fd, buf.data(), n, offset + pos, dst));
      pos += n;
    }
  }
  return Status::Ok();
}

// CRC-32C (Castagnoli), reflected, without the final inversion: ext4's
// ext2fs_crc32c_le(seed, ...).
uint32_t Crc32cLe(uint32_t crc, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc;
}

uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Zeroes s_kbytes_written (the lifetime write counter) in the ext4 root's
// primary and backup superblocks, fixing their checksums. mke2fs and debugfs
// count what they wrote, which depends on how their writes were cached, so
// without this two makes of the same tree differ in those 8 bytes. Each
// superblock's checksum is verified before it is rewritten.
Status ZeroWriteCounters(int fd, uint64_t fs_offset, const std::string& what) {
  constexpr size_t kSbBytes = 1024;
  constexpr size_t kKbytesWritten = 0x178, kChecksum = 0x3FC, kBlockGroupNr = 0x5A;
  uint8_t sb[kSbBytes];
  auto read_sb = [&](uint64_t at) -> bool {
    return ::pread(fd, sb, kSbBytes, static_cast<off_t>(at)) == static_cast<ssize_t>(kSbBytes) &&
           sb[0x38] == 0x53 && sb[0x39] == 0xEF;
  };
  if (!read_sb(fs_offset + 1024)) return InternalError(what + ": no ext4 superblock in the root");
  const uint32_t blocks = Le32(sb + 0x04);
  const uint32_t first_data_block = Le32(sb + 0x14);
  const uint64_t block_bytes = 1024ull << Le32(sb + 0x18);
  const uint32_t per_group = Le32(sb + 0x20);
  const bool csum = (Le32(sb + 0x64) & 0x400) != 0;  // RO_COMPAT_METADATA_CSUM
  if (per_group == 0) return InternalError(what + ": root superblock has 0 blocks per group");
  const uint32_t groups = (blocks - first_data_block + per_group - 1) / per_group;
  for (uint32_t g = 0; g < groups; ++g) {
    const uint64_t at =
        g == 0 ? fs_offset + 1024
               : fs_offset + (first_data_block + uint64_t{g} * per_group) * block_bytes;
    if (!read_sb(at)) continue;  // no backup in this group
    if (g != 0 && (sb[kBlockGroupNr] | (sb[kBlockGroupNr + 1] << 8)) != static_cast<int>(g))
      continue;
    if (csum && Crc32cLe(~0u, sb, kChecksum) != Le32(sb + kChecksum)) {
      return InternalError(what + ": the root's superblock in group " + std::to_string(g) +
                           " has a bad checksum");
    }
    std::memset(sb + kKbytesWritten, 0, 8);
    if (csum) {
      const uint32_t c = Crc32cLe(~0u, sb, kChecksum);
      for (int i = 0; i < 4; ++i) sb[kChecksum + i] = static_cast<uint8_t>(c >> (8 * i));
    }
    RETURN_IF_ERROR(PWriteAll(fd, sb, kSbBytes, at, what));
  }
  return Status::Ok();
}

// A directory removed (with its contents) on scope exit.
class TempDir {
 public:
  TempDir(Env& env, std::string path) : env_(env), path_(std::move(path)) {}
  ~TempDir() {
    if (!path_.empty()) (void)env_.RemoveAll(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  Env& env_;
  std::string path_;
};

// A GUID for the GPT derived from the root filesystem's UUID, so a config
// always gives the same partition table: SHA-256("imagesmith-gpt:" + uuid +
// ":" + what), first 16 bytes, with the version 4 and variant bits set.
std::string DerivedGuid(const BootConfig& c, std::string_view what) {
  Sha256Digest d = Sha256Of("imagesmith-gpt:" + c.root_uuid + ":" + std::string(what));
  std::string hex = d.ToHex().substr(0, 32);
  hex[12] = '4';
  static constexpr char kVariant[] = "89ab";
  hex[16] = kVariant[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

StatusOr<std::string> MakeTempDirBeside(const std::string& path) {
  std::string templ = path + ".work.XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    return ErrnoError("creating a work directory beside " + path, errno);
  }
  return templ;
}

// Copies a file without fsync. The ~600 GRUB modules go into a tree that
// is imaged right away; Env::WriteFileAtomic's fsync per file cost seconds.
Status CopyFileUnsynced(const std::string& from, const std::string& to) {
  Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoError("opening " + from, errno);
  Fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) return ErrnoError("creating " + to, errno);
  char buf[65536];
  uint64_t offset = 0;
  for (;;) {
    const ssize_t n = ::read(in.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("reading " + from, errno);
    if (n == 0) break;
    RETURN_IF_ERROR(PWriteAll(out.get(), buf, static_cast<size_t>(n), offset, to));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status CopyGrubModules(Env& env, const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(env.CreateDirs(to));
  ASSIGN_OR_RETURN(std::vector<std::string> names, env.ListDir(from));
  for (const std::string& name : names) {
    if (!EndsWith(name, ".mod") && !EndsWith(name, ".lst")) continue;
    RETURN_IF_ERROR(CopyFileUnsynced(JoinPath(from, name), JoinPath(to, name)));
  }
  return Status::Ok();
}

}  // namespace

BootConfig NewBootConfig(Generation generation) {
  BootConfig c;
  c.generation = generation;
  c.root_uuid = NewUuidV4();
  c.esp_volume_id = RandomHex(8, /*upper=*/true);
  c.timestamp = static_cast<int64_t>(::time(nullptr));
  return c;
}

Json BootConfigToJson(const BootConfig& c) {
  Json j = Json::MakeObject();
  j.Set("generation", Json::String(std::string(GenerationName(c.generation))));
  j.Set("rootUuid", Json::String(c.root_uuid));
  j.Set("espVolumeId", Json::String(c.esp_volume_id));
  j.Set("hostname", Json::String(c.hostname));
  j.Set("kernelCmdlineExtra", Json::String(c.kernel_cmdline_extra));
  j.Set("timestamp", Json::Int(c.timestamp));
  return j;
}

StatusOr<BootConfig> BootConfigFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgumentError("boot configuration: expected an object");
  auto text = [&](const char* key, std::string& out) -> Status {
    const Json* v = j.Find(key);
    if (v == nullptr || !v->is_string()) {
      return InvalidArgumentError(std::string("boot configuration: ") + key +
                                  ": expected a string");
    }
    out = v->string_value();
    return Status::Ok();
  };
  BootConfig c;
  std::string generation;
  RETURN_IF_ERROR(text("generation", generation));
  if (generation == GenerationName(Generation::kV1)) {
    c.generation = Generation::kV1;
  } else if (generation == GenerationName(Generation::kV2)) {
    c.generation = Generation::kV2;
  } else {
    return InvalidArgumentError("boot configuration: generation: expected V1 or V2, got " +
                                QuoteForMessage(generation));
  }
  RETURN_IF_ERROR(text("rootUuid", c.root_uuid));
  RETURN_IF_ERROR(text("espVolumeId", c.esp_volume_id));
  RETURN_IF_ERROR(text("hostname", c.hostname));
  RETURN_IF_ERROR(text("kernelCmdlineExtra", c.kernel_cmdline_extra));
  const Json* ts = j.Find("timestamp");
  std::optional<int64_t> t = ts == nullptr ? std::nullopt : ts->AsInt64();
  if (!t.has_value() || *t < 0) {
    return InvalidArgumentError("boot configuration: timestamp: expected seconds since the epoch");
  }
  c.timestamp = *t;
  RETURN_IF_ERROR(ValidateBootConfig(c));
  return c;
}

Status ValidateBootConfig(const BootConfig& c) {
  if (!IsUuid(c.root_uuid)) {
    return InvalidArgumentError("root_uuid " + QuoteForMessage(c.root_uuid) +
                                " is not a lowercase UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  }
  if (c.esp_volume_id.size() != 8 || !IsHex(c.esp_volume_id)) {
    return InvalidArgumentError("esp_volume_id " + QuoteForMessage(c.esp_volume_id) +
                                " is not 8 hexadecimal digits");
  }
  if (!IsHostname(c.hostname)) {
    return InvalidArgumentError("hostname " + QuoteForMessage(c.hostname) +
                                " is not a host name (letters, digits, '-' and '.')");
  }
  for (char ch : c.kernel_cmdline_extra) {
    if (ch < 0x20 || ch > 0x7e || std::strchr("\"'\\$;`", ch) != nullptr) {
      return InvalidArgumentError("kernel_cmdline_extra " +
                                  QuoteForMessage(c.kernel_cmdline_extra) +
                                  " holds a character grub.cfg cannot carry unquoted");
    }
  }
  return Status::Ok();
}

Status WriteBootFiles(Env& env, const BootConfig& c, const std::string& dir) {
  RETURN_IF_ERROR(ValidateBootConfig(c));
  const std::string esp = [&] {
    std::string u = c.esp_volume_id.substr(0, 4) + "-" + c.esp_volume_id.substr(4, 4);
    for (char& ch : u) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return u;
  }();
  RETURN_IF_ERROR(env.CreateDirs(JoinPath(dir, "etc/default/grub.d")));
  RETURN_IF_ERROR(env.CreateDirs(JoinPath(dir, "boot/efi")));
  RETURN_IF_ERROR(env.WriteFileAtomic(
      JoinPath(dir, "etc/fstab"),
      "# <file system>                          <mount point> <type> <options> <dump> <pass>\n"
      "UUID=" +
          c.root_uuid +
          " /          ext4 errors=remount-ro 0 1\n"
          "UUID=" +
          esp + "                            /boot/efi  vfat umask=0077,nofail 0 2\n"));
  RETURN_IF_ERROR(env.WriteFileAtomic(JoinPath(dir, "etc/hostname"), c.hostname + "\n"));
  const std::string short_name = Split(c.hostname, '.')[0];
  RETURN_IF_ERROR(env.WriteFileAtomic(
      JoinPath(dir, "etc/hosts"),
      "127.0.0.1\tlocalhost\n127.0.1.1\t" +
          (short_name == c.hostname ? c.hostname : c.hostname + "\t" + short_name) +
          "\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
  RETURN_IF_ERROR(env.WriteFileAtomic(JoinPath(dir, "etc/machine-id"), ""));
  RETURN_IF_ERROR(
      env.WriteFileAtomic(JoinPath(dir, "etc/default/grub.d/imagesmith.cfg"), DefaultGrub(c)));
  RETURN_IF_ERROR(env.CreateDirs(JoinPath(dir, "boot/grub")));
  RETURN_IF_ERROR(env.WriteFileAtomic(JoinPath(dir, "boot/grub/grub.cfg"), GrubCfg(c)));
  RETURN_IF_ERROR(CopyGrubModules(env, kGrubPcDir, JoinPath(dir, "boot/grub/i386-pc")));
  RETURN_IF_ERROR(CopyGrubModules(env, kGrubEfiDir, JoinPath(dir, "boot/grub/x86_64-efi")));
  return Status::Ok();
}

namespace {

// Runs under /bin/sh with $1 = tree, $2 = output image, $3 = size, $4 =
// UUID, $5 = timestamp. debugfs reports a failed command on stderr but
// exits 0, so anything on its stderr besides the banner is a failure.
constexpr const char kMakeRootFs[] = R"sh(set -eu
tree=$1 out=$2 size=$3 uuid=$4 ts=$5
nl='
'
if [ -n "$(cd "$tree" && find . -name "*$nl*" -print -quit)" ]; then
  echo "a file name in the image holds a newline: $(cd "$tree" && find . -name "*$nl*" -print -quit)" >&2
  exit 1
fi
# mke2fs falls back to its built-in defaults when the tree has no mke2fs.conf.
E2FSPROGS_FAKE_TIME=$ts MKE2FS_CONFIG=$tree/etc/mke2fs.conf \
  mke2fs -q -t ext4 -L root -U "$uuid" -E "hash_seed=$uuid" -d "$tree" "$out" "$size"
errors=$( (cd "$tree" && find . ! -type s -printf '%P\n') | LC_ALL=C sort | sed 's/"/""/g' |
  awk -v ts="$ts" '{ p = "\"/" $0 "\"";
    print "sif " p " ctime @" ts; print "sif " p " ctime_extra 0";
    print "sif " p " atime @" ts; print "sif " p " atime_extra 0" }' |
  E2FSPROGS_FAKE_TIME=$ts debugfs -w -f - "$out" 2>&1 >/dev/null | grep -v '^debugfs [0-9]' || true)
if [ -n "$errors" ]; then
  echo "debugfs could not set inode times: $(printf '%s\n' "$errors" | head -n 5)" >&2
  exit 1
fi
)sh";

}  // namespace

std::vector<std::string> RootFsCommand(const BootConfig& c, const std::string& out_image,
                                       uint64_t size_bytes) {
  return {"/bin/sh",
          "-c",
          kMakeRootFs,
          "imagesmith-mkroot",
          kTreePlaceholder,
          out_image,
          std::to_string(size_bytes / 4096 * 4) + "k",
          c.root_uuid,
          std::to_string(c.timestamp)};
}

uint64_t RootPartitionBytes(uint64_t disk_size_bytes) {
  if (disk_size_bytes <= kDiskOverheadBytes) return 0;
  return (disk_size_bytes - kDiskOverheadBytes) / kMiB * kMiB;
}

Status AssembleDisk(Env& env, const BootConfig& c, const std::string& root_fs_image,
                    uint64_t disk_size_bytes, const std::string& out_path) {
  RETURN_IF_ERROR(ValidateBootConfig(c));
  if (disk_size_bytes % kMiB != 0) {
    return InvalidArgumentError("disk size " + std::to_string(disk_size_bytes) +
                                " is not a whole number of MiB");
  }
  struct stat st {};
  if (::stat(root_fs_image.c_str(), &st) != 0) {
    return ErrnoError("root filesystem image " + root_fs_image, errno);
  }
  const uint64_t root_bytes = static_cast<uint64_t>(st.st_size);
  const uint64_t root_part = RootPartitionBytes(disk_size_bytes);
  if (root_bytes > root_part) {
    return InvalidArgumentError(
        "disk size " + std::to_string(disk_size_bytes) + " leaves " + std::to_string(root_part) +
        " bytes for the root partition, less than the root image " + root_fs_image + " (" +
        std::to_string(root_bytes) + " bytes); it needs at least " +
        std::to_string((root_bytes + kDiskOverheadBytes + kMiB - 1) / kMiB * kMiB));
  }
  ASSIGN_OR_RETURN(std::string work_path, MakeTempDirBeside(out_path));
  TempDir work(env, work_path);
  const std::string early = JoinPath(work.path(), "early.cfg");
  const std::string core = JoinPath(work.path(), "core.img");
  // The ESP's contents are staged as a tree (EFI/BOOT/BOOTX64.EFI) so one
  // `mcopy -s -m` copies it with the config's timestamp on every entry.
  const std::string esp_tree = JoinPath(work.path(), "esp");
  const std::string efi = JoinPath(esp_tree, "EFI/BOOT/BOOTX64.EFI");
  const std::string esp = JoinPath(work.path(), "esp.img");
  const std::string disk = JoinPath(work.path(), "disk.raw");
  RETURN_IF_ERROR(env.WriteFileAtomic(early, EarlyCfg(c)));
  RETURN_IF_ERROR(env.CreateDirs(Dirname(efi)));

  // GRUB: the BIOS core image (diskboot.img + decompressor + kernel +
  // modules + early.cfg) and the UEFI application.
  std::vector<std::string> pc = {"grub-mkimage", "-O", "i386-pc", "-d", kGrubPcDir,   "-o",
                                 core,           "-c", early,     "-p", "/boot/grub", "biosdisk"};
  std::vector<std::string> uefi = {"grub-mkimage", "-O",      "x86_64-efi", "-d",       kGrubEfiDir,
                                   "-o",           efi,       "-c",         early,      "-p",
                                   "/boot/grub",   "efi_gop", "efi_uga",    "all_video"};
  for (const char* m : kCoreModules) {
    pc.push_back(m);
    uefi.push_back(m);
  }
  RETURN_IF_ERROR(RunTool(env, pc));
  RETURN_IF_ERROR(RunTool(env, uefi));
  ASSIGN_OR_RETURN(std::string core_img, env.ReadFile(core, kBiosBootSectors * kSectorBytes));
  if (core_img.size() < kSectorBytes) return InternalError("grub-mkimage wrote a short " + core);

  // The ESP: FAT32 with the volume serial fstab names, \EFI\BOOT\BOOTX64.EFI.
  // --invariant: no clock or random values; -i still sets the serial.
  RETURN_IF_ERROR(RunTool(env, {"mkfs.fat", "--invariant", "-F", "32", "-n", "ESP", "-i",
                                c.esp_volume_id, "-C", esp, std::to_string(kEspBytes / 1024)}));
  for (const std::string& p : {efi, Dirname(efi), Dirname(Dirname(efi))}) {
    const struct timespec times[2] = {{c.timestamp, 0}, {c.timestamp, 0}};
    if (::utimensat(AT_FDCWD, p.c_str(), times, 0) != 0)
      return ErrnoError("setting times of " + p, errno);
  }
  // FAT keeps local time: UTC, so the bytes do not depend on the host's zone.
  const std::map<std::string, std::string> mtools_env = {{"MTOOLS_SKIP_CHECK", "1"}, {"TZ", "UTC"}};
  RETURN_IF_ERROR(
      RunTool(env, {"mcopy", "-s", "-m", "-i", esp, JoinPath(esp_tree, "EFI"), "::/"}, mtools_env));

  // The disk: sparse file, GPT, then the pieces at their offsets.
  {
    Fd fd(::open(disk.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return ErrnoError("creating " + disk, errno);
    if (::ftruncate(fd.get(), static_cast<off_t>(disk_size_bytes)) != 0) {
      return ErrnoError("sizing " + disk, errno);
    }
  }
  const uint64_t total_sectors = disk_size_bytes / kSectorBytes;
  const uint64_t root_end = total_sectors - kMiB / kSectorBytes - 1;
  RETURN_IF_ERROR(RunTool(
      env, {"sgdisk", "-o", "-U", DerivedGuid(c, "disk"), "-n",
            "1:" + std::to_string(kBiosBootStartLba) + ":" + std::to_string(kEspStartLba - 1), "-t",
            "1:EF02", "-c", "1:bios", "-n",
            "2:" + std::to_string(kEspStartLba) + ":" + std::to_string(kRootStartLba - 1), "-t",
            "2:EF00", "-c", "2:esp", "-n",
            "3:" + std::to_string(kRootStartLba) + ":" + std::to_string(root_end), "-t", "3:8300",
            // Partition GUIDs after the partitions exist (sgdisk applies options in order).
            "-u", "1:" + DerivedGuid(c, "bios"), "-u", "2:" + DerivedGuid(c, "esp"), "-u",
            "3:" + DerivedGuid(c, "root"), "-c", "3:root", disk}));
  {
    Fd fd(::open(disk.c_str(), O_RDWR | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoError("opening " + disk, errno);
    RETURN_IF_ERROR(SpliceSparse(esp, fd.get(), kEspStartLba * kSectorBytes, disk));
    RETURN_IF_ERROR(SpliceSparse(root_fs_image, fd.get(), kRootStartLba * kSectorBytes, disk));
    RETURN_IF_ERROR(ZeroWriteCounters(fd.get(), kRootStartLba * kSectorBytes, disk));

    // core.img into the BIOS boot partition. Its first sector is
    // diskboot.img, whose blocklist (the last 12 bytes: u64 start LBA at
    // 0x1f4, u16 count, u16 segment) grub-mkimage fills except for the
    // start, which must be the sector right after diskboot.img.
    PutLe64(reinterpret_cast<uint8_t*>(core_img.data()) + 0x1f4, kBiosBootStartLba + 1);
    RETURN_IF_ERROR(PWriteAll(fd.get(), core_img.data(), core_img.size(),
                              kBiosBootStartLba * kSectorBytes, disk));

    // The MBR: boot.img's code (bytes 0..439) over the protective MBR, which
    // keeps its disk signature, partition entry and 55 AA. Then boot.img's
    // variables: 0x5c (u64) is core.img's first LBA; 0x66..0x67 become two
    // NOPs so the drive number the BIOS passes in DL is used, as
    // grub-bios-setup does for hard disks.
    ASSIGN_OR_RETURN(std::string boot_img,
                     env.ReadFile(std::string(kGrubPcDir) + "/boot.img", kSectorBytes));
    if (boot_img.size() != kSectorBytes) {
      return InternalError(std::string(kGrubPcDir) + "/boot.img is not 512 bytes");
    }
    uint8_t mbr[440];
    std::memcpy(mbr, boot_img.data(), sizeof(mbr));
    PutLe64(mbr + 0x5c, kBiosBootStartLba);
    mbr[0x66] = 0x90;
    mbr[0x67] = 0x90;
    RETURN_IF_ERROR(PWriteAll(fd.get(), mbr, sizeof(mbr), 0, disk));
    if (::fsync(fd.get()) != 0) return ErrnoError("syncing " + disk, errno);
  }

  ProcessResult verify;
  RETURN_IF_ERROR(RunTool(env, {"sgdisk", "-v", disk}, {}, &verify));
  if (verify.stdout_data.find("No problems found") == std::string::npos) {
    return InternalError("sgdisk -v found problems in the new partition table: " +
                         LastLines(verify.stdout_data, 5));
  }
  return env.Rename(disk, out_path);
}

Status MakeBootableDisk(Env& env, const BootConfig& c, const std::string& tree_dir,
                        uint64_t disk_size_bytes, const std::string& out_path) {
  for (const char* link : {"vmlinuz", "initrd.img"}) {
    if (!env.FileExists(JoinPath(tree_dir, link))) {
      return FailedPreconditionError("the tree " + tree_dir + " has no /" + link +
                                     "; a Debian kernel package maintains it");
    }
  }
  RETURN_IF_ERROR(WriteBootFiles(env, c, tree_dir));
  const uint64_t root_bytes = RootPartitionBytes(disk_size_bytes);
  if (root_bytes == 0) {
    return InvalidArgumentError("disk size " + std::to_string(disk_size_bytes) +
                                " is too small for the partitions");
  }
  ASSIGN_OR_RETURN(std::string work_path, MakeTempDirBeside(out_path));
  TempDir work(env, work_path);
  const std::string root_img = JoinPath(work.path(), "root.img");
  std::vector<std::string> argv = RootFsCommand(c, root_img, root_bytes);
  for (std::string& arg : argv) {
    for (size_t p = arg.find(kTreePlaceholder); p != std::string::npos;
         p = arg.find(kTreePlaceholder, p + tree_dir.size())) {
      arg.replace(p, std::strlen(kTreePlaceholder), tree_dir);
    }
  }
  RETURN_IF_ERROR(RunTool(env, argv));
  return AssembleDisk(env, c, root_img, disk_size_bytes, out_path);
}

StatusOr<uint64_t> DefaultDiskSize(Env&, const std::string& tree_dir) {
  ASSIGN_OR_RETURN(uint64_t tree, TreeBytes(tree_dir));
  const uint64_t gib = 1ull << 30;
  const uint64_t want = tree + tree / 4 + 512 * kMiB + kDiskOverheadBytes;
  return std::max<uint64_t>(2 * gib, (want + gib - 1) / gib * gib);
}

}  // namespace imagesmith::catalog
