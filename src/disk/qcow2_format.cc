// qcow2 header encoding and validation.
#include <cstring>

#include "disk/bytes.h"
#include "disk/qcow2.h"

namespace imagesmith::disk {
namespace {

constexpr uint64_t kIncompatDirty = 1 << 0;
constexpr uint64_t kIncompatCorrupt = 1 << 1;
constexpr uint64_t kIncompatExternalData = 1 << 2;
constexpr uint64_t kIncompatCompressionType = 1 << 3;
constexpr uint64_t kIncompatExtendedL2 = 1 << 4;

Status HeaderError(const std::string& file, std::string_view field, uint64_t field_offset,
                   const std::string& why) {
  return DataLossError(file + ": invalid qcow2 header field " + std::string(field) +
                       " (offset " + std::to_string(field_offset) + "): " + why);
}

}  // namespace

std::string Qcow2Header::Serialize() const {
  std::string b(std::max<uint32_t>(header_length, 104), '\0');
  char* p = b.data();
  std::memcpy(p, kQcow2Magic, 4);
  StoreBe32(p + 4, version);
  StoreBe64(p + 8, backing_file_offset);
  StoreBe32(p + 16, backing_file_size);
  StoreBe32(p + 20, cluster_bits);
  StoreBe64(p + 24, size);
  StoreBe32(p + 32, crypt_method);
  StoreBe32(p + 36, l1_size);
  StoreBe64(p + 40, l1_table_offset);
  StoreBe64(p + 48, refcount_table_offset);
  StoreBe32(p + 56, refcount_table_clusters);
  StoreBe32(p + 60, nb_snapshots);
  StoreBe64(p + 64, snapshots_offset);
  StoreBe64(p + 72, incompatible_features);
  StoreBe64(p + 80, compatible_features);
  StoreBe64(p + 88, autoclear_features);
  StoreBe32(p + 96, refcount_order);
  StoreBe32(p + 100, static_cast<uint32_t>(b.size()));
  if (b.size() > 104) p[104] = static_cast<char>(compression_type);
  return b;
}

StatusOr<Qcow2Header> ParseQcow2Header(const char* p, size_t len, uint64_t file_size,
                                       const std::string& file) {
  if (len < 72) {
    return DataLossError(file + ": truncated qcow2 header: " + std::to_string(len) +
                         " bytes, at least 72 needed");
  }
  if (std::memcmp(p, kQcow2Magic, 4) != 0) {
    return HeaderError(file, "magic", 0, "not \"QFI\\xfb\"");
  }
  Qcow2Header h;
  h.version = LoadBe32(p + 4);
  if (h.version != 2 && h.version != 3) {
    return UnimplementedError(file + ": qcow2 version " + std::to_string(h.version) +
                              " is not supported (only 2 and 3)");
  }
  h.backing_file_offset = LoadBe64(p + 8);
  h.backing_file_size = LoadBe32(p + 16);
  h.cluster_bits = LoadBe32(p + 20);
  h.size = LoadBe64(p + 24);
  h.crypt_method = LoadBe32(p + 32);
  h.l1_size = LoadBe32(p + 36);
  h.l1_table_offset = LoadBe64(p + 40);
  h.refcount_table_offset = LoadBe64(p + 48);
  h.refcount_table_clusters = LoadBe32(p + 56);
  h.nb_snapshots = LoadBe32(p + 60);
  h.snapshots_offset = LoadBe64(p + 64);
  if (h.version == 3) {
    if (len < 104) {
      return DataLossError(file + ": truncated qcow2 v3 header: " + std::to_string(len) +
                           " bytes, at least 104 needed");
    }
    h.incompatible_features = LoadBe64(p + 72);
    h.compatible_features = LoadBe64(p + 80);
    h.autoclear_features = LoadBe64(p + 88);
    h.refcount_order = LoadBe32(p + 96);
    h.header_length = LoadBe32(p + 100);
  } else {
    h.header_length = 72;
  }

  if (h.cluster_bits < kQcow2MinClusterBits || h.cluster_bits > kQcow2MaxClusterBits) {
    return HeaderError(file, "cluster_bits", 20,
                       std::to_string(h.cluster_bits) + " is outside 9..21");
  }
  const uint64_t cs = h.cluster_size();
  if (h.version == 3) {
    if (h.header_length < 104 || h.header_length > cs || h.header_length % 8 != 0) {
      return HeaderError(file, "header_length", 100,
                         std::to_string(h.header_length) +
                             " (must be a multiple of 8 from 104 to the cluster size)");
    }
    if (h.header_length > 104) {
      if (len < 105) return DataLossError(file + ": truncated qcow2 header");
      h.compression_type = static_cast<uint8_t>(p[104]);
    }
    if (h.refcount_order > 6) {
      return HeaderError(file, "refcount_order", 96,
                         std::to_string(h.refcount_order) + " (at most 6: 64-bit refcounts)");
    }
  }
  if (h.backing_file_offset != 0) {
    return UnimplementedError(file + ": qcow2 images with a backing file are not supported");
  }
  if (h.crypt_method != 0) {
    return UnimplementedError(file + ": encrypted qcow2 images are not supported");
  }
  uint64_t incompat = h.incompatible_features;
  if (incompat & kIncompatCorrupt) {
    return DataLossError(file + ": qcow2 image is marked corrupt (incompatible feature bit 1); "
                                "repair it with qemu-img check -r all");
  }
  if (incompat & kIncompatExternalData) {
    return UnimplementedError(file + ": qcow2 images with an external data file are not supported");
  }
  if (incompat & kIncompatExtendedL2) {
    return UnimplementedError(file + ": qcow2 images with extended L2 entries (subclusters) are "
                                     "not supported");
  }
  if ((incompat & kIncompatCompressionType) && h.compression_type != 0) {
    return UnimplementedError(file + ": qcow2 compression type " +
                              std::to_string(h.compression_type) +
                              " is not supported (only zlib, type 0)");
  }
  uint64_t unknown = incompat & ~(kIncompatDirty | kIncompatCompressionType);
  if (unknown != 0) {
    return UnimplementedError(file + ": qcow2 image uses unknown incompatible features " +
                              Hex(unknown));
  }

  // Virtual size and L1 table.
  const uint64_t l2_entries = cs / 8;
  const uint64_t bytes_per_l1 = cs * l2_entries;  // <= 2^39
  if (h.size > kQcow2MaxL1Bytes / 8 * bytes_per_l1) {
    return HeaderError(file, "size", 24,
                       std::to_string(h.size) + " bytes is too large for cluster size " +
                           std::to_string(cs) + " (the L1 table would exceed 32 MiB)");
  }
  const uint64_t l1_needed = DivRoundUp(h.size, bytes_per_l1);
  if (h.l1_size < l1_needed) {
    return HeaderError(file, "l1_size", 36,
                       std::to_string(h.l1_size) + " entries cannot map " +
                           std::to_string(h.size) + " bytes (" + std::to_string(l1_needed) +
                           " needed)");
  }
  if (uint64_t{h.l1_size} * 8 > kQcow2MaxL1Bytes) {
    return HeaderError(file, "l1_size", 36, std::to_string(h.l1_size) + " entries exceeds 32 MiB");
  }
  auto check_table = [&](std::string_view field, uint64_t field_off, uint64_t offset,
                         uint64_t bytes) -> Status {
    if (bytes == 0) return Status::Ok();
    if (offset % cs != 0) {
      return HeaderError(file, field, field_off,
                         Hex(offset) + " is not aligned to the cluster size " + std::to_string(cs));
    }
    if (offset < cs) {
      return HeaderError(file, field, field_off, Hex(offset) + " overlaps the header cluster");
    }
    if (offset > file_size || bytes > file_size - offset) {
      return HeaderError(file, field, field_off,
                         "table at " + Hex(offset) + " of " + std::to_string(bytes) +
                             " bytes extends past the end of the file (size " +
                             std::to_string(file_size) + ")");
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(check_table("l1_table_offset", 40, h.l1_table_offset, uint64_t{h.l1_size} * 8));
  if (h.refcount_table_clusters == 0) {
    return HeaderError(file, "refcount_table_clusters", 56, "0 (at least one is required)");
  }
  const uint64_t rt_bytes = uint64_t{h.refcount_table_clusters} * cs;
  if (rt_bytes > kQcow2MaxRefcountTableBytes) {
    return HeaderError(file, "refcount_table_clusters", 56,
                       std::to_string(h.refcount_table_clusters) + " clusters exceeds 8 MiB");
  }
  RETURN_IF_ERROR(check_table("refcount_table_offset", 48, h.refcount_table_offset, rt_bytes));
  const uint64_t l1_end = h.l1_table_offset + uint64_t{h.l1_size} * 8;
  if (h.l1_size > 0 && h.l1_table_offset < h.refcount_table_offset + rt_bytes &&
      h.refcount_table_offset < l1_end) {
    return HeaderError(file, "l1_table_offset", 40,
                       "L1 table at " + Hex(h.l1_table_offset) + " overlaps the refcount table at " +
                           Hex(h.refcount_table_offset));
  }
  if (h.nb_snapshots > 0) {
    RETURN_IF_ERROR(check_table("snapshots_offset", 64, h.snapshots_offset, 40));
  }
  return h;
}

}  // namespace imagesmith::disk
