// Reading fixed and dynamic VHDs.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "disk/bytes.h"
#include "disk/vhd.h"

namespace imagesmith::disk {
namespace {

constexpr uint32_t kBatUnused = 0xffffffff;
// The BAT is held in memory; refuse tables larger than this (a 2040 GiB disk
// with 2 MiB blocks needs 4 MiB).
constexpr uint64_t kMaxBatBytes = 16 << 20;

class VhdFixedReader final : public DiskReader {
 public:
  VhdFixedReader(std::unique_ptr<File> file, VhdFooter footer, uint64_t file_size)
      : file_(std::move(file)), footer_(footer), file_size_(file_size) {}

  DiskFormat format() const override { return DiskFormat::kVhdFixed; }
  uint64_t virtual_size() const override { return footer_.VirtualSize(); }

  Status Read(uint64_t offset, size_t len, char* buf) override {
    if (offset > virtual_size() || len > virtual_size() - offset) {
      return OutOfRangeError("read past the end of the disk");
    }
    return file_->ReadExactAt(offset, len, buf, "VHD fixed data");
  }

  StatusOr<Extent> BlockStatus(uint64_t offset, uint64_t max_len) override {
    uint64_t end = offset + std::min(max_len, virtual_size() - offset);
    ASSIGN_OR_RETURN(uint64_t data, file_->NextData(offset));
    if (data > offset) {
      return Extent{offset, std::min(data, end) - offset, ExtentKind::kUnallocated};
    }
    ASSIGN_OR_RETURN(uint64_t hole, file_->NextHole(offset));
    if (hole <= offset) hole = end;
    return Extent{offset, std::min(hole, end) - offset, ExtentKind::kData};
  }

  StatusOr<DiskInfo> Info() override {
    DiskInfo info;
    info.format = DiskFormat::kVhdFixed;
    info.virtual_size = virtual_size();
    info.file_size = file_size_;
    ASSIGN_OR_RETURN(info.allocated_bytes, file_->AllocatedBytes());
    info.creator = footer_.CreatorString();
    for (uint64_t p = 0; p < info.virtual_size;) {
      ASSIGN_OR_RETURN(Extent e, BlockStatus(p, info.virtual_size - p));
      if (e.kind == ExtentKind::kData) info.data_bytes += e.length;
      p += e.length;
    }
    return info;
  }

  StatusOr<CheckResult> Check() override {
    CheckResult r;
    if (footer_.current_size != virtual_size()) {
      r.warnings.push_back("footer current size " + std::to_string(footer_.current_size) +
                           " differs from the CHS-derived size " +
                           std::to_string(virtual_size()));
    }
    if (file_size_ - kVhdFooterSize != footer_.current_size) {
      r.warnings.push_back("data area is " + std::to_string(file_size_ - kVhdFooterSize) +
                           " bytes but the footer's current size is " +
                           std::to_string(footer_.current_size));
    }
    return r;
  }

 private:
  std::unique_ptr<File> file_;
  VhdFooter footer_;
  uint64_t file_size_;
};

class VhdDynamicReader final : public DiskReader {
 public:
  VhdDynamicReader(std::unique_ptr<File> file, VhdFooter footer, VhdDynamicHeader header,
                   std::vector<uint32_t> bat, uint64_t file_size, bool copy_matches)
      : file_(std::move(file)),
        footer_(footer),
        header_(header),
        bat_(std::move(bat)),
        file_size_(file_size),
        copy_matches_(copy_matches),
        block_size_(header.block_size),
        bitmap_size_(DivRoundUp(header.block_size / 512, 8 * 512) * 512),
        bitmap_(bitmap_size_) {}

  DiskFormat format() const override { return DiskFormat::kVhdDynamic; }
  uint64_t virtual_size() const override { return footer_.VirtualSize(); }

  Status Read(uint64_t offset, size_t len, char* buf) override {
    if (offset > virtual_size() || len > virtual_size() - offset) {
      return OutOfRangeError("read past the end of the disk");
    }
    while (len > 0) {
      uint64_t block = offset / block_size_;
      uint64_t in_block = offset % block_size_;
      size_t n = static_cast<size_t>(std::min<uint64_t>(len, block_size_ - in_block));
      uint32_t entry = bat_[block];
      if (entry == kBatUnused) {
        std::memset(buf, 0, n);
      } else {
        uint64_t data = uint64_t{entry} * 512 + bitmap_size_;
        RETURN_IF_ERROR(LoadBitmap(block));
        RETURN_IF_ERROR(file_->ReadExactAt(data + in_block, n, buf, "VHD data block"));
        // Sectors the bitmap marks absent read as zeros.
        for (uint64_t s = in_block / 512; s * 512 < in_block + n; ++s) {
          if (!SectorPresent(s)) {
            uint64_t from = std::max<uint64_t>(s * 512, in_block);
            uint64_t to = std::min<uint64_t>((s + 1) * 512, in_block + n);
            std::memset(buf + (from - in_block), 0, to - from);
          }
        }
      }
      offset += n;
      buf += n;
      len -= n;
    }
    return Status::Ok();
  }

