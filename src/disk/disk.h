// Disk images: the formats imagesmith reads and writes (raw, VHD fixed and
// dynamic, qcow2 version 3) behind one reader interface, and format probing.
//
// A DiskReader presents an image as a flat array of `virtual_size()` bytes and
// answers which ranges hold data, so a converter can skip the rest. Every
// reader validates the image's metadata before trusting it: a corrupt or
// hostile file yields InvalidArgument / DataLoss naming the field and offset,
// never a crash, an out-of-bounds read or an allocation sized by the file.
// Readers hold a bounded amount of memory (tables sized by the virtual size,
// which the open-time checks cap, plus small caches).
//
// A DiskReader is used by one thread at a time (it caches table blocks).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/statusor.h"
#include "disk/file.h"

namespace imagesmith::disk {

enum class DiskFormat { kRaw, kVhdFixed, kVhdDynamic, kQcow2 };

// "raw", "vhd", "vhd-dynamic", "qcow2" (the names `disk convert --format` takes).
std::string_view DiskFormatName(DiskFormat format);
// Parses a name above; InvalidArgument lists the valid ones otherwise.
StatusOr<DiskFormat> ParseDiskFormat(std::string_view name);

// What a range of the virtual disk holds.
enum class ExtentKind {
  kData,         // stored bytes (they may still happen to be zero)
  kZero,         // stored as "reads as zeros" without data
  kUnallocated,  // not stored at all; reads as zeros (we support no backing files)
};

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;  // > 0
  ExtentKind kind = ExtentKind::kData;
};

// Facts `disk info` reports.
struct DiskInfo {
  DiskFormat format = DiskFormat::kRaw;
  uint64_t virtual_size = 0;
  uint64_t file_size = 0;         // bytes of the image file
  uint64_t allocated_bytes = 0;   // bytes the file occupies on its filesystem
  uint64_t cluster_size = 0;      // qcow2 cluster or VHD block size; 0 for raw/fixed
  uint64_t data_bytes = 0;        // virtual bytes the format marks as data
  bool compressed_clusters = false;
  std::string creator;            // VHD creator application, empty otherwise
};

// The outcome of a consistency check. `errors` empty means consistent.
struct CheckResult {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  bool ok() const { return errors.empty(); }
};

class DiskReader {
 public:
  virtual ~DiskReader() = default;

  virtual DiskFormat format() const = 0;
  // The size of the disk as a guest sees it, in bytes.
  virtual uint64_t virtual_size() const = 0;

  // Reads `len` bytes of the virtual disk at `offset` into `buf`. Requires
  // offset + len <= virtual_size(). Unallocated and zero ranges read as zeros.
  // Fails with DataLoss when the metadata it needs is corrupt or data lies
  // beyond the end of the file, and with the I/O error otherwise.
  virtual Status Read(uint64_t offset, size_t len, char* buf) = 0;

  // The extent that starts at `offset` (< virtual_size()): its kind and a
  // length of at least 1 byte, at most `max_len` and not past the end.
  // Adjacent extents may have the same kind.
  virtual StatusOr<Extent> BlockStatus(uint64_t offset, uint64_t max_len) = 0;

  virtual StatusOr<DiskInfo> Info() = 0;

  // Walks all metadata and reports inconsistencies (refcounts, overlaps,
  // checksums, leaked space) in `CheckResult`. A non-OK Status means the check
  // itself could not run (I/O error).
  virtual StatusOr<CheckResult> Check() = 0;
};

// Opens `file` after probing its format: qcow2 by its magic "QFI\xfb", VHD by
// the "conectix" footer at the end (fixed, or dynamic with the copy at offset
// 0), anything else as raw. A file that starts like qcow2 or VHD but fails
// validation is an error, never silently raw. Takes ownership of `file`.
StatusOr<std::unique_ptr<DiskReader>> OpenDisk(std::unique_ptr<File> file);
// Opens the file at `path` read-only and probes it as above.
StatusOr<std::unique_ptr<DiskReader>> OpenDiskPath(const std::string& path);

}  // namespace imagesmith::disk
