// WriteBatch: performs a writer's output writes for one chunk of the disk on
// several threads at once.
//
// Converting a disk is dominated by the kernel copying the output into the
// page cache (about 80% of the CPU time for a raw or VHD copy, in a profile
// of the bench/disk conversion); reading the source from the page cache costs
// a tenth of that. One thread doing every write leaves the second core of a
// small build machine idle, so a writer queues the writes of one chunk here
// and Flush() spreads them over the calling thread and helper threads
// (qemu-img gets the same effect from its pool of I/O workers).
//
// Only files that allow concurrent writes at distinct offsets
// (File::ConcurrentWriteSafe(), i.e. real files) get helpers; for others
// Flush() writes in order on the calling thread.
//
// Owned and used by one thread (the writer); the helper threads are private,
// started by the constructor and joined by the destructor. Memory: none beyond
// the queued (offset, pointer, length) entries; the caller owns the bytes.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "disk/file.h"

namespace imagesmith::disk {

class WriteBatch {
 public:
  // `threads` is the total including the caller; values below 2, or an `out`
  // that is not ConcurrentWriteSafe(), mean no helpers. `out` must outlive
  // the batch.
  WriteBatch(File& out, int threads);
  ~WriteBatch();
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  // Queues a write of `len` bytes at `offset`. The bytes must stay valid and
  // unchanged until Flush() returns. Queued ranges must not overlap.
  void Add(uint64_t offset, const char* data, size_t len);

  // Performs every queued write and waits for all of them; the queue is empty
  // afterwards. Returns the first error any write hit (the others may or may
  // not have been written).
  Status Flush();

  // The number of threads to use for a conversion on this machine: the
  // hardware threads, at least 2 and at most 4.
  static int DefaultThreads();

 private:
  struct Piece {
    uint64_t offset;
    const char* data;
    size_t len;
  };

  void Helper();
  // Takes and writes pieces until none are left; records the first error.
  void Drain();

  File& out_;
  std::vector<Piece> queue_;  // owner thread only, until Flush() publishes it

  std::mutex mu_;
  std::condition_variable work_cv_;  // helpers wait for a generation or stop
  std::condition_variable done_cv_;  // Flush waits for busy_ == 0
  std::vector<Piece> pieces_;        // guarded by mu_ (read-only while a flush runs)
  size_t next_ = 0;                  // guarded by mu_: next piece to take
  int busy_ = 0;                     // guarded by mu_: helpers inside Drain()
  uint64_t generation_ = 0;          // guarded by mu_: bumped per Flush
  bool stop_ = false;                // guarded by mu_
  Status error_;                     // guarded by mu_: first failure of this flush
  std::vector<std::thread> helpers_;
};

}  // namespace imagesmith::disk
