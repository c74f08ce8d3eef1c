// Store: the content-addressed home of every image's bytes.
//
// A store is a directory (`<data>/store`) holding one store root per region
// (DESIGN.md, "Regions and replicas"). Inside a region every object is named
// by the SHA-256 of its uncompressed content, kept zstd-compressed, written
// once (temp file + rename) and verified on every read, so identical file
// contents and chunks are stored once per region whatever image they belong to.
//
// An *image* is a small manifest object naming everything it needs:
//   - kind "tree": a file tree (a built image: owners, modes, times, xattrs,
//     hard links, devices and symlinks kept) plus a caller-defined JSON
//     document (`meta`: the boot configuration, disk size, generation...) so
//     the layer above can regenerate the same disk bytes from it;
//   - kind "disk": opaque raw disk bytes (an imported VHD or qcow2, already
//     converted to raw by the caller), chunked, sparse-aware.
// The image's digest is the digest of its manifest; it identifies the image
// in every region.
//
// Replication copies, from one region to another, only the objects the
// target lacks, verifying each, and writes the manifest last: an image is
// present in a region only when all of its objects are (HasImage).
// Replicate is idempotent, so a crash is recovered by calling it again.
//
// Garbage collection keeps every image named by the caller's roots or by a
// live Pin, and every object newer than the collection's start, so it is
// safe to run while another process is putting or replicating an image.
//
// The on-disk format is in doc/store.md.
//
// Thread-safety: a Store may be used from several threads and several
// processes at once on the same directory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/region.h"
#include "base/sha256.h"
#include "base/statusor.h"

namespace imagesmith::store {

class StoreFs;  // store_fs.h

// Called with (bytes done, bytes total) as work proceeds; total may be 0
// when unknown. May be empty.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

enum class ImageKind { kTree, kDisk };

struct ImageInfo {
  Sha256Digest digest;
  ImageKind kind = ImageKind::kTree;
  uint64_t logical_bytes = 0;  // tree: sum of file sizes; disk: virtual size
  uint64_t object_count = 0;   // distinct objects the image needs, manifest included
  uint64_t stored_bytes = 0;   // their compressed size in this region
  Json meta;                   // the document given to PutTree / PutDisk
};

struct PutStats {
  uint64_t new_objects = 0;
  uint64_t new_bytes = 0;  // compressed bytes written that were not stored before
  uint64_t reused_objects = 0;
};

struct ReplicateStats {
  uint64_t copied_objects = 0;
  uint64_t copied_bytes = 0;  // compressed bytes copied
  uint64_t present_objects = 0;
};

struct FsckReport {
  uint64_t objects_checked = 0;
  uint64_t images_checked = 0;
  // One line per problem: "<region>: object <digest>: ..." / "image <digest>: missing ...".
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

struct GcReport {
  uint64_t objects_kept = 0;
  uint64_t objects_removed = 0;
  uint64_t bytes_removed = 0;
};

// A reference that keeps an image alive across gc: (region, image digest).
struct ImageRef {
  Region region;
  Sha256Digest image;
};

class Store;

// Keeps images (and, while it is held, everything written under it) alive
// against gc, also in other processes. Released on destruction; a pin left
// by a process that died is ignored once that process is gone.
// Move-only.
class Pin {
 public:
  Pin(Pin&&) noexcept;
  Pin& operator=(Pin&&) noexcept;
  Pin(const Pin&) = delete;
  Pin& operator=(const Pin&) = delete;
  ~Pin();
  // Adds an image to the pin (before putting or replicating it).
  Status Add(const ImageRef& ref);

 private:
  friend class Store;
  struct Impl;
  explicit Pin(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating if needed) the store at `root`.
  static StatusOr<std::unique_ptr<Store>> Open(Env& env, const std::string& root);
  // The same, with every write, sync, rename, link, unlink and touch of
  // object, marker and trash files going through `fs` (borrowed; must
  // outlive the store): how tests inject disk-full and I/O errors
  // (store_fs.h). Pin files and materialized trees use the real file system.
  static StatusOr<std::unique_ptr<Store>> Open(Env& env, const std::string& root, StoreFs& fs);

  // Stores the tree at `dir` (a directory or an overlay's merged view) in
  // `region`. Regular file contents, symlink targets, directory listings and
  // xattrs become objects. Returns the image's digest; `stats` (may be null)
  // says what was new. Files that cannot be read are errors naming the path.
  virtual StatusOr<Sha256Digest> PutTree(const Region& region, const std::string& dir,
                                         const Json& meta, PutStats* stats,
                                         const ProgressFn& progress) = 0;
  // Stores the raw disk file at `path` (holes and all-zero chunks cost nothing).
  virtual StatusOr<Sha256Digest> PutDisk(const Region& region, const std::string& path,
                                         const Json& meta, PutStats* stats,
                                         const ProgressFn& progress) = 0;

  // The image's manifest summary; NotFound naming region and digest if the
  // image is not (completely) present there.
  virtual StatusOr<ImageInfo> GetImage(const Region& region, const Sha256Digest& image) = 0;
  virtual bool HasImage(const Region& region, const Sha256Digest& image) = 0;

  // Recreates a tree image under `dir` (which must not exist or be empty):
  // contents, owners, modes, mtimes, xattrs, hard links, devices, symlinks.
  // Every object read is verified; DataLoss names the object and the path.
  virtual Status MaterializeTree(const Region& region, const Sha256Digest& image,
                                 const std::string& dir, const ProgressFn& progress) = 0;
  // Writes a disk image's raw bytes to `out_path` (sparse; replaced atomically).
  virtual Status MaterializeDisk(const Region& region, const Sha256Digest& image,
                                 const std::string& out_path, const ProgressFn& progress) = 0;

  // Copies `image` from `from` to `to`: only the objects `to` lacks, each
  // verified after the copy; the manifest last. Idempotent and resumable.
  virtual StatusOr<ReplicateStats> Replicate(const Region& from, const Region& to,
                                             const Sha256Digest& image,
                                             const ProgressFn& progress) = 0;

  // Copies `image` from `region` of this store into the same region of
  // `dest`, another Store opened on a different root (a backup, or a data
  // directory being restored): only the objects `dest` lacks, each verified
  // against its digest before it is written and read back after; the
  // manifest and marker last, as Replicate does. Both sides are pinned for
  // the call. NotFound if the image is not complete here; DataLoss naming
  // the store, region, object and file if an object is corrupt (nothing is
  // then marked complete in `dest`). Idempotent and resumable.
  virtual StatusOr<ReplicateStats> CopyImageTo(const Region& region, const Sha256Digest& image,
                                               Store& dest, const ProgressFn& progress) = 0;

  // A new, empty pin.
  virtual StatusOr<Pin> NewPin() = 0;

  // Verifies every object in every region (content matches the name) and
  // that every image's objects are present.
  virtual StatusOr<FsckReport> Fsck(const ProgressFn& progress) = 0;
  // Removes every object no root, pin or in-flight write needs.
  virtual StatusOr<GcReport> Gc(const std::vector<ImageRef>& roots) = 0;

  // The regions that have a store root, sorted.
  virtual StatusOr<std::vector<Region>> Regions() = 0;
};

}  // namespace imagesmith::store
