#include "disk/scan.h"

#include <algorithm>

namespace imagesmith::disk {

DataScanner::DataScanner(DiskReader& in, uint64_t size, uint64_t unit, uint64_t max_run)
    : in_(in),
      size_(size),
      limit_(std::min(size, in.virtual_size())),
      unit_(unit),
      max_run_(max_run) {}

StatusOr<bool> DataScanner::Next(DataRun* run) {
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
    return false;
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
  if (buf_.size() < len) buf_.resize(len);
  RETURN_IF_ERROR(in_.Read(start, len, buf_.data()));
  run->offset = start;
  run->data = std::string_view(buf_.data(), len);
  pos_ = end;
  return true;
}

}  // namespace imagesmith::disk
