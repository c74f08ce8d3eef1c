// The throwaway layer a validation VM boots from: a qcow2 file whose backing
// file is the image's raw disk (opened read-only, never written), with the
// guest agent written into the overlay's root filesystem.
//
// How the agent gets in without touching the image: qemu-storage-daemon
// exports the qcow2 overlay as a plain file through FUSE, in a private mount
// namespace (unshare -m) that disappears with the helper script, and
// debugfs -w writes into the ext4 root partition of that file at its offset
// (doc/boot-disk.md: LBA 135168). Every write lands in the overlay.
// doc/vm.md lists exactly what is written.
//
// Functions are thread-compatible; they touch only the paths they are given.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/statusor.h"

namespace imagesmith::vm {

struct OverlaySpec {
  std::string disk;          // the image: a raw GPT disk in imagesmith's layout
  std::string overlay;       // the qcow2 file to create (must not exist)
  std::string agent_binary;  // the static imagesmith-agent to place in it
  std::string scratch_dir;   // for the helper's files (exists)
  // Validation boots only: GRUB's menu timeout 0 and `quiet no_timer_check`
  // on the kernel command line, in the overlay's copy of /boot/grub/grub.cfg.
  bool fast_boot = true;
  // A directory of SSH host keys (ssh_host_*_key and .pub, as made by
  // SshHostKeysForValidation), placed in the overlay's /etc/ssh when the
  // image has an OpenSSH server (sshd_config) and no host keys of its own,
  // that is, when it would make them on first boot. Empty: never.
  std::string ssh_host_keys_dir;
  bool* ssh_host_keys_placed = nullptr;  // set to whether they were; may be null
  // Files written into the overlay's root filesystem over what the image
  // has (mode 0644): guest path (absolute; its folder must exist in the
  // image) -> content. A fleet node's /etc/hostname, for one.
  std::vector<std::pair<std::string, std::string>> extra_files;
  // Symbolic links written into the overlay after extra_files: guest path
  // of the link (absolute, no spaces or quotes; its folder is made when
  // missing, one level) -> what it points to. A fleet node's data disk
  // mount unit is enabled this way.
  std::vector<std::pair<std::string, std::string>> extra_symlinks;
  std::chrono::milliseconds timeout{60000};
};

// SSH host keys for validation VMs under TCG, made once with ssh-keygen -A
// in `cache_dir` and reused: an image generalized by imagesmith makes its
// host keys on first boot, and RSA key generation costs 3-9 s of the boot
// under TCG. The keys only ever live in throwaway overlays (doc/vm.md).
// Returns the directory that holds them.
StatusOr<std::string> SshHostKeysForValidation(Env& env, const std::string& cache_dir);

// Creates the overlay and injects the agent and its systemd unit. On
// failure the overlay is removed and the error names the tool and shows the
// end of its output. FailedPrecondition when the disk has no ext4 root at
// imagesmith's offset (not a disk imagesmith made).
Status MakeAgentOverlay(Env& env, const OverlaySpec& spec);

// Where the agent binary is: $IMAGESMITH_AGENT if set, else
// imagesmith-agent beside the running executable, in ../vm/ (the build
// tree) or in ../lib/imagesmith/ (an install). NotFound, listing the places
// looked at, when none exists.
StatusOr<std::string> FindAgentBinary(Env& env);

}  // namespace imagesmith::vm
