// Raw images: the disk's bytes, in order, nothing else. Holes in a sparse file
// read as zeros and are reported as unallocated.
#pragma once

#include <memory>

#include "disk/disk.h"
#include "disk/scan.h"

namespace imagesmith::disk {

// A reader over `file` as a raw image; the virtual size is the file size.
// Never fails except on I/O errors while stating the file.
StatusOr<std::unique_ptr<DiskReader>> OpenRaw(std::unique_ptr<File> file);

// Writes `in` to `out` (which should be empty) as a sparse raw image of
// exactly in.virtual_size() bytes: the file is sized first and only blocks
// that hold nonzero bytes are written, so holes and zero blocks cost no space.
Status WriteRaw(DiskReader& in, File& out, const ProgressFn& progress);

// Writes the nonzero parts of [0, size) of `in` to `out` at `out_offset`
// without changing the file size elsewhere; shared by raw and fixed VHD.
// `out` must read as zeros over the target range beforehand.
Status WriteSparseBody(DiskReader& in, uint64_t size, File& out, uint64_t out_offset,
                       const ProgressFn& progress);

}  // namespace imagesmith::disk
