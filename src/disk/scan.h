// DataScanner: walks a DiskReader in order and yields only the parts that may
// hold nonzero bytes, as runs of whole `unit`-sized blocks read into one
// reusable buffer. Writers build on it, so every format skips holes the same
// way and holds at most one buffer of data at a time.
//
// Reading runs ahead of the caller: a background thread finds the next runs
// (BlockStatus) and reads them into a ring of kSlots buffers while the caller
// processes the current one, so reads and writes overlap (qemu-img gets the
// same effect from its pool of I/O threads and its 8 requests in flight).
// More than one run of read-ahead matters on a loaded machine: each time a
// thread sleeps and is woken it can wait milliseconds for a CPU, and with a
// single spare buffer that wait lands on the critical path of every run.
// From the first Next() on, the DiskReader is used only by that thread.
// Memory: kSlots buffers of `max_run` bytes.
//
// Not thread-safe; owned by one writer. The reader must outlive the scanner
// and must not be used by anyone else while the scanner exists.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "disk/disk.h"

namespace imagesmith::disk {

struct DataRun {
  uint64_t offset = 0;    // multiple of `unit`
  std::string_view data;  // whole units, except the last unit of the disk may be short
};

class DataScanner {
 public:
  // Buffers in the read-ahead ring: the one the caller holds, plus two being
  // filled or waiting.
  static constexpr int kSlots = 3;

  // `unit` must be a power of two; `max_run` a multiple of it. Runs cover
  // [0, size) of `in`, where `size` may exceed in.virtual_size() (the excess
  // reads as zeros and is never yielded).
  DataScanner(DiskReader& in, uint64_t size, uint64_t unit, uint64_t max_run);

  // Fills `run` with the next range of units that overlap data extents and
  // returns true, or returns false when the disk is exhausted. The data stays
  // valid until the next call. Returns the reader's error (BlockStatus or
  // Read) at the point in the disk where it happened.
  StatusOr<bool> Next(DataRun* run);

  // How far the scan has got (for progress): the end of the last run
  // returned.
  uint64_t position() const { return done_; }

  ~DataScanner();
  DataScanner(const DataScanner&) = delete;
  DataScanner& operator=(const DataScanner&) = delete;

 private:
  struct Slot {
    std::vector<char> buf;
    DataRun run;
  };

  // Finds the next run at or after pos_ (reader thread only). Sets *len = 0
  // when there is none.
  Status FindRun(uint64_t* start, size_t* len);
  // The background thread: finds and reads runs into free slots until the
  // disk is exhausted, a call fails, or the scanner is destroyed.
  void ReadAhead();

  DiskReader& in_;
  const uint64_t size_;
  const uint64_t limit_;  // min(size_, in_.virtual_size())
  const uint64_t unit_;
  const uint64_t max_run_;
  uint64_t pos_ = 0;      // reader thread: end of the last run found
  uint64_t done_ = 0;     // owner: end of the last run returned
  bool started_ = false;  // owner: the reader thread was started
  bool holding_ = false;  // owner: the caller holds slot `head_`

  std::mutex mu_;
  std::condition_variable cv_;
  Slot slots_[kSlots];     // a slot is the reader's while it fills it, then the owner's
  int head_ = 0;           // guarded by mu_: the oldest filled (or held) slot
  int filled_ = 0;         // guarded by mu_: filled slots, including a held one
  bool finished_ = false;  // guarded by mu_: the reader has nothing more to add
  Status error_;           // guarded by mu_: why the reader stopped early
  bool stop_ = false;      // guarded by mu_: the scanner is going away
  std::thread thread_;     // owned; joined by the destructor
};

// Reports progress as (bytes done, bytes total); may be empty.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

}  // namespace imagesmith::disk