  StatusOr<Extent> BlockStatus(uint64_t offset, uint64_t max_len) override {
    uint64_t end = offset + std::min(max_len, virtual_size() - offset);
    uint64_t block = offset / block_size_;
    if (bat_[block] == kBatUnused) {
      uint64_t p = (block + 1) * block_size_;
      while (p < end && bat_[p / block_size_] == kBatUnused) p += block_size_;
      return Extent{offset, std::min(p, end) - offset, ExtentKind::kUnallocated};
    }
    RETURN_IF_ERROR(LoadBitmap(block));
    uint64_t base = block * block_size_;
    uint64_t s = (offset - base) / 512;
    bool present = SectorPresent(s);
    uint64_t block_end = std::min(end, base + block_size_);
    uint64_t p = base + (s + 1) * 512;
    while (p < block_end && SectorPresent((p - base) / 512) == present) p += 512;
    return Extent{offset, std::min(p, end) - offset,
                  present ? ExtentKind::kData : ExtentKind::kUnallocated};
  }

  StatusOr<DiskInfo> Info() override {
    DiskInfo info;
    info.format = DiskFormat::kVhdDynamic;
    info.virtual_size = virtual_size();
    info.file_size = file_size_;
    info.cluster_size = block_size_;
    info.creator = footer_.CreatorString();
    ASSIGN_OR_RETURN(info.allocated_bytes, file_->AllocatedBytes());
    for (uint64_t b = 0; b < bat_.size(); ++b) {
      if (bat_[b] != kBatUnused && b * block_size_ < info.virtual_size) {
        info.data_bytes += std::min<uint64_t>(block_size_, info.virtual_size - b * block_size_);
      }
    }
    return info;
  }

  StatusOr<CheckResult> Check() override {
    CheckResult r;
    if (!copy_matches_) {
      r.errors.push_back("the footer copy at offset 0 differs from the footer at the end");
    }
    if (footer_.current_size != virtual_size()) {
      r.warnings.push_back("footer current size " + std::to_string(footer_.current_size) +
                           " differs from the CHS-derived size " +
                           std::to_string(virtual_size()));
    }
    return r;
  }

 private:
  Status LoadBitmap(uint64_t block) {
    if (bitmap_block_ == block) return Status::Ok();
    bitmap_block_ = ~uint64_t{0};
    RETURN_IF_ERROR(file_->ReadExactAt(uint64_t{bat_[block]} * 512, bitmap_size_,
                                       bitmap_.data(), "VHD sector bitmap"));
    bitmap_block_ = block;
    return Status::Ok();
  }
  bool SectorPresent(uint64_t sector) const {
    return (static_cast<unsigned char>(bitmap_[sector / 8]) >> (7 - sector % 8)) & 1;
  }

