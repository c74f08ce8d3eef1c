#include "catalog/debian_base.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <deque>
#include <set>
#include <utility>

#include "base/strings.h"

namespace imagesmith::catalog {
namespace {

// Runs after the Essential set is unpacked and before the --include packages
// (the kernel, initramfs-tools) are installed, so the one initramfs build
// already sees it. FSTYPE=ext4 makes the fsck hook include fsck.ext4 without
// reading the root device out of fstab, and RESUME=none stops the resume hook
// from recording a swap device: the initramfs names no disk identifier, so
// the tree stays valid for every disk it is later written to (each disk gets
// a fresh root UUID on the kernel command line and in fstab).
constexpr const char* kEssentialHook =
    "set -e; mkdir -p \"$1/etc/initramfs-tools/conf.d\" \"$1/boot/efi\"; "
    "printf 'FSTYPE=ext4\\n' > \"$1/etc/initramfs-tools/conf.d/imagesmith-fstype\"; "
    "printf 'RESUME=none\\n' > \"$1/etc/initramfs-tools/conf.d/resume\"; "
    "printf '# The root and ESP entries are written per disk by imagesmith.\\n' > "
    "\"$1/etc/fstab\"";

// DHCP on every Ethernet interface with systemd-networkd (names differ
// between qemu machine types and Azure sizes, so match them all), DNS through
// systemd-resolved. mmdebstrap copies the host's hostname into the tree; the
// per-disk boot files replace it.
constexpr const char* kCustomizeHook =
    "set -e; mkdir -p \"$1/etc/systemd/network\"; "
    "printf '[Match]\\nName=en* eth*\\n\\n[Network]\\nDHCP=yes\\n' > "
    "\"$1/etc/systemd/network/50-imagesmith-dhcp.network\"; "
    "chroot \"$1\" systemctl enable systemd-networkd.service systemd-resolved.service; "
    "printf 'localhost\\n' > \"$1/etc/hostname\"";

std::string Rfc3339Utc(int64_t micros) {
  const std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// nftw has no user pointer; TreeBytes is not reentrant across threads
// because of this, which the header's thread-compatibility allows.
struct TreeWalk {
  uint64_t bytes = 0;
  std::set<std::pair<dev_t, ino_t>> seen;
};
thread_local TreeWalk* g_walk = nullptr;

int CountEntry(const char*, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_F && S_ISREG(st->st_mode)) {
    if (st->st_nlink > 1 && !g_walk->seen.insert({st->st_dev, st->st_ino}).second) return 0;
    g_walk->bytes += static_cast<uint64_t>(st->st_size);
  } else if (type == FTW_SL || type == FTW_SLN) {
    g_walk->bytes += static_cast<uint64_t>(st->st_size);
  }
  return 0;
}

}  // namespace

DebianRecipe Debian12Recipe() {
  return DebianRecipe{
      "bookworm",
      {"systemd-sysv", "linux-image-cloud-amd64", "initramfs-tools", "udev", "openssh-server",
       "sudo", "zstd", "systemd-resolved"},
  };
}

StatusOr<std::vector<std::string>> HostAptSources(Env& env, const std::string& etc_apt) {
  std::vector<std::string> candidates = {JoinPath(etc_apt, "sources.list")};
  const std::string dir = JoinPath(etc_apt, "sources.list.d");
  if (env.IsDirectory(dir)) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, env.ListDir(dir));
    for (const char* ext : {".list", ".sources"}) {
      for (const std::string& name : names) {
        if (EndsWith(name, ext)) candidates.push_back(JoinPath(dir, name));
      }
    }
  }
  std::vector<std::string> sources;
  for (const std::string& path : candidates) {
    if (!env.FileExists(path) || env.IsDirectory(path)) continue;
    ASSIGN_OR_RETURN(std::string text, env.ReadFile(path, 1 << 20));
    for (const std::string& line : Split(text, '\n')) {
      std::string_view t = TrimWhitespace(line);
      if (!t.empty() && t[0] != '#') {
        sources.push_back(path);
        break;
      }
    }
  }
  if (sources.empty()) {
    return FailedPreconditionError("no apt sources on this host: " + candidates[0] + " and " + dir +
                                   "/*.list, *.sources hold no entries; imagesmith builds "
                                   "its Debian base images from the host's apt sources");
  }
  return sources;
}

std::vector<std::string> MmdebstrapCommand(const DebianRecipe& recipe, const std::string& out_dir,
                                           const std::vector<std::string>& sources) {
  std::vector<std::string> argv = {
      // In root mode mmdebstrap mounts /proc, /sys and /dev inside the tree.
      // In a mount namespace of its own, those mounts end with it even when
      // it is killed (a time limit, a killed imagesmith), instead of staying
      // on the host and pinning the half-built tree.
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "mmdebstrap",
      "--mode=root",
      "--format=directory",
      "--variant=minbase",
      "--include=" + Join(recipe.packages, ","),
      std::string("--essential-hook=") + kEssentialHook,
      std::string("--customize-hook=") + kCustomizeHook,
      recipe.suite,
      out_dir,
  };
  argv.insert(argv.end(), sources.begin(), sources.end());
  return argv;
}

