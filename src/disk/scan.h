// DataScanner: walks a DiskReader in order and yields only the parts that may
// hold nonzero bytes, as runs of whole `unit`-sized blocks read into one
// reusable buffer. Writers build on it, so every format skips holes the same
// way and holds at most one buffer of data at a time.
//
// Reading is double-buffered: while the caller processes one run, a
// background thread reads the next, so reads and writes overlap (qemu-img
// gets the same effect from its pool of I/O threads). The reader is only ever
// used by one thread at a time: Next() waits for the background read before
// it touches the reader again. Memory: two buffers of `max_run` bytes.
//
// Not thread-safe; owned by one writer. The reader must outlive the scanner
// and must not be used by anyone else while the scanner exists.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <string_view>
#include <vector>

#include "disk/disk.h"

namespace imagesmith::disk {

struct DataRun {
  uint64_t offset = 0;    // multiple of `unit`
  std::string_view data;  // whole units, except the last unit of the disk may be short
};

class DataScanner {
 public:
  // `unit` must be a power of two; `max_run` a multiple of it. Runs cover
  // [0, size) of `in`, where `size` may exceed in.virtual_size() (the excess
  // reads as zeros and is never yielded).
  DataScanner(DiskReader& in, uint64_t size, uint64_t unit, uint64_t max_run);

  // Fills `run` with the next range of units that overlap data extents and
  // returns true, or returns false when the disk is exhausted. The data stays
  // valid until the next call.
  StatusOr<bool> Next(DataRun* run);

  // How far the scan has got (for progress): the end of the last run
  // returned.
  uint64_t position() const { return done_; }

  ~DataScanner();
  DataScanner(const DataScanner&) = delete;
  DataScanner& operator=(const DataScanner&) = delete;

 private:
  // Finds the next run after pos_ and starts reading it into buffer `slot`.
  // Sets has_pending_ when there is one.
  Status Schedule(int slot);

  DiskReader& in_;
  uint64_t size_;
  uint64_t limit_;  // min(size_, in_.virtual_size())
  uint64_t unit_;
  uint64_t max_run_;
  uint64_t pos_ = 0;   // end of the last run scheduled
  uint64_t done_ = 0;  // end of the last run returned
  std::vector<char> bufs_[2];
  bool started_ = false;
  bool has_pending_ = false;
  int pending_slot_ = 0;
  DataRun pending_run_;
  std::future<Status> pending_read_;
};

// Reports progress as (bytes done, bytes total); may be empty.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

}  // namespace imagesmith::disk
