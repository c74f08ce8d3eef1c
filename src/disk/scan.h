// DataScanner: walks a DiskReader in order and yields only the parts that may
// hold nonzero bytes, as runs of whole `unit`-sized blocks read into one
// reusable buffer. Writers build on it, so every format skips holes the same
// way and holds at most one buffer of data at a time.
//
// Not thread-safe; owned by one writer.
#pragma once

#include <cstdint>
#include <functional>
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

  // How far the scan has got (for progress).
  uint64_t position() const { return pos_; }

 private:
  DiskReader& in_;
  uint64_t size_;
  uint64_t limit_;  // min(size_, in_.virtual_size())
  uint64_t unit_;
  uint64_t max_run_;
  uint64_t pos_ = 0;
  std::vector<char> buf_;
};

// Reports progress as (bytes done, bytes total); may be empty.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

}  // namespace imagesmith::disk
