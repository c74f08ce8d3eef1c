#include "catalog/catalog.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "base/data_dir.h"
#include "base/strings.h"
#include "catalog/debian_base.h"

namespace imagesmith::catalog {
namespace {

struct SkuDef {
  const char* publisher;
  const char* offer;
  const char* sku;
  Generation generation;
  const char* base;
};

// The catalog. Adding an offer is a row here plus a recipe in RecipeFor.
constexpr SkuDef kSkus[] = {
    {"Debian", "debian-12", "12", Generation::kV1, "debian-12"},
    {"Debian", "debian-12", "12-gen2", Generation::kV2, "debian-12"},
};

StatusOr<DebianRecipe> RecipeFor(const std::string& base) {
  if (base == "debian-12") return Debian12Recipe();
  return InternalError("no recipe for base image " + base);
}

template <typename F>
std::string DistinctList(F field, const std::function<bool(const SkuDef&)>& keep) {
  std::vector<std::string> out;
  for (const SkuDef& d : kSkus) {
    if (!keep(d)) continue;
    std::string v = field(d);
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return Join(out, ", ");
}

CatalogEntry EntryFor(const SkuDef& d, std::string version, bool cached) {
  CatalogEntry e;
  e.publisher = d.publisher;
  e.offer = d.offer;
  e.sku = d.sku;
  e.version = std::move(version);
  e.generation = d.generation;
  e.cached = cached;
  e.base = d.base;
  return e;
}

// An exclusive flock() on a file, held for the object's lifetime. The fd is
// close-on-exec so builders started under the lock do not inherit it.
class FileLock {
 public:
  // Waits up to `limit` for the lock; DeadlineExceeded after that.
  static StatusOr<FileLock> Acquire(Env& env, const std::string& path,
                                    std::chrono::milliseconds limit) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("opening lock file " + path, errno);
    const int64_t deadline = env.MonotonicMicros() + limit.count() * 1000;
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err != EWOULDBLOCK) {
        ::close(fd);
        return ErrnoError("locking " + path, err);
      }
      if (env.MonotonicMicros() >= deadline) {
        ::close(fd);
        return DeadlineExceededError("waited " + std::to_string(limit.count() / 1000) +
                                     " s for another process building this base (it holds " + path +
                                     "); it has not finished");
      }
      env.SleepFor(std::chrono::milliseconds(200));
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

std::string_view GenerationName(Generation g) { return g == Generation::kV1 ? "V1" : "V2"; }

std::string CatalogEntry::Urn() const {
  return publisher + ":" + offer + ":" + sku + ":" + version;
}

Catalog::Catalog(Env& env, std::string cache_dir) : env_(env), cache_dir_(std::move(cache_dir)) {}

StatusOr<std::string> Catalog::DefaultCacheDir() {
  ASSIGN_OR_RETURN(std::string data, DataDirPath());
  return JoinPath(data, "catalog");
}

std::vector<BaseVersion> Catalog::CachedVersions(const std::string& base) const {
  std::vector<BaseVersion> out;
  const std::string dir = JoinPath(cache_dir_, base);
  if (!env_.IsDirectory(dir)) return out;
  auto names = env_.ListDir(dir);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    auto v = BaseVersion::Parse(name);
    if (!v || v->ToString() != name) continue;
    const std::string vdir = JoinPath(dir, name);
    if (env_.FileExists(JoinPath(vdir, "manifest.json")) &&
        env_.IsDirectory(JoinPath(vdir, "rootfs"))) {
      out.push_back(*v);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<CatalogEntry> Catalog::List(bool all_versions) const {
  std::vector<CatalogEntry> out;
  for (const SkuDef& d : kSkus) {
    std::vector<BaseVersion> versions = CachedVersions(d.base);
    if (!all_versions) {
      out.push_back(EntryFor(d, "latest", !versions.empty()));
      continue;
    }
    for (const BaseVersion& v : versions) out.push_back(EntryFor(d, v.ToString(), true));
  }
  return out;
}

StatusOr<CatalogEntry> Catalog::Resolve(const tmpl::PlatformImageSource& source) const {
  const SkuDef* found = nullptr;
  bool publisher_ok = false;
  bool offer_ok = false;
  for (const SkuDef& d : kSkus) {
    if (!EqualsIgnoreCase(d.publisher, source.publisher)) continue;
    publisher_ok = true;
    if (!EqualsIgnoreCase(d.offer, source.offer)) continue;
    offer_ok = true;
    if (EqualsIgnoreCase(d.sku, source.sku)) found = &d;
  }
  auto name = [](const SkuDef& d) { return std::string(d.publisher); };
  if (!publisher_ok) {
    return NotFoundError("platform image publisher " + QuoteForMessage(source.publisher) +
                         " is not in the catalog; publishers: " +
                         DistinctList(name, [](const SkuDef&) { return true; }));
  }
  const SkuDef* any = nullptr;
  for (const SkuDef& d : kSkus) {
    if (EqualsIgnoreCase(d.publisher, source.publisher)) {
      any = &d;
      break;
    }
  }
  if (!offer_ok) {
    return NotFoundError("publisher " + std::string(any->publisher) + " has no offer " +
                         QuoteForMessage(source.offer) + "; offers: " +
                         DistinctList([](const SkuDef& d) { return std::string(d.offer); },
                                      [any](const SkuDef& d) {
                                        return EqualsIgnoreCase(d.publisher, any->publisher);
                                      }));
  }
  if (found == nullptr) {
    std::string offer;
    for (const SkuDef& d : kSkus) {
      if (EqualsIgnoreCase(d.offer, source.offer)) offer = d.offer;
    }
    return NotFoundError("offer " + std::string(any->publisher) + ":" + offer + " has no sku " +
                         QuoteForMessage(source.sku) + "; skus: " +
                         DistinctList([](const SkuDef& d) { return std::string(d.sku); },
                                      [any, &offer](const SkuDef& d) {
                                        return EqualsIgnoreCase(d.publisher, any->publisher) &&
                                               d.offer == offer;
                                      }));
  }

  std::vector<BaseVersion> versions = CachedVersions(found->base);
  if (EqualsIgnoreCase(source.version, "latest")) {
    if (versions.empty()) return EntryFor(*found, "latest", false);
    return EntryFor(*found, versions.back().ToString(), true);
  }
  auto wanted = BaseVersion::Parse(source.version);
  if (wanted && std::find(versions.begin(), versions.end(), *wanted) != versions.end()) {
    return EntryFor(*found, wanted->ToString(), true);
  }
  std::vector<std::string> names;
  for (const BaseVersion& v : versions) names.push_back(v.ToString());
  const std::string urn = std::string(found->publisher) + ":" + found->offer + ":" + found->sku;
  std::string msg = "version " + QuoteForMessage(source.version) + " of " + urn;
  msg += wanted ? " is not in the catalog cache " + cache_dir_
                : " is not a catalog version (expected \"latest\" or 0.YYYYMMDD.N)";
  msg += names.empty() ? "; no versions are built yet (use \"latest\" to build one)"
                       : "; versions: " + Join(names, ", ");
  return NotFoundError(msg);
}

StatusOr<BaseImage> Catalog::Load(const CatalogEntry& entry) const {
  const std::string vdir = JoinPath(JoinPath(cache_dir_, entry.base), entry.version);
  const std::string manifest_path = JoinPath(vdir, "manifest.json");
  if (!env_.FileExists(manifest_path)) {
    return NotFoundError(entry.Urn() + " is not in the catalog cache: no " + manifest_path);
  }
  ASSIGN_OR_RETURN(std::string text, env_.ReadFile(manifest_path, 16 << 20));
  auto manifest = ParseJson(text);
  if (!manifest.ok()) return manifest.status().WithContext(manifest_path);
  BaseImage image;
  image.rootfs_dir = JoinPath(vdir, "rootfs");
  image.entry = entry;
  image.entry.cached = true;
  image.manifest = std::move(manifest).value();
  return image;
}

StatusOr<BaseVersion> Catalog::BuildLocked(const std::string& base,
                                           const std::function<void(std::string_view)>& progress,
                                           std::chrono::milliseconds time_limit) {
  ASSIGN_OR_RETURN(DebianRecipe recipe, RecipeFor(base));
  const std::string base_dir = JoinPath(cache_dir_, base);
  // Only the lock holder builds, so leftovers of an interrupted build are
  // stale and can go.
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.ListDir(base_dir));
  for (const std::string& name : names) {
    if (StartsWith(name, ".build-")) RETURN_IF_ERROR(env_.RemoveAll(JoinPath(base_dir, name)));
  }
  const BaseVersion version = BaseVersion::Next(CachedVersions(base), env_.NowMicros());
  const std::string tmp =
      JoinPath(base_dir, ".build-" + version.ToString() + "-" + std::to_string(::getpid()));
  RETURN_IF_ERROR(env_.CreateDirs(tmp));
  auto manifest = BuildDebianBase(env_, recipe, JoinPath(tmp, "rootfs"), progress, time_limit);
  if (!manifest.ok()) {
    (void)env_.RemoveAll(tmp);
    return manifest.status();
  }
  Json m = Json::MakeObject();
  m.Set("base", Json::String(base));
  m.Set("version", Json::String(version.ToString()));
  for (JsonMember& member : manifest->object_items()) m.Set(member.key, std::move(member.value));
  Status s = env_.WriteFileAtomic(JoinPath(tmp, "manifest.json"), m.Dump(2) + "\n");
  if (s.ok()) s = env_.Rename(tmp, JoinPath(base_dir, version.ToString()));
  if (!s.ok()) {
    (void)env_.RemoveAll(tmp);
    return s;
  }
  return version;
}

StatusOr<BaseImage> Catalog::EnsureImpl(const tmpl::PlatformImageSource& source, bool force_new,
                                        const std::function<void(std::string_view)>& progress,
                                        std::chrono::milliseconds time_limit) {
  const int64_t start = env_.MonotonicMicros();
  tmpl::PlatformImageSource src = source;
  if (force_new) src.version = "latest";
  ASSIGN_OR_RETURN(CatalogEntry entry, Resolve(src));
  if (entry.cached && !force_new) return Load(entry);

  const std::string base_dir = JoinPath(cache_dir_, entry.base);
  RETURN_IF_ERROR(env_.CreateDirs(base_dir));
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(env_, JoinPath(base_dir, ".lock"), time_limit));
  if (!force_new) {
    // Someone may have built it while we waited for the lock.
    std::vector<BaseVersion> versions = CachedVersions(entry.base);
    if (!versions.empty()) {
      entry.version = versions.back().ToString();
      entry.cached = true;
      return Load(entry);
    }
  }
  const auto waited = std::chrono::milliseconds((env_.MonotonicMicros() - start) / 1000);
  StatusOr<BaseVersion> version = BuildLocked(entry.base, progress, time_limit - waited);
  if (!version.ok() && version.status().code() == StatusCode::kDeadlineExceeded) {
    // The build had what resolving and waiting for the lock left of the
    // caller's limit: say the limit the caller gave, then what the build had.
    return DeadlineExceededError("building the " + entry.base +
                                 " platform base was stopped after " +
                                 std::to_string(time_limit.count() / 1000) +
                                 " s, the time it was given (" + version.status().message() + ")");
  }
  if (!version.ok()) return version.status();
  entry.version = version->ToString();
  entry.cached = true;
  return Load(entry);
}

StatusOr<BaseImage> Catalog::Ensure(const tmpl::PlatformImageSource& source,
                                    const std::function<void(std::string_view)>& progress,
                                    std::chrono::milliseconds time_limit) {
  return EnsureImpl(source, false, progress, time_limit);
}

StatusOr<BaseImage> Catalog::BuildNew(const tmpl::PlatformImageSource& source,
                                      const std::function<void(std::string_view)>& progress) {
  return EnsureImpl(source, true, progress, kBaseBuildTimeLimit);
}

}  // namespace imagesmith::catalog
