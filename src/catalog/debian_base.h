// Building a Debian base tree with mmdebstrap, and describing it.
//
// A base tree is the root filesystem of a minimal bootable Debian system:
// kernel (with an initramfs that does not depend on any disk identifier),
// systemd, udev, SSH server, sudo, and DHCP networking with systemd-networkd.
// It has no bootloader and no root filesystem identity; both are added per
// disk by boot_disk.h, so one tree serves every generation (BIOS and UEFI).
//
// Packages come from the host's own apt sources: every non-empty file among
// /etc/apt/sources.list, /etc/apt/sources.list.d/*.list and *.sources is
// passed to mmdebstrap as a mirror argument. No mirror is ever named here.
//
// All functions are thread-compatible; BuildDebianBase runs a child process
// for minutes and must be serialized per output directory by the caller.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/statusor.h"

namespace imagesmith::catalog {

// How long building a platform base may take when nothing tighter applies
// (a template run passes what is left of its buildTimeoutInMinutes).
inline constexpr std::chrono::milliseconds kBaseBuildTimeLimit = std::chrono::minutes(30);

// What goes into a base tree.
struct DebianRecipe {
  std::string suite;                  // "bookworm"
  std::vector<std::string> packages;  // --include list on top of minbase
};

// The recipe of the "debian-12" base.
DebianRecipe Debian12Recipe();

// The host's apt source files that are present and hold at least one line
// that is not a comment, in the order listed above. `etc_apt` is normally
// "/etc/apt" (tests point it elsewhere). FailedPrecondition if there is none.
StatusOr<std::vector<std::string>> HostAptSources(Env& env, const std::string& etc_apt);

// The full mmdebstrap argv that builds `recipe` into the (not yet existing)
// directory `out_dir` from `sources`, run in a mount namespace of its own
// (unshare) so the mounts it makes inside the tree never outlive it.
std::vector<std::string> MmdebstrapCommand(const DebianRecipe& recipe, const std::string& out_dir,
                                           const std::vector<std::string>& sources);

struct DpkgPackage {
  std::string name;
  std::string version;
  std::string architecture;
};

// The installed packages in a dpkg status file (var/lib/dpkg/status), sorted
// by name. Entries whose Status is not "install ok installed" are left out.
std::vector<DpkgPackage> ParseDpkgStatus(std::string_view status_text);

// The bytes a tree occupies as files: sizes of regular files (each inode
// once) and symlinks, plus nothing for directories. Does not follow symlinks
// or cross filesystems. Errors carry the path that failed.
StatusOr<uint64_t> TreeBytes(const std::string& dir);

// The kernel release installed in a tree ("6.1.0-28-cloud-amd64"), from the
// newest boot/vmlinuz-*; NotFound if the tree has no kernel.
StatusOr<std::string> KernelRelease(Env& env, const std::string& tree);

// Builds `recipe` into `out_dir` (which must not exist; its parent must) and
// returns its manifest: suite, packages, tree size, kernel release, the
// source files used (paths only), build time and duration. Each line
// mmdebstrap prints goes to `progress`. On failure `out_dir` may be left
// partly written; the caller removes it. Errors name mmdebstrap, its exit
// status and the last lines of its output. mmdebstrap is stopped after
// `time_limit` (DeadlineExceeded saying how long it ran).
StatusOr<Json> BuildDebianBase(Env& env, const DebianRecipe& recipe, const std::string& out_dir,
                               const std::function<void(std::string_view line)>& progress,
                               std::chrono::milliseconds time_limit = kBaseBuildTimeLimit);

// Fills in the descriptive part of a manifest for an existing tree
// (packages, treeBytes, kernel). Used by BuildDebianBase; exposed for tests.
StatusOr<Json> DescribeTree(Env& env, const std::string& tree);

// The last `n` non-empty lines of `text`, joined with "\n", for error messages.
std::string LastLines(std::string_view text, size_t n);

}  // namespace imagesmith::catalog
