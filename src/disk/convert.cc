#include "disk/convert.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <thread>

#include "disk/raw.h"

namespace imagesmith::disk {
namespace {

// Write-behind chunk for conversion outputs: 16-256 MiB all measured about
// the same on the bench (bench/disk/README.md); 32 MiB bounds the dirty data
// a conversion leaves behind to a few chunks.
constexpr uint64_t kWriteBehindBytes = 32 << 20;

}  // namespace

Status WriteDisk(DiskReader& in, File& out, const ConvertOptions& options) {
  if (options.compress && options.format != DiskFormat::kQcow2) {
    return InvalidArgumentError("--compress is supported only for qcow2 output, not " +
                                std::string(DiskFormatName(options.format)));
  }
  if (options.azure && options.format != DiskFormat::kVhdFixed) {
    return InvalidArgumentError(
        "Azure accepts only fixed VHDs; use --format vhd (fixed) for an Azure disk, not " +
        std::string(DiskFormatName(options.format)));
  }
  switch (options.format) {
    case DiskFormat::kRaw:
      return WriteRaw(in, out, options.progress);
    case DiskFormat::kVhdFixed:
    case DiskFormat::kVhdDynamic: {
      VhdWriteOptions v;
      v.dynamic = options.format == DiskFormat::kVhdDynamic;
      v.azure = options.azure;
      v.round_up = options.round_up;
      return WriteVhd(in, out, v, options.progress);
    }
    case DiskFormat::kQcow2: {
      Qcow2WriteOptions q;
      q.cluster_size = options.qcow2_cluster_size;
      q.compress = options.compress;
      unsigned hw = std::thread::hardware_concurrency();
      q.threads = static_cast<int>(hw == 0 ? 2 : std::min(hw, 8u));
      return WriteQcow2(in, out, q, options.progress);
    }
  }
  return InternalError("unhandled disk format");
}

Status ConvertDisk(const std::string& in_path, const std::string& out_path,
                   const ConvertOptions& options) {
  struct stat a {}, b {};
  if (::stat(in_path.c_str(), &a) == 0 && ::stat(out_path.c_str(), &b) == 0 &&
      a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
    return InvalidArgumentError("input and output are the same file: " + out_path);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<DiskReader> in, OpenDiskPath(in_path));
  const std::string partial = out_path + ".partial";
  Status s;
  {
    // Start writing the output to disk as it is produced (see
    // WriteFileOptions): a converted image is about to be synced or
    // uploaded, and otherwise all of it would still be waiting in the page
    // cache when we return.
    WriteFileOptions wo;
    wo.write_behind_bytes = kWriteBehindBytes;
    ASSIGN_OR_RETURN(std::unique_ptr<File> out, CreateFileForWrite(partial, wo));
    s = WriteDisk(*in, *out, options);
  }
  if (s.ok() && ::rename(partial.c_str(), out_path.c_str()) != 0) {
    s = ErrnoError("rename " + partial + " to " + out_path, errno);
  }
  if (!s.ok()) ::unlink(partial.c_str());
  return s;
}

}  // namespace imagesmith::disk
