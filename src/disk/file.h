// File: the byte-addressed storage a disk image lives in. Disk readers and
// writers in this layer do all their I/O through it, so the same code runs on a
// real file descriptor (PosixFile, the hot path: pread/pwrite and
// SEEK_DATA/SEEK_HOLE) and on memory (MemFile, used by fuzzers and tests).
//
// A File is used by one thread at a time; it is not safe to share between
// threads without external locking, except for concurrent WriteAt calls on
// files that say ConcurrentWriteSafe().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/statusor.h"

namespace imagesmith::disk {

class File {
 public:
  virtual ~File() = default;

  // The name used in error messages (a path, or "<memory>").
  virtual const std::string& name() const = 0;
  // The current size in bytes.
  virtual StatusOr<uint64_t> Size() = 0;

  // Reads up to `len` bytes at `offset` into `buf`; returns how many were read,
  // which is less than `len` only at end of file. Errors are I/O failures.
  virtual StatusOr<size_t> ReadAt(uint64_t offset, size_t len, char* buf) = 0;
  // Writes all `len` bytes at `offset`, growing the file as needed.
  virtual Status WriteAt(uint64_t offset, const char* buf, size_t len) = 0;
  // Sets the size; growing leaves a hole that reads as zeros.
  virtual Status Truncate(uint64_t size) = 0;
  virtual Status Sync() = 0;

  // True when WriteAt may be called from several threads at once for ranges
  // that do not overlap (nothing else may run concurrently). PosixFile: yes
  // (pwrite); MemFile: no.
  virtual bool ConcurrentWriteSafe() const { return false; }

  // Sparse-file queries, as lseek(SEEK_DATA / SEEK_HOLE): the first offset at
  // or after `offset` that holds data (or the size if there is none), and the
  // first offset at or after `offset` that is a hole (the size at the latest).
  // Files without hole support report everything as data.
  virtual StatusOr<uint64_t> NextData(uint64_t offset) = 0;
  virtual StatusOr<uint64_t> NextHole(uint64_t offset) = 0;
  // Bytes the file occupies on its filesystem (st_blocks * 512 for a real
  // file, the size for memory).
  virtual StatusOr<uint64_t> AllocatedBytes() = 0;

  // Reads exactly `len` bytes or fails with DataLoss naming `what` and the
  // offset ("truncated: <what> at offset N needs M bytes, file has K").
  Status ReadExactAt(uint64_t offset, size_t len, char* buf, std::string_view what);
};

// Opens an existing file read-only. NotFound / PermissionDenied carry the path.
StatusOr<std::unique_ptr<File>> OpenFileForRead(const std::string& path);
// How a file made by CreateFileForWrite handles writes.
struct WriteFileOptions {
  // Write-behind: once this many bytes have been written since the last time,
  // ask the kernel to start writing the dirty range to storage
  // (sync_file_range(SYNC_FILE_RANGE_WRITE)), without waiting for it. 0 (the
  // default) leaves writeback to the kernel, which for a file that fits in
  // the dirty limits means nothing reaches the disk until someone syncs.
  // Streaming writers set it so that by the time they finish, most of a large
  // output is already on disk (a later fsync has little left to do) and the
  // page cache never holds more than a few chunks of their dirty data. It is
  // a hint: where the call is unsupported it is silently dropped, and it
  // never makes anything durable (Sync() still does that).
  uint64_t write_behind_bytes = 0;
};

// Creates (or truncates) `path` for writing, mode 0644.
StatusOr<std::unique_ptr<File>> CreateFileForWrite(const std::string& path,
                                                   const WriteFileOptions& options = {});

// The PosixFile's descriptor when `file` is one, else -1. Lets the raw path use
// copy_file_range between two real files.
int NativeFd(File& file);

// A File held in memory. Reads past the end are short; writes grow it.
// Everything is data (no holes). Copyable content, movable object.
class MemFile final : public File {
 public:
  explicit MemFile(std::string data = {}) : data_(std::move(data)) {}

  const std::string& name() const override { return name_; }
  StatusOr<uint64_t> Size() override { return data_.size(); }
  StatusOr<size_t> ReadAt(uint64_t offset, size_t len, char* buf) override;
  Status WriteAt(uint64_t offset, const char* buf, size_t len) override;
  Status Truncate(uint64_t size) override;
  Status Sync() override { return Status::Ok(); }
  StatusOr<uint64_t> NextData(uint64_t offset) override;
  StatusOr<uint64_t> NextHole(uint64_t offset) override;
  StatusOr<uint64_t> AllocatedBytes() override { return data_.size(); }

  const std::string& data() const { return data_; }

 private:
  std::string name_ = "<memory>";
  std::string data_;
};

}  // namespace imagesmith::disk
