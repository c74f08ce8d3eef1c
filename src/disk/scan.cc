#include "disk/scan.h"

#include <algorithm>

namespace imagesmith::disk {

DataScanner::DataScanner(DiskReader& in, uint64_t size, uint64_t unit, uint64_t max_run)
    : in_(in),
      size_(size),
      limit_(std::min(size, in.virtual_size())),
      unit_(unit),
      max_run_(max_run) {}

Status DataScanner::FindRun(uint64_t* out_start, size_t* out_len) {
  *out_len = 0;
  // Find the first data byte at or after pos_.
  uint64_t data_start = limit_;
  uint64_t data_end = limit_;
  for (uint64_t p = pos_; p < limit_;) {
    ASSIGN_OR_RETURN(Extent e, in_.BlockStatus(p, limit_ - p));
    if (e.kind == ExtentKind::kData) {
      data_start = p;
      data_end = p + e.length;
      break;
    }
    p += e.length;
  }
  if (data_start >= limit_) {
    pos_ = size_;
    return Status::Ok();
  }
  uint64_t start = data_start / unit_ * unit_;
  start = std::max(start, pos_);
  uint64_t cap = std::min(start + max_run_, limit_);
  // Extend across directly following data extents up to the run cap.
  while (data_end < cap) {
    uint64_t next = (data_end + unit_ - 1) / unit_ * unit_;
    if (next >= cap) break;
    ASSIGN_OR_RETURN(Extent e, in_.BlockStatus(data_end, cap - data_end));
    if (e.kind == ExtentKind::kData) {
      data_end += e.length;
      continue;
    }
    // A hole: units wholly inside it end the run.
    uint64_t hole_end = data_end + e.length;
    if (hole_end >= next + unit_ || hole_end >= cap) {
      break;
    }
    data_end = hole_end;
  }
  uint64_t end = std::min((std::min(data_end, cap) + unit_ - 1) / unit_ * unit_, cap);
  if (end > limit_) end = limit_;
  *out_start = start;
  *out_len = static_cast<size_t>(end - start);
  pos_ = end;
  return Status::Ok();
}

void DataScanner::ReadAhead() {
  int tail = 0;  // the next slot to fill
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || filled_ < kSlots; });
      if (stop_) return;
    }
    // The slot at `tail` is free: the owner is done with it and nobody else
    // touches it until we publish it.
    uint64_t start = 0;
    size_t len = 0;
    Status s = FindRun(&start, &len);
    if (s.ok() && len != 0) {
      Slot& slot = slots_[tail];
      if (slot.buf.size() < len) slot.buf.resize(len);
      s = in_.Read(start, len, slot.buf.data());
      slot.run.offset = start;
      slot.run.data = std::string_view(slot.buf.data(), len);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!s.ok() || len == 0) {
      error_ = std::move(s);
      finished_ = true;
      cv_.notify_all();
      return;
    }
    ++filled_;
    tail = (tail + 1) % kSlots;
    cv_.notify_all();
  }
}

DataScanner::~DataScanner() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
}

StatusOr<bool> DataScanner::Next(DataRun* run) {
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] { ReadAhead(); });
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (holding_) {
    // Hand the slot the caller was using back to the reader.
    holding_ = false;
    head_ = (head_ + 1) % kSlots;
    --filled_;
    cv_.notify_all();
  }
  cv_.wait(lock, [this] { return filled_ > 0 || finished_; });
  if (filled_ == 0) {
    // Runs the reader published before it stopped have all been returned.
    RETURN_IF_ERROR(error_);
    done_ = size_;
    return false;
  }
  *run = slots_[head_].run;
  holding_ = true;
  done_ = run->offset + run->data.size();
  return true;
}

}  // namespace imagesmith::disk
