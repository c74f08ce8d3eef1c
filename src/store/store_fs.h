// StoreFs: the file-system calls the store makes to write, make durable,
// rename and remove its files (object and marker temp files, batches, gc's
// trash), behind one interface so tests can make any of them fail
// (FaultInjectionFs, in the spirit of LevelDB's FaultInjectionTestEnv).
//
// Reads, directory listings and directory creation go through Env; the
// calls here are the ones whose failure (disk full, I/O error) decides
// whether a half-written object or image could become visible.
//
// Every method returns an error Status naming the path and the errno text
// (ErrnoError), never throws. StoreFs::Default() is the POSIX
// implementation; it is stateless and safe from several threads, and so
// must every implementation be.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "base/statusor.h"

namespace imagesmith::store {

// The kinds of call, for counting and for choosing where to inject a fault.
enum class FsOp {
  kCreate,   // open(O_CREAT|O_EXCL) of a new file
  kWrite,    // write(2) to it (may be short)
  kSync,     // fdatasync of a file
  kRename,   // rename(2)
  kSyncFs,   // syncfs(2) of a region's file system
  kSyncDir,  // fsync of a directory
  kTouch,    // utimensat(path, NULL): mtime to now
  kLink,     // link(2)
  kUnlink,   // unlink(2)
};
inline constexpr int kFsOpCount = 9;
const char* FsOpName(FsOp op);  // "create", "write", ...

class StoreFs {
 public:
  virtual ~StoreFs() = default;
  // The process-wide POSIX implementation; never null, not owned.
  static StoreFs& Default();

  // A new file at `path` (O_EXCL) with `mode`, open for writing; the fd.
  virtual StatusOr<int> Create(const std::string& path, int mode) = 0;
  // Writes up to data.size() bytes at the file offset; returns how many
  // were written (possibly fewer: call again with the rest).
  virtual StatusOr<size_t> Write(int fd, std::string_view data, const std::string& path) = 0;
  virtual Status Sync(int fd, const std::string& path) = 0;
  // Closes an fd from Create (never fails).
  virtual void Close(int fd) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status SyncFs(const std::string& dir) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  // NotFound (ENOENT) when `path` does not exist.
  virtual Status Touch(const std::string& path) = 0;
  // AlreadyExists (EEXIST) when `to` exists.
  virtual Status Link(const std::string& from, const std::string& to) = 0;
  // NotFound when `path` does not exist.
  virtual Status Unlink(const std::string& path) = 0;
};

// Writes all of `data` to `fd`, calling Write again after a short write.
Status WriteAll(StoreFs& fs, int fd, std::string_view data, const std::string& path);

// Wraps another StoreFs: counts every call by kind and, when armed, makes
// the N-th call of one kind fail with an errno, or (for writes) write only
// part of the data -- a short write, which a correct caller retries, and
// then fail the next write with ENOSPC as a full disk does. One fault per
// arming. Thread-safe.
class FaultInjectionFs final : public StoreFs {
 public:
  explicit FaultInjectionFs(StoreFs& base) : base_(base) {}

  struct Fault {
    FsOp op = FsOp::kWrite;
    uint64_t nth = 1;  // 1-based, counted from Arm()
    int err = 5;       // errno to fail with (EIO = 5); ignored for short writes
    bool short_write = false;
  };
  // Resets the counters and arms `fault`.
  void Arm(const Fault& fault);
  // Resets the counters; no fault.
  void Disarm();
  // Calls of `op` since the last Arm/Disarm.
  uint64_t Count(FsOp op) const;
  // Whether the armed fault has been injected.
  bool Fired() const { return fired_.load(); }

  StatusOr<int> Create(const std::string& path, int mode) override;
  StatusOr<size_t> Write(int fd, std::string_view data, const std::string& path) override;
  Status Sync(int fd, const std::string& path) override;
  void Close(int fd) override { base_.Close(fd); }
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncFs(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Status Touch(const std::string& path) override;
  Status Link(const std::string& from, const std::string& to) override;
  Status Unlink(const std::string& path) override;

 private:
  // Counts a call of `op`; returns the errno to fail it with, or 0.
  int Hit(FsOp op, bool* short_write);

  StoreFs& base_;
  mutable std::mutex mu_;
  uint64_t counts_[kFsOpCount] = {};  // guarded by mu_
  Fault fault_;                       // guarded by mu_
  bool armed_ = false;                // guarded by mu_
  bool enospc_next_write_ = false;    // guarded by mu_
  std::atomic<bool> fired_{false};
};

}  // namespace imagesmith::store
