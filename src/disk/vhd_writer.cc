// Writing fixed and dynamic VHDs.
#include <sys/random.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <vector>

#include "disk/bytes.h"
#include "disk/raw.h"
#include "disk/vhd.h"
#include "disk/write_batch.h"

namespace imagesmith::disk {
namespace {

// Granularity of the holes left inside an allocated dynamic block, as in the
// raw writer.
constexpr size_t kSparseUnit = 64 << 10;

// Seconds between the Unix epoch and the VHD epoch (2000-01-01 UTC).
constexpr int64_t kVhdEpoch = 946684800;

VhdFooter MakeFooter(uint64_t size, const VhdWriteOptions& options) {
  VhdFooter f;
  f.timestamp = options.timestamp != 0
                    ? options.timestamp
                    : static_cast<uint32_t>(std::max<int64_t>(0, std::time(nullptr) - kVhdEpoch));
  f.original_size = size;
  f.current_size = size;
  f.geometry = VhdGeometryFor(size / 512);
  f.disk_type = options.dynamic ? kVhdTypeDynamic : kVhdTypeFixed;
  f.data_offset = options.dynamic ? kVhdFooterSize : ~uint64_t{0};
  f.unique_id = options.unique_id;
  if (f.unique_id == std::array<uint8_t, 16>{}) {
    if (::getrandom(f.unique_id.data(), f.unique_id.size(), 0) != 16) {
      // Not worth failing a conversion for: fall back to time and size.
      StoreBe64(reinterpret_cast<char*>(f.unique_id.data()), size);
      StoreBe64(reinterpret_cast<char*>(f.unique_id.data()) + 8,
                static_cast<uint64_t>(std::time(nullptr)));
    }
    // RFC 4122 version 4 / variant bits, as Windows tools write them.
    f.unique_id[6] = static_cast<uint8_t>((f.unique_id[6] & 0x0f) | 0x40);
    f.unique_id[8] = static_cast<uint8_t>((f.unique_id[8] & 0x3f) | 0x80);
  }
  return f;
}

Status WriteFixed(DiskReader& in, File& out, uint64_t size, const VhdFooter& footer,
                  const ProgressFn& progress) {
  RETURN_IF_ERROR(out.Truncate(size));
  RETURN_IF_ERROR(WriteSparseBody(in, size, out, 0, progress));
  std::string f = footer.Serialize();
  return out.WriteAt(size, f.data(), f.size());
}

Status WriteDynamic(DiskReader& in, File& out, uint64_t size, const VhdFooter& footer,
                    const ProgressFn& progress) {
  const uint64_t block_size = kVhdDefaultBlockSize;
  const uint64_t entries = DivRoundUp(size, block_size);
  const uint64_t bitmap_size = DivRoundUp(block_size / 512, 8 * 512) * 512;
  VhdDynamicHeader header;
  header.table_offset = kVhdFooterSize + kVhdDynamicHeaderSize;
  header.max_table_entries = static_cast<uint32_t>(entries);
  header.block_size = static_cast<uint32_t>(block_size);
  const uint64_t bat_bytes = DivRoundUp(entries * 4, 512) * 512;
  // Place blocks so their data (after the 512-byte bitmap) starts on a 4 KiB
  // boundary, which keeps block data aligned with host pages.
  uint64_t next = header.table_offset + bat_bytes;
  next = DivRoundUp(next + bitmap_size, 4096) * 4096 - bitmap_size;

  std::vector<uint32_t> bat(entries, 0xffffffff);
  const std::string bitmap(bitmap_size, '\xff');

  DataScanner scanner(in, size, block_size, 2 * block_size);
  WriteBatch batch(out, WriteBatch::DefaultThreads());
  DataRun run;
  while (true) {
    ASSIGN_OR_RETURN(bool more, scanner.Next(&run));
    if (!more) break;
    for (size_t i = 0; i < run.data.size(); i += block_size) {
      size_t len = std::min<size_t>(block_size, run.data.size() - i);
      const char* data = run.data.data() + i;
      if (IsAllZero(data, len)) continue;
      const uint64_t block = (run.offset + i) / block_size;
      batch.Add(next, bitmap.data(), bitmap.size());
      // Within the block, write only the units that hold a nonzero byte; the
      // rest stay holes in the host file and read as zeros, so a mostly
      // empty block costs no space (qemu-img leaves the same holes). The
      // footer written after the last block fixes the file size.
      for (size_t u = 0; u < len; u += kSparseUnit) {
        const size_t ulen = std::min<size_t>(kSparseUnit, len - u);
        if (!IsAllZero(data + u, ulen)) batch.Add(next + bitmap_size + u, data + u, ulen);
      }
      bat[block] = static_cast<uint32_t>(next / 512);
      next += bitmap_size + block_size;
    }
    RETURN_IF_ERROR(batch.Flush());
    if (progress) progress(scanner.position(), size);
  }
  std::string bat_buf(bat_bytes, '\xff');
  for (uint64_t i = 0; i < entries; ++i) StoreBe32(bat_buf.data() + 4 * i, bat[i]);
  std::string f = footer.Serialize();
  std::string h = header.Serialize();
  RETURN_IF_ERROR(out.WriteAt(header.table_offset, bat_buf.data(), bat_buf.size()));
  RETURN_IF_ERROR(out.WriteAt(kVhdFooterSize, h.data(), h.size()));
  RETURN_IF_ERROR(out.WriteAt(0, f.data(), f.size()));
  RETURN_IF_ERROR(out.WriteAt(next, f.data(), f.size()));
  if (progress) progress(size, size);
  return Status::Ok();
}

}  // namespace

Status WriteVhd(DiskReader& in, File& out, const VhdWriteOptions& options,
                const ProgressFn& progress) {
  ASSIGN_OR_RETURN(uint64_t size, VhdOutputSize(in.virtual_size(), options));
  VhdFooter footer = MakeFooter(size, options);
  if (options.dynamic) return WriteDynamic(in, out, size, footer, progress);
  return WriteFixed(in, out, size, footer, progress);
}

}  // namespace imagesmith::disk