std::vector<DpkgPackage> ParseDpkgStatus(std::string_view status_text) {
  std::vector<DpkgPackage> out;
  DpkgPackage cur;
  bool installed = false;
  auto flush = [&] {
    if (installed && !cur.name.empty()) out.push_back(cur);
    cur = DpkgPackage();
    installed = false;
  };
  for (const std::string& line : Split(status_text, '\n')) {
    if (TrimWhitespace(line).empty()) {
      flush();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') continue;  // continuation line
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    const std::string value(TrimWhitespace(std::string_view(line).substr(colon + 1)));
    if (key == "Package") cur.name = value;
    if (key == "Version") cur.version = value;
    if (key == "Architecture") cur.architecture = value;
    if (key == "Status") installed = value == "install ok installed";
  }
  flush();
  std::sort(out.begin(), out.end(), [](const DpkgPackage& a, const DpkgPackage& b) {
    return std::tie(a.name, a.architecture) < std::tie(b.name, b.architecture);
  });
  return out;
}

StatusOr<uint64_t> TreeBytes(const std::string& dir) {
  TreeWalk walk;
  g_walk = &walk;
  errno = 0;
  const int rc = nftw(dir.c_str(), CountEntry, 64, FTW_PHYS | FTW_MOUNT);
  g_walk = nullptr;
  if (rc != 0) return ErrnoError("measuring the tree " + dir, errno == 0 ? EIO : errno);
  return walk.bytes;
}

StatusOr<std::string> KernelRelease(Env& env, const std::string& tree) {
  const std::string boot = JoinPath(tree, "boot");
  if (!env.IsDirectory(boot)) return NotFoundError("no kernel in " + tree + ": no boot/ directory");
  ASSIGN_OR_RETURN(std::vector<std::string> names, env.ListDir(boot));
  std::vector<std::string> releases;
  for (const std::string& n : names) {
    if (StartsWith(n, "vmlinuz-")) releases.push_back(n.substr(8));
  }
  if (releases.empty()) return NotFoundError("no kernel in " + tree + ": no boot/vmlinuz-*");
  // dpkg orders versions; the lexical maximum is right for one ABI series
  // and a base tree holds exactly one kernel.
  return *std::max_element(releases.begin(), releases.end());
}

std::string LastLines(std::string_view text, size_t n) {
  std::deque<std::string> lines;
  for (const std::string& line : Split(text, '\n')) {
    if (TrimWhitespace(line).empty()) continue;
    lines.push_back(line);
    if (lines.size() > n) lines.pop_front();
  }
  return Join(std::vector<std::string>(lines.begin(), lines.end()), "\n");
}

StatusOr<Json> DescribeTree(Env& env, const std::string& tree) {
  Json m = Json::MakeObject();
  ASSIGN_OR_RETURN(std::string kernel, KernelRelease(env, tree));
  m.Set("kernel", Json::String(kernel));
  ASSIGN_OR_RETURN(uint64_t bytes, TreeBytes(tree));
  m.Set("treeBytes", Json::Int(static_cast<int64_t>(bytes)));
  ASSIGN_OR_RETURN(std::string status,
                   env.ReadFile(JoinPath(tree, "var/lib/dpkg/status"), 64 << 20));
  Json packages = Json::MakeArray();
  for (const DpkgPackage& p : ParseDpkgStatus(status)) {
    Json o = Json::MakeObject();
    o.Set("name", Json::String(p.name));
    o.Set("version", Json::String(p.version));
    o.Set("architecture", Json::String(p.architecture));
    packages.Append(std::move(o));
  }
  m.Set("packages", std::move(packages));
  return m;
}

namespace {
// "12 s", or "11.9 s" for a limit that is not a whole number of seconds.
std::string SecondsText(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}
}  // namespace

StatusOr<Json> BuildDebianBase(Env& env, const DebianRecipe& recipe, const std::string& out_dir,
                               const std::function<void(std::string_view line)>& progress,
                               std::chrono::milliseconds time_limit) {
  ASSIGN_OR_RETURN(std::vector<std::string> sources, HostAptSources(env, "/etc/apt"));
  ProcessOptions opts;
  opts.argv = MmdebstrapCommand(recipe, out_dir, sources);
  opts.timeout = std::max(time_limit, std::chrono::milliseconds(1));
  std::string tail;  // both streams interleaved, for the error message
  opts.on_line = [&](std::string_view line, bool) {
    if (progress) progress(line);
    tail.append(line);
    tail.push_back('\n');
    if (tail.size() > 64 << 10) tail.erase(0, tail.size() - (32 << 10));
  };
  const int64_t start_wall = env.NowMicros();
  const int64_t start = env.MonotonicMicros();
  ASSIGN_OR_RETURN(ProcessResult r, env.RunProcess(opts));
  if (r.timed_out) {
    return DeadlineExceededError("building the " + recipe.suite +
                                 " platform base with mmdebstrap was stopped after " +
                                 SecondsText(time_limit) + ", the time it was given");
  }
  if (!r.success()) {
    return InternalError("mmdebstrap failed (" + r.Describe() + ") building " + recipe.suite +
                         " into " + out_dir + ":\n" + LastLines(tail, 15));
  }
  const int64_t micros = env.MonotonicMicros() - start;

  ASSIGN_OR_RETURN(Json m, DescribeTree(env, out_dir));
  Json manifest = Json::MakeObject();
  manifest.Set("suite", Json::String(recipe.suite));
  manifest.Set("variant", Json::String("minbase"));
  Json include = Json::MakeArray();
  for (const std::string& p : recipe.packages) include.Append(Json::String(p));
  manifest.Set("include", std::move(include));
  Json src = Json::MakeArray();
  for (const std::string& s : sources) src.Append(Json::String(s));
  manifest.Set("sources", std::move(src));
  manifest.Set("builtAt", Json::String(Rfc3339Utc(start_wall)));
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%.1f", static_cast<double>(micros) / 1e6);
  manifest.Set("buildSeconds", Json::NumberText(secs));
  for (JsonMember& member : m.object_items()) {
    manifest.Set(member.key, std::move(member.value));
  }
  return manifest;
}

}  // namespace imagesmith::catalog
