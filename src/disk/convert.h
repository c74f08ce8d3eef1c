// Converting a disk image from any readable format into raw, VHD (fixed or
// dynamic) or qcow2. The one entry point the CLI and the build pipeline use.
#pragma once

#include <string>

#include "disk/disk.h"
#include "disk/qcow2.h"
#include "disk/scan.h"
#include "disk/vhd.h"

namespace imagesmith::disk {

struct ConvertOptions {
  DiskFormat format = DiskFormat::kRaw;
  // qcow2: deflate clusters. Rejected (InvalidArgument) for other formats.
  bool compress = false;
  uint32_t qcow2_cluster_size = 64 << 10;
  // VHD: enforce Azure's rules (fixed, whole MiB); see VhdWriteOptions.
  bool azure = false;
  bool round_up = false;
  // Called now and then with the virtual bytes processed so far.
  ProgressFn progress;
};

// Writes `in` to `out` (an empty file) in options.format. Streams with
// bounded memory; see the per-format writers for details.
Status WriteDisk(DiskReader& in, File& out, const ConvertOptions& options);

// Converts the image at `in_path` (format probed) into `out_path`. The output
// is written to "<out_path>.partial" and renamed into place only on success,
// so a failed or interrupted conversion never leaves a plausible-looking
// image behind. Like qemu-img, it does not fsync: callers that need the
// image durable (the store, when it ingests it) sync it themselves. It does
// start writeback as it goes (WriteFileOptions::write_behind_bytes), so such
// a sync finds little left to do.
// Fails with InvalidArgument when in and out are the same file.
Status ConvertDisk(const std::string& in_path, const std::string& out_path,
                   const ConvertOptions& options);

}  // namespace imagesmith::disk
