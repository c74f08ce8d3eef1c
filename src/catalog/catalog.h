// The platform image catalog: the publisher/offer/sku/version names a
// template's PlatformImage source uses, resolved to Debian base trees that
// imagesmith builds itself with mmdebstrap and keeps in a cache.
//
// What is offered (names as in Azure's marketplace, matched ignoring case):
//   Debian : debian-12 : 12       hyperVGeneration V1 (BIOS)
//   Debian : debian-12 : 12-gen2  hyperVGeneration V2 (UEFI)
// Both skus share one base tree ("debian-12"); the generation only decides
// which firmware the disk is booted with (every disk carries both boot
// paths, see boot_disk.h).
//
// Cache layout under `cache_dir` (normally DataDirPath()/catalog):
//   <base>/.lock                   flock()ed while a build runs
//   <base>/.build-<version>-<pid>/  a build in progress (removed if stale)
//   <base>/<version>/manifest.json  what the tree holds (doc/catalog.md)
//   <base>/<version>/rootfs/        the tree; read-only by convention
// A version directory appears by one rename(2), so it is complete or absent.
//
// A Catalog is cheap to make and holds no state besides its paths; several
// processes may use the same cache at once (builds of one base are
// serialized by the lock). One Catalog object is thread-compatible.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/statusor.h"
#include "catalog/base_version.h"
#include "catalog/debian_base.h"
#include "template/model.h"

namespace imagesmith::catalog {

// Hyper-V generation, as Azure names it: V1 boots with BIOS, V2 with UEFI.
enum class Generation { kV1, kV2 };
// "V1" / "V2".
std::string_view GenerationName(Generation g);

struct CatalogEntry {
  std::string publisher;  // canonical spelling: "Debian"
  std::string offer;      // "debian-12"
  std::string sku;        // "12" or "12-gen2"
  // An explicit version ("0.20261121.1"), or "latest" when a row of List()
  // stands for the sku, or when Resolve() found nothing built yet.
  std::string version;
  Generation generation = Generation::kV1;
  bool cached = false;  // the version's tree is in the cache
  std::string base;     // the base tree it uses: "debian-12"

  // "Debian:debian-12:12:0.20261121.1"
  std::string Urn() const;
};

struct BaseImage {
  std::string rootfs_dir;  // a plain directory tree, read-only by convention
  CatalogEntry entry;      // with an explicit version and cached == true
  Json manifest;           // the version's manifest.json
};

class Catalog {
 public:
  // `env` is borrowed and must outlive the Catalog. `cache_dir` need not
  // exist yet; it is created on the first build.
  Catalog(Env& env, std::string cache_dir);

  // The cache directory for the data directory: DataDirPath()/catalog.
  static StatusOr<std::string> DefaultCacheDir();

  // For `vm image list`. Without `all_versions`: one row per sku, version
  // "latest", `cached` telling whether any version is built. With it: one
  // row per cached version of each sku, oldest first (skus with nothing
  // cached have no rows). Unreadable cache directories count as empty.
  std::vector<CatalogEntry> List(bool all_versions) const;

  // Validates the names and resolves the version. "latest" becomes the
  // newest cached version; when none is cached the entry keeps version
  // "latest" with cached == false (Ensure builds it). An explicit version
  // must be cached. Errors are NotFound and list what exists: the
  // publishers, the publisher's offers, the offer's skus, or the cached
  // versions.
  StatusOr<CatalogEntry> Resolve(const tmpl::PlatformImageSource& source) const;

  // Resolve, then make sure the tree exists: builds the first version when
  // "latest" has nothing cached (waiting for a concurrent build of the same
  // base instead of starting a second one). Progress lines of a build go to
  // `progress` (may be empty). The returned tree stays valid as long as the
  // cache is not pruned. Waiting for the other build and building take at
  // most `time_limit` together; past it, DeadlineExceeded and nothing of the
  // unfinished build is kept.
  StatusOr<BaseImage> Ensure(const tmpl::PlatformImageSource& source,
                             const std::function<void(std::string_view line)>& progress,
                             std::chrono::milliseconds time_limit = kBaseBuildTimeLimit);

  // Always builds a new version of the sku's base (the next 0.YYYYMMDD.N)
  // and returns it; for `vm image build`. `source.version` is ignored.
  StatusOr<BaseImage> BuildNew(const tmpl::PlatformImageSource& source,
                               const std::function<void(std::string_view line)>& progress);

  // The cached versions of a base, oldest first.
  std::vector<BaseVersion> CachedVersions(const std::string& base) const;

  // Loads a cached version. NotFound if it is not in the cache.
  StatusOr<BaseImage> Load(const CatalogEntry& entry) const;

  const std::string& cache_dir() const { return cache_dir_; }

 private:
  // Requires the base's lock to be held.
  StatusOr<BaseVersion> BuildLocked(const std::string& base,
                                    const std::function<void(std::string_view)>& progress,
                                    std::chrono::milliseconds time_limit);
  StatusOr<BaseImage> EnsureImpl(const tmpl::PlatformImageSource& source, bool force_new,
                                 const std::function<void(std::string_view)>& progress,
                                 std::chrono::milliseconds time_limit);

  Env& env_;
  std::string cache_dir_;
};

}  // namespace imagesmith::catalog