  std::unique_ptr<File> file_;
  VhdFooter footer_;
  VhdDynamicHeader header_;
  std::vector<uint32_t> bat_;
  uint64_t file_size_;
  bool copy_matches_;
  uint64_t block_size_;
  uint64_t bitmap_size_;
  std::vector<char> bitmap_;
  uint64_t bitmap_block_ = ~uint64_t{0};
};

struct Range {
  uint64_t begin, end;
  std::string what;
};

StatusOr<std::unique_ptr<DiskReader>> OpenDynamic(std::unique_ptr<File> file,
                                                  const VhdFooter& footer, uint64_t file_size) {
  const std::string& name = file->name();
  const uint64_t footer_at = file_size - kVhdFooterSize;
  // The copy of the footer at offset 0.
  char copy[kVhdFooterSize];
  RETURN_IF_ERROR(file->ReadExactAt(0, kVhdFooterSize, copy, "VHD footer copy"));
  bool copy_matches = footer.Serialize() == std::string(copy, kVhdFooterSize);

  if (footer.data_offset < kVhdFooterSize ||
      footer.data_offset > footer_at - std::min(footer_at, kVhdDynamicHeaderSize)) {
    return DataLossError(name + ": VHD footer's dynamic header offset " +
                         Hex(footer.data_offset) + " lies outside the file (size " +
                         std::to_string(file_size) + ") or overlaps the footer copy");
  }
  char hbuf[kVhdDynamicHeaderSize];
  RETURN_IF_ERROR(file->ReadExactAt(footer.data_offset, kVhdDynamicHeaderSize, hbuf,
                                    "VHD dynamic header"));
  ASSIGN_OR_RETURN(VhdDynamicHeader header,
                   ParseVhdDynamicHeader(hbuf, footer.data_offset, name));

  const uint64_t vsize = footer.VirtualSize();
  const uint64_t needed = DivRoundUp(vsize, header.block_size);
  if (header.max_table_entries < needed) {
    return DataLossError(name + ": VHD BAT has " + std::to_string(header.max_table_entries) +
                         " entries but a disk of " + std::to_string(vsize) + " bytes needs " +
                         std::to_string(needed) + " blocks of " +
                         std::to_string(header.block_size));
  }
  const uint64_t bat_bytes = uint64_t{header.max_table_entries} * 4;
  if (bat_bytes > kMaxBatBytes) {
    return InvalidArgumentError(name + ": VHD BAT of " + std::to_string(bat_bytes) +
                                " bytes is larger than the supported " +
                                std::to_string(kMaxBatBytes));
  }
  std::vector<Range> meta = {
      {0, kVhdFooterSize, "footer copy"},
      {footer.data_offset, footer.data_offset + kVhdDynamicHeaderSize, "dynamic header"},
      {footer_at, file_size, "footer"}};
  const uint64_t bat_end = header.table_offset + DivRoundUp(bat_bytes, 512) * 512;
  if (header.table_offset > footer_at || bat_end > footer_at) {
    return DataLossError(name + ": VHD BAT at " + Hex(header.table_offset) + " (" +
                         std::to_string(bat_bytes) + " bytes) extends past the data area, which " +
                         "ends at " + Hex(footer_at));
  }
  for (const Range& m : meta) {
    if (header.table_offset < m.end && bat_end > m.begin) {
      return DataLossError(name + ": VHD BAT at " + Hex(header.table_offset) + " overlaps the " +
                           m.what + " at " + Hex(m.begin));
    }
  }
  meta.push_back({header.table_offset, bat_end, "BAT"});

  std::vector<char> raw(bat_bytes);
  RETURN_IF_ERROR(file->ReadExactAt(header.table_offset, bat_bytes, raw.data(), "VHD BAT"));
  std::vector<uint32_t> bat(header.max_table_entries);
  const uint64_t bitmap_size = DivRoundUp(header.block_size / 512, 8 * 512) * 512;
  const uint64_t block_span = bitmap_size + header.block_size;
  std::vector<uint32_t> used;
  for (uint64_t i = 0; i < bat.size(); ++i) {
    bat[i] = LoadBe32(raw.data() + 4 * i);
    if (bat[i] == kBatUnused) continue;
    const uint64_t start = uint64_t{bat[i]} * 512;
    const uint64_t disk_bytes =
        i * header.block_size < vsize ? std::min<uint64_t>(header.block_size,
                                                           vsize - i * header.block_size)
                                      : 0;
    const std::string where = "VHD BAT entry " + std::to_string(i) + " (at offset " +
                              Hex(header.table_offset + 4 * i) + ") points to " + Hex(start);
    if (start + bitmap_size + disk_bytes > footer_at) {
      return DataLossError(name + ": " + where + ", past the end of the data area at " +
                           Hex(footer_at));
    }
    for (const Range& m : meta) {
      if (start < m.end && start + bitmap_size + disk_bytes > m.begin) {
        return DataLossError(name + ": " + where + ", which overlaps the " + m.what + " at " +
                             Hex(m.begin));
      }
    }
    used.push_back(bat[i]);
  }
  // Blocks must not overlap each other.
  std::sort(used.begin(), used.end());
  for (size_t i = 1; i < used.size(); ++i) {
    if (uint64_t{used[i]} * 512 < uint64_t{used[i - 1]} * 512 + block_span) {
      return DataLossError(name + ": VHD blocks at " + Hex(uint64_t{used[i - 1]} * 512) +
                           " and " + Hex(uint64_t{used[i]} * 512) + " overlap");
    }
  }
  return std::unique_ptr<DiskReader>(
      new VhdDynamicReader(std::move(file), footer, header, std::move(bat), file_size,
                           copy_matches));
}

}  // namespace

StatusOr<std::unique_ptr<DiskReader>> OpenVhd(std::unique_ptr<File> file) {
  ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  if (file_size < kVhdFooterSize) {
    return DataLossError(file->name() + ": too small to be a VHD (" + std::to_string(file_size) +
                         " bytes)");
  }
  const uint64_t footer_at = file_size - kVhdFooterSize;
  char buf[kVhdFooterSize];
  RETURN_IF_ERROR(file->ReadExactAt(footer_at, kVhdFooterSize, buf, "VHD footer"));
  ASSIGN_OR_RETURN(VhdFooter footer, ParseVhdFooter(buf, footer_at, file->name()));
  if (footer.disk_type == kVhdTypeFixed) {
    if (footer.VirtualSize() > footer_at) {
      return DataLossError(file->name() + ": truncated fixed VHD: the footer declares " +
                           std::to_string(footer.VirtualSize()) + " bytes of data but only " +
                           std::to_string(footer_at) + " precede the footer");
    }
    return std::unique_ptr<DiskReader>(
        new VhdFixedReader(std::move(file), footer, file_size));
  }
  return OpenDynamic(std::move(file), footer, file_size);
}

}  // namespace imagesmith::disk
