#include "disk/write_batch.h"

#include <algorithm>

namespace imagesmith::disk {
namespace {

// Writes are cut into pieces of this size so two threads share even a single
// large write; 1 MiB keeps the per-piece locking negligible (a piece takes
// ~0.3 ms to copy into the page cache).
constexpr size_t kPieceBytes = 1 << 20;

}  // namespace

WriteBatch::WriteBatch(File& out, int threads) : out_(out) {
  if (!out.ConcurrentWriteSafe()) return;
  for (int i = 1; i < threads; ++i) helpers_.emplace_back([this] { Helper(); });
}

WriteBatch::~WriteBatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : helpers_) t.join();
}

int WriteBatch::DefaultThreads() {
  unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(hw, 2u, 4u));
}

void WriteBatch::Add(uint64_t offset, const char* data, size_t len) {
  if (len == 0) return;
  // Merge with the previous write when it ends where this one starts.
  if (!queue_.empty()) {
    Piece& last = queue_.back();
    if (last.offset + last.len == offset && last.data + last.len == data) {
      last.len += len;
      return;
    }
  }
  queue_.push_back(Piece{offset, data, len});
}

Status WriteBatch::Flush() {
  if (helpers_.empty()) {
    Status s;
    for (const Piece& p : queue_) {
      s = out_.WriteAt(p.offset, p.data, p.len);
      if (!s.ok()) break;
    }
    queue_.clear();
    return s;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    pieces_.clear();
    for (const Piece& p : queue_) {
      for (size_t at = 0; at < p.len; at += kPieceBytes) {
        pieces_.push_back(Piece{p.offset + at, p.data + at, std::min(kPieceBytes, p.len - at)});
      }
    }
    queue_.clear();
    next_ = 0;
    error_ = Status::Ok();
    ++generation_;
  }
  work_cv_.notify_all();
  Drain();
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return busy_ == 0; });
  pieces_.clear();
  next_ = 0;
  return error_;
}

void WriteBatch::Drain() {
  while (true) {
    Piece p;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (next_ >= pieces_.size() || !error_.ok()) return;
      p = pieces_[next_++];
    }
    Status s = out_.WriteAt(p.offset, p.data, p.len);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.ok()) error_ = s;
    }
  }
}

void WriteBatch::Helper() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    ++busy_;
    lock.unlock();
    Drain();
    lock.lock();
    if (--busy_ == 0) done_cv_.notify_all();
  }
}

}  // namespace imagesmith::disk
