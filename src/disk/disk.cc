#include "disk/disk.h"

#include <cstring>

#include "disk/qcow2.h"
#include "disk/raw.h"
#include "disk/vhd.h"

namespace imagesmith::disk {

std::string_view DiskFormatName(DiskFormat format) {
  switch (format) {
    case DiskFormat::kRaw:
      return "raw";
    case DiskFormat::kVhdFixed:
      return "vhd";
    case DiskFormat::kVhdDynamic:
      return "vhd-dynamic";
    case DiskFormat::kQcow2:
      return "qcow2";
  }
  return "unknown";
}

StatusOr<DiskFormat> ParseDiskFormat(std::string_view name) {
  for (DiskFormat f : {DiskFormat::kRaw, DiskFormat::kVhdFixed, DiskFormat::kVhdDynamic,
                       DiskFormat::kQcow2}) {
    if (name == DiskFormatName(f)) return f;
  }
  return InvalidArgumentError("unknown disk format \"" + std::string(name) +
                              "\"; expected raw, vhd, vhd-dynamic or qcow2");
}

StatusOr<std::unique_ptr<DiskReader>> OpenDisk(std::unique_ptr<File> file) {
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  char head[8] = {};
  ASSIGN_OR_RETURN(size_t got, file->ReadAt(0, sizeof(head), head));
  if (got >= 4 && std::memcmp(head, kQcow2Magic, 4) == 0) return OpenQcow2(std::move(file));
  if (size >= kVhdFooterSize) {
    char tail[8] = {};
    ASSIGN_OR_RETURN(size_t n, file->ReadAt(size - kVhdFooterSize, sizeof(tail), tail));
    if (n == sizeof(tail) && std::memcmp(tail, "conectix", 8) == 0) return OpenVhd(std::move(file));
  }
  if (got == 8 && std::memcmp(head, "conectix", 8) == 0) {
    // A dynamic VHD's leading footer copy without the trailing footer: the
    // file was cut short. Reading it as raw would silently give wrong data.
    return DataLossError(file->name() +
                         ": starts with a VHD footer copy but has no footer at the end; the "
                         "file looks truncated");
  }
  return OpenRaw(std::move(file));
}

StatusOr<std::unique_ptr<DiskReader>> OpenDiskPath(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, OpenFileForRead(path));
  return OpenDisk(std::move(file));
}

}  // namespace imagesmith::disk
