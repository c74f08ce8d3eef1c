#include "disk/raw.h"

#include <algorithm>

#include "disk/bytes.h"
#include "disk/write_batch.h"

namespace imagesmith::disk {
namespace {

// Zero detection granularity and I/O size of the sparse copy. 4 MiB runs keep
// syscalls few; 64 KiB zero units match the smallest hole worth leaving.
constexpr uint64_t kZeroUnit = 64 << 10;
constexpr uint64_t kRunBytes = 4 << 20;

class RawReader final : public DiskReader {
 public:
  RawReader(std::unique_ptr<File> file, uint64_t size) : file_(std::move(file)), size_(size) {}

  DiskFormat format() const override { return DiskFormat::kRaw; }
  uint64_t virtual_size() const override { return size_; }

  Status Read(uint64_t offset, size_t len, char* buf) override {
    if (offset > size_ || len > size_ - offset) {
      return OutOfRangeError("read past the end of the disk");
    }
    ASSIGN_OR_RETURN(size_t got, file_->ReadAt(offset, len, buf));
    // The file shrank under us; treat the missing tail as zeros.
    std::fill(buf + got, buf + len, 0);
    return Status::Ok();
  }

  StatusOr<Extent> BlockStatus(uint64_t offset, uint64_t max_len) override {
    uint64_t end = offset + std::min(max_len, size_ - offset);
    ASSIGN_OR_RETURN(uint64_t data, file_->NextData(offset));
    if (data > offset) {
      return Extent{offset, std::min(data, end) - offset, ExtentKind::kUnallocated};
    }
    ASSIGN_OR_RETURN(uint64_t hole, file_->NextHole(offset));
    if (hole <= offset) hole = end;  // defensive: a filesystem that answers oddly
    return Extent{offset, std::min(hole, end) - offset, ExtentKind::kData};
  }

  StatusOr<DiskInfo> Info() override {
    DiskInfo info;
    info.format = DiskFormat::kRaw;
    info.virtual_size = size_;
    info.file_size = size_;
    ASSIGN_OR_RETURN(info.allocated_bytes, file_->AllocatedBytes());
    for (uint64_t p = 0; p < size_;) {
      ASSIGN_OR_RETURN(Extent e, BlockStatus(p, size_ - p));
      if (e.kind == ExtentKind::kData) info.data_bytes += e.length;
      p += e.length;
    }
    return info;
  }

  StatusOr<CheckResult> Check() override { return CheckResult{}; }

 private:
  std::unique_ptr<File> file_;
  uint64_t size_;
};

}  // namespace

StatusOr<std::unique_ptr<DiskReader>> OpenRaw(std::unique_ptr<File> file) {
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  return std::unique_ptr<DiskReader>(new RawReader(std::move(file), size));
}

Status WriteSparseBody(DiskReader& in, uint64_t size, File& out, uint64_t out_offset,
                       const ProgressFn& progress) {
  DataScanner scanner(in, size, kZeroUnit, kRunBytes);
  WriteBatch batch(out, WriteBatch::DefaultThreads());
  DataRun run;
  while (true) {
    ASSIGN_OR_RETURN(bool more, scanner.Next(&run));
    if (!more) break;
    // Coalesce consecutive nonzero units into one write.
    size_t i = 0;
    const size_t n = run.data.size();
    while (i < n) {
      size_t len = std::min<size_t>(kZeroUnit, n - i);
      if (IsAllZero(run.data.data() + i, len)) {
        i += len;
        continue;
      }
      size_t j = i + len;
      while (j < n) {
        size_t l2 = std::min<size_t>(kZeroUnit, n - j);
        if (IsAllZero(run.data.data() + j, l2)) break;
        j += l2;
      }
      batch.Add(out_offset + run.offset + i, run.data.data() + i, j - i);
      i = j;
    }
    RETURN_IF_ERROR(batch.Flush());
    if (progress) progress(scanner.position(), size);
  }
  if (progress) progress(size, size);
  return Status::Ok();
}

Status WriteRaw(DiskReader& in, File& out, const ProgressFn& progress) {
  RETURN_IF_ERROR(out.Truncate(in.virtual_size()));
  return WriteSparseBody(in, in.virtual_size(), out, 0, progress);
}

}  // namespace imagesmith::disk
