// Turning a Debian tree into a raw GPT disk that boots through its own GRUB
// under BIOS (SeaBIOS, Hyper-V generation 1) and UEFI (OVMF, generation 2),
// without loop devices, mounts or device-mapper: every filesystem is built as
// an image file from a directory and spliced into the disk file. The layout,
// with every offset, is in doc/boot-disk.md.
//
// Every disk carries both boot paths (a BIOS boot partition with GRUB's
// core.img plus a patched MBR, and an ESP with \EFI\BOOT\BOOTX64.EFI), like
// Debian's own cloud images, so the generation never changes the bytes of the
// boot path; it is recorded in BootConfig for the callers that pick firmware.
//
// GRUB (core images and the modules under /boot/grub) comes from the host's
// /usr/lib/grub, so the core image and the modules it loads always match.
//
// Tools used (each checked; errors name the tool, its exit status and the end
// of its stderr): grub-mkimage, mke2fs, mkfs.fat, mmd, mcopy, sgdisk.
// Functions are thread-compatible; they touch only the paths they are given
// and temporary files beside `out_path`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/status.h"
#include "base/statusor.h"
#include "catalog/catalog.h"

namespace imagesmith::catalog {

struct BootConfig {
  Generation generation = Generation::kV1;
  // The ext4 root filesystem's UUID, lowercase "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
  std::string root_uuid;
  // The ESP's FAT volume serial as 8 hex digits ("7CD26817"); fstab names it
  // as UUID=7CD2-6817.
  std::string esp_volume_id;
  std::string hostname = "localhost";
  // Appended to the kernel command line (after root=, ro and the consoles).
  std::string kernel_cmdline_extra;
  // Seconds since the epoch. Every time the disk's filesystems would take
  // from the clock or from the tree's ctime/atime (ext4 creation and inode
  // change/access times, FAT entries) is this instead, and the GPT GUIDs
  // derive from root_uuid, so the same tree (same contents, owners, modes
  // and mtimes) and the same config give the same disk bytes.
  int64_t timestamp = 0;
};

// A config with fresh random identifiers and the current time.
BootConfig NewBootConfig(Generation generation);

// The config as JSON ({generation, rootUuid, espVolumeId, hostname,
// kernelCmdlineExtra, timestamp}) and back; FromJson validates and names
// the bad field. Stored with an image so its disk can be made again.
Json BootConfigToJson(const BootConfig& config);
StatusOr<BootConfig> BootConfigFromJson(const Json& json);

// Checks the identifiers' formats, the hostname (an RFC 1123 name) and that
// the extra command line holds only printable characters that are safe in
// grub.cfg (no quotes, backslashes, '$' or ';'). InvalidArgument otherwise.
Status ValidateBootConfig(const BootConfig& config);

// Writes into `dir` everything the tree needs to boot with `config`, as
// plain files (so `dir` can be an overlay upper directory over the tree;
// nothing is read from the tree):
//   etc/fstab                      root by UUID, ESP at /boot/efi (nofail)
//   etc/hostname, etc/hosts
//   etc/machine-id                 empty: systemd makes one on first boot
//   etc/default/grub.d/imagesmith.cfg  so update-grub regenerates the same
//   boot/grub/grub.cfg             serial + VGA console, root=UUID=
//   boot/grub/{i386-pc,x86_64-efi}/*.mod, *.lst  from the host's GRUB
//   boot/efi/                      the ESP's mount point
// Existing files at those paths are replaced.
Status WriteBootFiles(Env& env, const BootConfig& config, const std::string& dir);

// The placeholder RootFsCommand's argv holds where the tree goes.
inline constexpr const char kTreePlaceholder[] = "{tree}";

// The argv that makes the ext4 root filesystem image `out_image` (which must
// not exist) of `size_bytes` (rounded down to 4 KiB) from a tree: the caller
// replaces every occurrence of "{tree}" in every argument with the path of
// the tree's merged view and runs it. It runs mke2fs -d (through /bin/sh),
// using the tree's own etc/mke2fs.conf when it has one (so the features are
// those the image's kernel, e2fsck and GRUB expect, whatever the host's
// e2fsprogs); the filesystem gets config.root_uuid, the label "root" and a
// directory hash seed equal to the UUID. Then debugfs sets every inode's
// ctime and atime to config.timestamp (mke2fs copies them from the host,
// where they are never reproducible); mke2fs sorts directory entries and
// takes its own clock from config.timestamp. A file name holding a newline
// is refused (debugfs commands are lines).
std::vector<std::string> RootFsCommand(const BootConfig& config, const std::string& out_image,
                                       uint64_t size_bytes);

// Fixed geometry (512-byte sectors). The root partition runs from
// kRootStartLba to 1 MiB before the end of the disk.
inline constexpr uint64_t kSectorBytes = 512;
inline constexpr uint64_t kBiosBootStartLba = 2048;  // 1 MiB, core.img
inline constexpr uint64_t kEspStartLba = 4096;       // 64 MiB FAT32
inline constexpr uint64_t kEspBytes = 64ull << 20;
inline constexpr uint64_t kRootStartLba = kEspStartLba + kEspBytes / kSectorBytes;  // 135168
// Space a disk needs besides its root partition: 66 MiB before, 1 MiB after.
inline constexpr uint64_t kDiskOverheadBytes = (kRootStartLba * kSectorBytes) + (1ull << 20);

// The size of the root partition on a disk of `disk_size_bytes` (0 if the
// disk is too small): the size to pass to RootFsCommand to fill it.
uint64_t RootPartitionBytes(uint64_t disk_size_bytes);

// Assembles the raw GPT disk `out_path` from a root filesystem image: the
// partition table, GRUB's BIOS boot code (MBR + core.img), the ESP with
// BOOTX64.EFI, and the root image. `disk_size_bytes` must be a multiple of
// 1 MiB and leave room for the root image (root image + 67 MiB). The file is
// sparse, written beside `out_path` and renamed into place, so `out_path` is
// either the complete disk or untouched; temporary files are removed on
// failure. The partition table is verified with `sgdisk -v` before the rename.
// The root's lifetime write counter (s_kbytes_written, in every superblock)
// is zeroed on the disk: it counts how mke2fs's writes were cached, the one
// thing that would make two disks of the same tree and config differ.
Status AssembleDisk(Env& env, const BootConfig& config, const std::string& root_fs_image,
                    uint64_t disk_size_bytes, const std::string& out_path);

// For plain directories (tests, catalog base disks): WriteBootFiles into
// `tree_dir` itself (it is modified), then RootFsCommand with "{tree}" =
// `tree_dir` sized to fill the root partition, then AssembleDisk. The tree
// must hold a kernel and initramfs at /vmlinuz and /initrd.img
// (FailedPrecondition otherwise).
Status MakeBootableDisk(Env& env, const BootConfig& config, const std::string& tree_dir,
                        uint64_t disk_size_bytes, const std::string& out_path);

// The smallest sensible disk for a tree: the tree's size plus a quarter and
// 512 MiB of free space (ext4 metadata, logs, a kernel upgrade), plus the
// 67 MiB of partitions around the root, rounded up to whole GiB (as Azure
// sizes disks) and at least 2 GiB.
StatusOr<uint64_t> DefaultDiskSize(Env& env, const std::string& tree_dir);

}  // namespace imagesmith::catalog
