#include "disk/scan.h"

#include <algorithm>

namespace imagesmith::disk {

DataScanner::DataScanner(DiskReader& in, uint64_t size, uint64_t unit, uint64_t max_run)
    : in_(in),
      size_(size),
      limit_(std::min(size, in.virtual_size())),
      unit_(unit),
      max_run_(max_run) {}

Status DataScanner::Schedule(int slot) {
  has_pending_ = false;
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
  size_t len = static_cast<size_t>(end - start);
  std::vector<char>& buf = bufs_[slot];
  if (buf.size() < len) buf.resize(len);
  pending_run_.offset = start;
  pending_run_.data = std::string_view(buf.data(), len);
  pending_slot_ = slot;
  has_pending_ = true;
  pos_ = end;
  DiskReader* in = &in_;
  char* dst = buf.data();
  pending_read_ = std::async(std::launch::async, [in, start, len, dst]() {
    return in->Read(start, len, dst);
  });
  return Status::Ok();
}

DataScanner::~DataScanner() {
  if (pending_read_.valid()) pending_read_.wait();
}

StatusOr<bool> DataScanner::Next(DataRun* run) {
  if (!started_) {
    started_ = true;
    RETURN_IF_ERROR(Schedule(0));
  }
  if (!has_pending_) {
    done_ = size_;
    return false;
  }
  RETURN_IF_ERROR(pending_read_.get());
  *run = pending_run_;
  done_ = pending_run_.offset + pending_run_.data.size();
  // Start on the next run while the caller works on this one.
  RETURN_IF_ERROR(Schedule(1 - pending_slot_));
  return true;
}

}  // namespace imagesmith::disk
