// VHD (Virtual PC / Hyper-V / Azure) images: fixed and dynamic. See
// doc/disk-vhd.md for the layout and the rules enforced here.
//
// Fixed:   disk bytes, then a 512-byte footer.
// Dynamic: footer copy, 1024-byte dynamic header, block allocation table
//          (BAT), blocks (sector bitmap + data), footer.
// All integers are big-endian.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "disk/disk.h"
#include "disk/scan.h"

namespace imagesmith::disk {

inline constexpr uint64_t kVhdFooterSize = 512;
inline constexpr uint64_t kVhdDynamicHeaderSize = 1024;
inline constexpr uint32_t kVhdDefaultBlockSize = 2 << 20;
// The largest virtual size VHD readers accept: 2040 GiB.
inline constexpr uint64_t kVhdMaxSize = uint64_t{2040} << 30;
inline constexpr uint32_t kVhdTypeFixed = 2;
inline constexpr uint32_t kVhdTypeDynamic = 3;
inline constexpr uint32_t kVhdTypeDifferencing = 4;

// Cylinder/head/sector geometry as the VHD footer stores it.
struct ChsGeometry {
  uint16_t cylinders = 0;
  uint8_t heads = 0;
  uint8_t sectors_per_track = 0;
  uint64_t total_sectors() const {
    return uint64_t{cylinders} * heads * sectors_per_track;
  }
  friend bool operator==(const ChsGeometry&, const ChsGeometry&) = default;
};

// The geometry the VHD specification's algorithm assigns to a disk of
// `total_sectors` 512-byte sectors (capped at 65535 x 16 x 255). The product
// may be smaller than the disk.
ChsGeometry VhdGeometryFor(uint64_t total_sectors);

// One's complement of the byte sum of `data`, skipping the four checksum
// bytes at `checksum_offset`.
uint32_t VhdChecksum(const char* data, size_t len, size_t checksum_offset);

struct VhdFooter {
  uint32_t features = 2;
  uint32_t format_version = 0x00010000;
  uint64_t data_offset = ~uint64_t{0};  // dynamic header offset; all ones for fixed
  uint32_t timestamp = 0;               // seconds since 2000-01-01 00:00:00 UTC
  std::array<char, 4> creator_app{'w', 'i', 'n', ' '};
  uint32_t creator_version = 0x000a0000;
  uint32_t creator_os = 0x5769326b;  // "Wi2k"
  uint64_t original_size = 0;
  uint64_t current_size = 0;
  ChsGeometry geometry;
  uint32_t disk_type = kVhdTypeFixed;
  uint32_t checksum = 0;  // as stored; Serialize computes it
  std::array<uint8_t, 16> unique_id{};
  uint8_t saved_state = 0;

  // The size a guest sees. Follows the rule qemu and Hyper-V agree on: the
  // footer's current size, except for images from creators that size disks by
  // their CHS geometry (Virtual PC, older qemu), where it is the geometry's
  // product unless the geometry is the 65535x16x255 maximum.
  uint64_t VirtualSize() const;
  std::string CreatorString() const;

  // 512 bytes with a freshly computed checksum.
  std::string Serialize() const;
};

// Parses and validates a footer read at `offset` of `file_name`: cookie,
// checksum, version, disk type, size limits, data offset. Errors name the
// field and offset.
StatusOr<VhdFooter> ParseVhdFooter(const char* buf, uint64_t offset, const std::string& file_name);

struct VhdDynamicHeader {
  uint64_t table_offset = 0;
  uint32_t header_version = 0x00010000;
  uint32_t max_table_entries = 0;
  uint32_t block_size = kVhdDefaultBlockSize;
  uint32_t checksum = 0;

  // 1024 bytes with a freshly computed checksum.
  std::string Serialize() const;
};

StatusOr<VhdDynamicHeader> ParseVhdDynamicHeader(const char* buf, uint64_t offset,
                                                 const std::string& file_name);

// Opens a VHD. `file` must end with a VHD footer (OpenDisk probes this).
StatusOr<std::unique_ptr<DiskReader>> OpenVhd(std::unique_ptr<File> file);

struct VhdWriteOptions {
  bool dynamic = false;
  // Enforce Azure's rules: fixed only, virtual size a whole number of MiB.
  bool azure = false;
  // With `azure`, round a size that is not a whole MiB up (the padding reads
  // as zeros) instead of failing.
  bool round_up = false;
  // Seconds since 2000-01-01 for the footer; tests pin it.
  uint32_t timestamp = 0;
  // Footer unique ID; all zeros means "derive from the timestamp and size".
  std::array<uint8_t, 16> unique_id{};
};

// The virtual size a VHD written from a disk of `size` bytes gets: rounded up
// to a 512-byte sector, and with options.azure to a whole MiB if
// options.round_up is set. Fails with InvalidArgument explaining Azure's rule
// when the size is not a whole MiB and rounding was not asked for, when
// Azure is asked for with a dynamic VHD, or when the size exceeds 2040 GiB.
StatusOr<uint64_t> VhdOutputSize(uint64_t size, const VhdWriteOptions& options);

// Writes `in` to the empty file `out` as a VHD. Streams: memory use is one
// I/O buffer plus the BAT (4 bytes per 2 MiB block).
Status WriteVhd(DiskReader& in, File& out, const VhdWriteOptions& options,
                const ProgressFn& progress);

}  // namespace imagesmith::disk
