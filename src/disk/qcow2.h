// qcow2 images (QEMU copy-on-write, version 3; version 2 is read too). See
// doc/disk-qcow2.md for the layout and the validation rules enforced here.
//
// Layout: a header in cluster 0; a one-level L1 table whose entries point to
// L2 tables; L2 entries that point to data clusters (plain, "reads as zero",
// or deflate-compressed); and a two-level refcount structure (refcount table
// -> refcount blocks) counting references to every host cluster.
// All integers are big-endian.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "disk/disk.h"
#include "disk/scan.h"

namespace imagesmith::disk {

inline constexpr char kQcow2Magic[4] = {'Q', 'F', 'I', '\xfb'};
inline constexpr uint32_t kQcow2MinClusterBits = 9;
inline constexpr uint32_t kQcow2MaxClusterBits = 21;
// qemu's own limits on table sizes; we refuse larger ones before allocating.
inline constexpr uint64_t kQcow2MaxL1Bytes = 32 << 20;
inline constexpr uint64_t kQcow2MaxRefcountTableBytes = 8 << 20;

// The fixed part of the header, as parsed. Field meanings in doc/disk-qcow2.md.
struct Qcow2Header {
  uint32_t version = 3;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 16;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = 104;
  uint8_t compression_type = 0;

  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
  // Serializes a version 3 header (header_length bytes, at least 104).
  std::string Serialize() const;
};

// Parses and validates the header at the start of `buf` (`len` bytes, at
// least one cluster or the whole file if smaller) of a file of `file_size`
// bytes: magic, version, cluster_bits in 9..21, feature bits we support, table
// offsets aligned, inside the file and clear of the header, table sizes
// within limits and large enough for the virtual size.
StatusOr<Qcow2Header> ParseQcow2Header(const char* buf, size_t len, uint64_t file_size,
                                       const std::string& file_name);

// Opens a qcow2 image (OpenDisk probes the magic first).
StatusOr<std::unique_ptr<DiskReader>> OpenQcow2(std::unique_ptr<File> file);

struct Qcow2WriteOptions {
  uint32_t cluster_size = 64 << 10;  // a power of two from 512 B to 2 MiB
  // Deflate every data cluster that shrinks (raw deflate, 4 KiB window, as
  // qemu writes them); others are stored plain.
  bool compress = false;
  int compression_level = 6;
  // Threads that compress in parallel (only with `compress`).
  int threads = 2;
};

// Writes `in` to the empty file `out` as a qcow2 version 3 image with 16-bit
// refcounts. Zero and unallocated clusters are left unallocated. Streams:
// memory is one read buffer, one L2 table and the L1 table (8 bytes per
// 512 MiB at 64 KiB clusters), plus, with compression, 2 bytes per written
// host cluster for the refcounts of shared clusters.
Status WriteQcow2(DiskReader& in, File& out, const Qcow2WriteOptions& options,
                  const ProgressFn& progress);

}  // namespace imagesmith::disk
