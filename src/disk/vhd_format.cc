// VHD footer and dynamic header encoding, validation and CHS geometry.
#include <algorithm>
#include <cstring>

#include "disk/bytes.h"
#include "disk/vhd.h"

namespace imagesmith::disk {
namespace {

// Footer field offsets.
constexpr size_t kCookie = 0, kFeatures = 8, kVersion = 12, kDataOffset = 16, kTimestamp = 24,
                 kCreatorApp = 28, kCreatorVersion = 32, kCreatorOs = 36, kOriginalSize = 40,
                 kCurrentSize = 48, kGeometry = 56, kDiskType = 60, kChecksum = 64,
                 kUniqueId = 68, kSavedState = 84;
// Dynamic header field offsets.
constexpr size_t kDynCookie = 0, kDynDataOffset = 8, kDynTableOffset = 16, kDynVersion = 24,
                 kDynMaxEntries = 28, kDynBlockSize = 32, kDynChecksum = 36;

Status FieldError(const std::string& file, uint64_t offset, std::string_view what) {
  return DataLossError(file + ": invalid VHD " + std::string(what) + " (structure at offset " +
                       std::to_string(offset) + ")");
}

}  // namespace

ChsGeometry VhdGeometryFor(uint64_t total_sectors) {
  // The specification's algorithm: try 17, then 31, then 63 sectors per track
  // with as few heads as fit, and fall back to 255 sectors x 16 heads for
  // large disks. Cylinders are rounded down, so the product can fall short.
  total_sectors = std::min<uint64_t>(total_sectors, uint64_t{65535} * 16 * 255);
  uint64_t spt, heads, cyl_times_heads;
  if (total_sectors >= uint64_t{65535} * 16 * 63) {
    spt = 255;
    heads = 16;
    cyl_times_heads = total_sectors / spt;
  } else {
    spt = 17;
    cyl_times_heads = total_sectors / spt;
    heads = std::max<uint64_t>((cyl_times_heads + 1023) / 1024, 4);
    if (cyl_times_heads >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cyl_times_heads = total_sectors / spt;
    }
    if (cyl_times_heads >= heads * 1024) {
      spt = 63;
      heads = 16;
      cyl_times_heads = total_sectors / spt;
    }
  }
  ChsGeometry g;
  g.cylinders = static_cast<uint16_t>(std::min<uint64_t>(cyl_times_heads / heads, 65535));
  g.heads = static_cast<uint8_t>(heads);
  g.sectors_per_track = static_cast<uint8_t>(spt);
  return g;
}

uint32_t VhdChecksum(const char* data, size_t len, size_t checksum_offset) {
  uint32_t sum = 0;
  for (size_t i = 0; i < len; ++i) {
    if (i >= checksum_offset && i < checksum_offset + 4) continue;
    sum += static_cast<unsigned char>(data[i]);
  }
  return ~sum;
}

uint64_t VhdFooter::VirtualSize() const {
  static constexpr const char* kSizeFromFooter[] = {"win ", "qem2", "d2v ", "CTXS"};
  bool footer_size = std::memcmp(creator_app.data(), "tap\0", 4) == 0;
  for (const char* c : kSizeFromFooter) {
    if (std::memcmp(creator_app.data(), c, 4) == 0) footer_size = true;
  }
  uint64_t chs = geometry.total_sectors();
  if (footer_size || chs == uint64_t{65535} * 16 * 255) return current_size;
  return chs * 512;
}

std::string VhdFooter::CreatorString() const {
  std::string s;
  for (char c : creator_app) s.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return s;
}

std::string VhdFooter::Serialize() const {
  std::string b(kVhdFooterSize, '\0');
  char* p = b.data();
  std::memcpy(p + kCookie, "conectix", 8);
  StoreBe32(p + kFeatures, features);
  StoreBe32(p + kVersion, format_version);
  StoreBe64(p + kDataOffset, data_offset);
  StoreBe32(p + kTimestamp, timestamp);
  std::memcpy(p + kCreatorApp, creator_app.data(), 4);
  StoreBe32(p + kCreatorVersion, creator_version);
  StoreBe32(p + kCreatorOs, creator_os);
  StoreBe64(p + kOriginalSize, original_size);
  StoreBe64(p + kCurrentSize, current_size);
  StoreBe16(p + kGeometry, geometry.cylinders);
  p[kGeometry + 2] = static_cast<char>(geometry.heads);
  p[kGeometry + 3] = static_cast<char>(geometry.sectors_per_track);
  StoreBe32(p + kDiskType, disk_type);
  std::memcpy(p + kUniqueId, unique_id.data(), 16);
  p[kSavedState] = static_cast<char>(saved_state);
  StoreBe32(p + kChecksum, VhdChecksum(p, kVhdFooterSize, kChecksum));
  return b;
}

StatusOr<VhdFooter> ParseVhdFooter(const char* p, uint64_t offset, const std::string& file) {
  if (std::memcmp(p + kCookie, "conectix", 8) != 0) {
    return FieldError(file, offset, "footer: cookie is not \"conectix\"");
  }
  VhdFooter f;
  f.checksum = LoadBe32(p + kChecksum);
  uint32_t computed = VhdChecksum(p, kVhdFooterSize, kChecksum);
  if (computed != f.checksum) {
    return FieldError(file, offset, "footer: checksum field (offset " +
                                        std::to_string(offset + kChecksum) + ") is " +
                                        Hex(f.checksum) + " but the footer sums to " +
                                        Hex(computed));
  }
  f.features = LoadBe32(p + kFeatures);
  f.format_version = LoadBe32(p + kVersion);
  f.data_offset = LoadBe64(p + kDataOffset);
  f.timestamp = LoadBe32(p + kTimestamp);
  std::memcpy(f.creator_app.data(), p + kCreatorApp, 4);
  f.creator_version = LoadBe32(p + kCreatorVersion);
  f.creator_os = LoadBe32(p + kCreatorOs);
  f.original_size = LoadBe64(p + kOriginalSize);
  f.current_size = LoadBe64(p + kCurrentSize);
  f.geometry.cylinders = LoadBe16(p + kGeometry);
  f.geometry.heads = static_cast<uint8_t>(p[kGeometry + 2]);
  f.geometry.sectors_per_track = static_cast<uint8_t>(p[kGeometry + 3]);
  f.disk_type = LoadBe32(p + kDiskType);
  std::memcpy(f.unique_id.data(), p + kUniqueId, 16);
  f.saved_state = static_cast<uint8_t>(p[kSavedState]);

  if ((f.format_version >> 16) != 1) {
    return FieldError(file, offset, "footer: file format version " + Hex(f.format_version) +
                                        " (only major version 1 exists)");
  }
  if (f.disk_type == kVhdTypeDifferencing) {
    return UnimplementedError(file + ": differencing VHDs (with a parent disk) are not supported");
  }
  if (f.disk_type != kVhdTypeFixed && f.disk_type != kVhdTypeDynamic) {
    return FieldError(file, offset, "footer: disk type " + std::to_string(f.disk_type) +
                                        " (expected 2 fixed or 3 dynamic)");
  }
  uint64_t vsize = f.VirtualSize();
  if (vsize > kVhdMaxSize) {
    return FieldError(file, offset, "footer: virtual size " + std::to_string(vsize) +
                                        " exceeds the VHD maximum of 2040 GiB");
  }
  if (f.disk_type == kVhdTypeDynamic && f.data_offset % 512 != 0) {
    return FieldError(file, offset, "footer: dynamic header offset " + Hex(f.data_offset) +
                                        " is not a multiple of 512");
  }
  return f;
}

std::string VhdDynamicHeader::Serialize() const {
  std::string b(kVhdDynamicHeaderSize, '\0');
  char* p = b.data();
  std::memcpy(p + kDynCookie, "cxsparse", 8);
  StoreBe64(p + kDynDataOffset, ~uint64_t{0});
  StoreBe64(p + kDynTableOffset, table_offset);
  StoreBe32(p + kDynVersion, header_version);
  StoreBe32(p + kDynMaxEntries, max_table_entries);
  StoreBe32(p + kDynBlockSize, block_size);
  StoreBe32(p + kDynChecksum, VhdChecksum(p, kVhdDynamicHeaderSize, kDynChecksum));
  return b;
}

StatusOr<VhdDynamicHeader> ParseVhdDynamicHeader(const char* p, uint64_t offset,
                                                 const std::string& file) {
  if (std::memcmp(p + kDynCookie, "cxsparse", 8) != 0) {
    return FieldError(file, offset, "dynamic header: cookie is not \"cxsparse\"");
  }
  VhdDynamicHeader h;
  h.checksum = LoadBe32(p + kDynChecksum);
  uint32_t computed = VhdChecksum(p, kVhdDynamicHeaderSize, kDynChecksum);
  if (computed != h.checksum) {
    return FieldError(file, offset, "dynamic header: checksum is " + Hex(h.checksum) +
                                        " but the header sums to " + Hex(computed));
  }
  h.table_offset = LoadBe64(p + kDynTableOffset);
  h.header_version = LoadBe32(p + kDynVersion);
  h.max_table_entries = LoadBe32(p + kDynMaxEntries);
  h.block_size = LoadBe32(p + kDynBlockSize);
  if (h.header_version != 0x00010000) {
    return FieldError(file, offset,
                      "dynamic header: version " + Hex(h.header_version) + " (expected 0x10000)");
  }
  if (h.block_size < 512 || h.block_size > (256u << 20) ||
      (h.block_size & (h.block_size - 1)) != 0) {
    return FieldError(file, offset, "dynamic header: block size " + std::to_string(h.block_size) +
                                        " (must be a power of two from 512 B to 256 MiB)");
  }
  if (h.table_offset % 512 != 0) {
    return FieldError(file, offset, "dynamic header: BAT offset " + Hex(h.table_offset) +
                                        " is not a multiple of 512");
  }
  return h;
}

StatusOr<uint64_t> VhdOutputSize(uint64_t size, const VhdWriteOptions& options) {
  constexpr uint64_t kMiB = 1 << 20;
  if (options.azure && options.dynamic) {
    return InvalidArgumentError(
        "Azure accepts only fixed VHDs; use --format vhd (fixed) for an Azure disk");
  }
  uint64_t out = DivRoundUp(size, 512) * 512;
  if (options.azure && out % kMiB != 0) {
    if (!options.round_up) {
      return InvalidArgumentError(
          "Azure requires a VHD whose virtual size is a whole number of MiB; the disk is " +
          std::to_string(size) + " bytes (" + std::to_string(size % kMiB) +
          " bytes past a MiB boundary). Pass --round-up to pad it to " +
          std::to_string(DivRoundUp(size, kMiB) * kMiB) + " bytes");
    }
    out = DivRoundUp(size, kMiB) * kMiB;
  }
  if (out > kVhdMaxSize) {
    return InvalidArgumentError("disk of " + std::to_string(size) +
                                " bytes exceeds the VHD maximum of 2040 GiB");
  }
  return out;
}

}  // namespace imagesmith::disk
