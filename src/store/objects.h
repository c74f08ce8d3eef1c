// One region's object directory: framing (header + zstd), verified reads,
// crash-safe writes, and the "touch on reuse" half of the gc protocol
// (doc/store.md, "Objects" and "Garbage collection").
//
// RegionObjects is thread-safe (it holds no mutable state but the file
// system); ObjectBatch is thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/process.h"
#include "base/sha256.h"
#include "base/statusor.h"
#include "store/store_fs.h"

namespace imagesmith::store {

// Frames `content` as an object file: 16-byte header, then the zstd frame
// (or the raw bytes when compression does not help).
std::string FrameObject(std::string_view content);
// Undoes FrameObject and checks the content's SHA-256 against `expected`.
// Any mismatch or malformation is DataLoss with a message that says what.
StatusOr<std::string> UnframeObject(std::string_view framed, const Sha256Digest& expected);

class RegionObjects {
 public:
  // Writes, syncs, renames and touches go through `fs` (borrowed; must
  // outlive this object).
  RegionObjects(std::string dir, std::string region_name, StoreFs& fs = StoreFs::Default())
      : dir_(std::move(dir)), name_(std::move(region_name)), fs_(&fs) {}

  const std::string& dir() const { return dir_; }
  const std::string& name() const { return name_; }
  StoreFs& fs() const { return *fs_; }
  std::string ObjectPath(const Sha256Digest& d) const;
  std::string MarkerPath(const Sha256Digest& image) const;
  std::string TmpDir() const { return dir_ + "/tmp"; }
  std::string TrashDir() const { return dir_ + "/trash"; }

  // Creates the region's directories (idempotent).
  Status Init() const;

  // The verified content of an object. NotFound or DataLoss naming the
  // region, the object and the file.
  StatusOr<std::string> Read(const Sha256Digest& d) const;
  // The object file's bytes as stored (not verified).
  StatusOr<std::string> ReadFramed(const Sha256Digest& d) const;
  // Sets the object's mtime to now; false if it does not exist. A put that
  // reuses an object must touch it (gc keeps recently touched objects).
  bool Touch(const Sha256Digest& d) const;
  bool Has(const Sha256Digest& d) const;
  // Size of the object file, 0 if absent.
  uint64_t StoredSize(const Sha256Digest& d) const;

  // Writes one object durably now: temp file, fsync, rename, fsync dir.
  Status WriteDurably(const Sha256Digest& d, std::string_view framed) const;
  // Same for an image marker (the image is complete in this region).
  Status WriteMarker(const Sha256Digest& image) const;
  // Makes the image visible: touches its marker if it exists (a gc keeps
  // recent markers), writes it otherwise.
  Status TouchOrWriteMarker(const Sha256Digest& image) const;
  // syncfs() of the region's file system. Errors name the region.
  Status SyncFs() const;

  // A unique temp file path in tmp/ owned by this process.
  std::string NewTempPath() const;

 private:
  std::string dir_;
  std::string name_;
  StoreFs* fs_;  // not owned
};

// Writes many objects cheaply and still crash-safely: each goes to its own
// temp file (no fsync); Commit() syncs the file system once (syncfs), then
// renames every temp file into place. An object is therefore visible only
// after its bytes are durable; a crash leaves temp files, which gc removes
// once their writer is dead.
class ObjectBatch {
 public:
  explicit ObjectBatch(const RegionObjects& region) : region_(region) {}
  ~ObjectBatch();
  ObjectBatch(const ObjectBatch&) = delete;
  ObjectBatch& operator=(const ObjectBatch&) = delete;

  // Writes the temp file; commits the batch when it has grown large.
  Status Add(const Sha256Digest& d, std::string_view framed);
  // Makes every added object durable and visible.
  Status Commit();

 private:
  const RegionObjects& region_;
  std::mutex mu_;
  std::vector<std::pair<std::string, Sha256Digest>> pending_;  // guarded by mu_
  uint64_t pending_bytes_ = 0;                                 // guarded by mu_
  std::mutex commit_mu_;                                       // one commit at a time
};

// syncfs() on the file system holding `dir`.
Status SyncFileSystem(const std::string& dir, StoreFs& fs = StoreFs::Default());
// fsync() of a directory (after a rename into it).
Status SyncDir(const std::string& dir, StoreFs& fs = StoreFs::Default());

}  // namespace imagesmith::store
