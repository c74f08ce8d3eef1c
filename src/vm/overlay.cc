#include "vm/overlay.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/strings.h"

namespace imagesmith::vm {

namespace {

// Byte offset of the root partition (doc/boot-disk.md).
constexpr uint64_t kRootOffsetBytes = 135168ull * 512;

constexpr const char kAgentPath[] = "/usr/local/lib/imagesmith-agent";

constexpr const char kUnit[] = R"([Unit]
Description=imagesmith validation agent (only in the throwaway validation overlay)
DefaultDependencies=no

[Service]
ExecStart=/usr/local/lib/imagesmith-agent
Restart=always
RestartSec=1

[Install]
WantedBy=sysinit.target
)";

// Runs in a private mount namespace: $1 overlay, $2 FUSE view file, $3
// debugfs commands, $4 root offset. The FUSE export is gone when
// qemu-storage-daemon exits, and the namespace with this shell.
constexpr const char kInjectScript[] = R"sh(set -e
overlay=$1 view=$2 cmds=$3 offset=$4
: > "$view"
setpriv --pdeathsig KILL -- qemu-storage-daemon \
  --blockdev driver=file,node-name=file0,filename="$overlay",cache.direct=off \
  --blockdev driver=qcow2,node-name=ov0,file=file0 \
  --export type=fuse,id=exp0,node-name=ov0,mountpoint="$view",writable=on &
qsd=$!
trap 'kill $qsd 2>/dev/null; wait $qsd 2>/dev/null || true' EXIT
i=0
until grep -q " $view " /proc/self/mountinfo; do
  i=$((i+1))
  if [ $i -gt 200 ] || ! kill -0 $qsd 2>/dev/null; then
    echo "qemu-storage-daemon did not export $overlay through FUSE" >&2; exit 1
  fi
  sleep 0.05
done
debugfs -w -f "$cmds" "$view?offset=$offset" 2>&1
check=$(debugfs -R "ls -l /etc/systemd/system/sysinit.target.wants" "$view?offset=$offset" 2>/dev/null)
case $check in *imagesmith-agent.service*) ;; *) echo "the agent unit is missing after debugfs" >&2; exit 1;; esac
kill $qsd
wait $qsd || true
trap - EXIT
)sh";

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s->find(from, at)) != std::string::npos; at += to.size()) {
    s->replace(at, from.size(), to);
  }
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() > n ? "..." + s.substr(s.size() - n) : s;
}

}  // namespace

StatusOr<std::string> FindAgentBinary(Env& env) {
  if (const char* e = std::getenv("IMAGESMITH_AGENT"); e != nullptr && *e != '\0') {
    if (!env.FileExists(e)) {
      return NotFoundError(std::string("IMAGESMITH_AGENT names ") + e + ", which does not exist");
    }
    return std::string(e);
  }
  ASSIGN_OR_RETURN(std::string self, SelfExePath());
  std::string dir = Dirname(self);
  std::vector<std::string> tried = {dir + "/imagesmith-agent", dir + "/../vm/imagesmith-agent",
                                    dir + "/../lib/imagesmith/imagesmith-agent"};
  for (const std::string& p : tried) {
    if (env.FileExists(p)) return p;
  }
  return NotFoundError("the guest agent binary imagesmith-agent is missing (looked in " +
                       Join(tried, ", ") +
                       "); build the imagesmith-agent target or set IMAGESMITH_AGENT");
}

Status MakeAgentOverlay(Env& env, const OverlaySpec& spec) {
  if (env.FileExists(spec.overlay)) {
    return AlreadyExistsError("the overlay " + spec.overlay + " already exists");
  }
  // Read the disk's grub.cfg without opening it for writing.
  ProcessOptions cat;
  cat.argv = {"debugfs", "-R", "cat /boot/grub/grub.cfg",
              spec.disk + "?offset=" + std::to_string(kRootOffsetBytes)};
  cat.timeout = std::chrono::seconds(30);
  ASSIGN_OR_RETURN(ProcessResult grub, env.RunProcess(cat));
  if (!grub.success() || grub.stdout_data.find("linux ") == std::string::npos) {
    return FailedPreconditionError(
        spec.disk + " has no ext4 root filesystem with /boot/grub/grub.cfg at byte " +
        std::to_string(kRootOffsetBytes) +
        " (imagesmith's disk layout, doc/boot-disk.md); only disks imagesmith made can be "
        "validated. debugfs said: " +
        Tail(grub.stderr_data, 400));
  }
  std::string cfg = grub.stdout_data;
  if (spec.fast_boot) {
    ReplaceAll(&cfg, "set timeout=1", "set timeout=0");
    // no_timer_check: under TCG on a busy host the kernel's check that the
    // timer interrupt arrives can miss it ("MP-BIOS bug: 8254 timer not
    // connected to IO-APIC") and take a fallback path; a kernel that finds
    // KVM skips the check by itself, so this only does what KVM guests do.
    ReplaceAll(&cfg, "console=ttyS0,115200n8", "console=ttyS0,115200n8 quiet no_timer_check");
  }
  std::string dir = spec.scratch_dir;
  std::string key_cmds;
  if (!spec.ssh_host_keys_dir.empty()) {
    ProcessOptions ls;
    ls.argv = {"debugfs", "-R", "ls /etc/ssh",
               spec.disk + "?offset=" + std::to_string(kRootOffsetBytes)};
    ls.timeout = std::chrono::seconds(30);
    ASSIGN_OR_RETURN(ProcessResult listed, env.RunProcess(ls));
    // debugfs lists "INODE (REC_LEN) NAME" entries separated by spaces.
    bool has_server = false, has_keys = false;
    std::string name;
    for (char ch : listed.stdout_data + " ") {
      if (ch != ' ' && ch != '\n' && ch != '\t') {
        name += ch;
        continue;
      }
      has_server = has_server || name == "sshd_config";
      has_keys = has_keys || name.rfind("ssh_host_", 0) == 0;
      name.clear();
    }
    if (listed.success() && has_server && !has_keys) {
      for (const char* type : {"rsa", "ecdsa", "ed25519"}) {
        std::string key = std::string("ssh_host_") + type + "_key";
        for (const std::string& f : {key, key + ".pub"}) {
          std::string from = spec.ssh_host_keys_dir + "/" + f;
          if (!env.FileExists(from)) {
            return InternalError("the validation SSH host key " + from + " is missing");
          }
          key_cmds += "write " + from + " /etc/ssh/" + f + "\n" + "sif /etc/ssh/" + f +
                      (f == key ? " mode 0100600\n" : " mode 0100644\n");
        }
      }
    }
  }
  if (spec.ssh_host_keys_placed != nullptr) *spec.ssh_host_keys_placed = !key_cmds.empty();
  RETURN_IF_ERROR(env.WriteFileAtomic(dir + "/grub.cfg", cfg));
  RETURN_IF_ERROR(env.WriteFileAtomic(dir + "/imagesmith-agent.service", kUnit));
  std::string cmds =
      "mkdir /usr/local\n"
      "mkdir /usr/local/lib\n"
      "mkdir /etc/systemd\n"
      "mkdir /etc/systemd/system\n"
      "rm " +
      std::string(kAgentPath) + "\n" + "write " + spec.agent_binary + " " + kAgentPath + "\n" +
      "sif " + kAgentPath + " mode 0100755\n" +
      "rm /etc/systemd/system/imagesmith-agent.service\n"
      "write " +
      dir +
      "/imagesmith-agent.service /etc/systemd/system/imagesmith-agent.service\n"
      "sif /etc/systemd/system/imagesmith-agent.service mode 0100644\n"
      "mkdir /etc/systemd/system/sysinit.target.wants\n"
      "symlink /etc/systemd/system/sysinit.target.wants/imagesmith-agent.service "
      "/etc/systemd/system/imagesmith-agent.service\n"
      "rm /boot/grub/grub.cfg\n"
      "write " +
      dir +
      "/grub.cfg /boot/grub/grub.cfg\n"
      "sif /boot/grub/grub.cfg mode 0100644\n" +
      key_cmds;
  for (size_t i = 0; i < spec.extra_files.size(); ++i) {
    const auto& [guest_path, content] = spec.extra_files[i];
    if (guest_path.empty() || guest_path[0] != '/' ||
        guest_path.find_first_of(" \n\t\"") != std::string::npos) {
      return InvalidArgumentError("overlay file " + QuoteForMessage(guest_path) +
                                  " must be an absolute path without spaces or quotes");
    }
    std::string from = dir + "/extra-" + std::to_string(i);
    RETURN_IF_ERROR(env.WriteFileAtomic(from, content));
    cmds += "rm " + guest_path + "\nwrite " + from + " " + guest_path + "\nsif " + guest_path +
            " mode 0100644\n";
  }
  for (const auto& [link, to] : spec.extra_symlinks) {
    for (const std::string* p : {&link, &to}) {
      if (p->empty() || (*p)[0] != '/' || p->find_first_of(" \n\t\"") != std::string::npos) {
        return InvalidArgumentError("overlay symlink " + QuoteForMessage(*p) +
                                    " must be an absolute path without spaces or quotes");
      }
    }
    // debugfs's mkdir fails harmlessly when the folder exists.
    cmds += "mkdir " + link.substr(0, link.rfind('/')) + "\nrm " + link + "\nsymlink " + link +
            " " + to + "\n";
  }
  RETURN_IF_ERROR(env.WriteFileAtomic(dir + "/debugfs.cmds", cmds));

  // qemu-img resolves a relative backing file against the overlay's
  // directory, not the working directory.
  std::string backing = spec.disk;
  if (!backing.empty() && backing[0] != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd) == nullptr) {
      return InternalError(std::string("cannot resolve the disk path ") + spec.disk +
                           ": getcwd failed: " + std::strerror(errno));
    }
    backing = std::string(cwd) + "/" + backing;
  }
  ProcessOptions create;
  create.argv = {"qemu-img", "create", "-q", "-f",    "qcow2",
                 "-F",       "raw",    "-b", backing, spec.overlay};
  create.timeout = std::chrono::seconds(30);
  ASSIGN_OR_RETURN(ProcessResult made, env.RunProcess(create));
  if (!made.success()) {
    (void)env.RemoveAll(spec.overlay);
    return InternalError("qemu-img create of the overlay " + spec.overlay + " failed (" +
                         made.Describe() + "): " + Tail(made.stderr_data, 400));
  }
  ProcessOptions inject;
  inject.argv = {"unshare",
                 "--mount",
                 "--propagation",
                 "private",
                 "--",
                 "/bin/sh",
                 "-c",
                 kInjectScript,
                 "inject",
                 spec.overlay,
                 dir + "/view.raw",
                 dir + "/debugfs.cmds",
                 std::to_string(kRootOffsetBytes)};
  inject.timeout = spec.timeout;
  auto r = env.RunProcess(inject);
  (void)env.RemoveAll(dir + "/view.raw");
  if (!r.ok() || !r->success()) {
    (void)env.RemoveAll(spec.overlay);
    if (!r.ok()) return r.status().WithContext("placing the agent in the overlay");
    return InternalError("placing the agent in the overlay " + spec.overlay +
                         " (qemu-storage-daemon FUSE export + debugfs) failed (" + r->Describe() +
                         "): " + Tail(r->stdout_data + r->stderr_data, 600));
  }
  return Status::Ok();
}

StatusOr<std::string> SshHostKeysForValidation(Env& env, const std::string& cache_dir) {
  std::string keys = cache_dir + "/etc/ssh";
  auto complete = [&] {
    for (const char* type : {"rsa", "ecdsa", "ed25519"}) {
      std::string key = keys + "/ssh_host_" + type + "_key";
      if (!env.FileExists(key) || !env.FileExists(key + ".pub")) return false;
    }
    return true;
  };
  if (complete()) return keys;
  // Made aside and renamed into place, so a concurrent or killed maker never
  // leaves half a set.
  RETURN_IF_ERROR(env.CreateDirs(Dirname(cache_dir)));
  std::string tmp = cache_dir + ".tmp-" + std::to_string(::getpid());
  (void)env.RemoveAll(tmp);
  RETURN_IF_ERROR(env.CreateDirs(tmp + "/etc/ssh"));
  ProcessOptions gen;
  gen.argv = {"ssh-keygen", "-A", "-f", tmp};
  gen.timeout = std::chrono::seconds(120);
  auto r = env.RunProcess(gen);
  if (!r.ok() || !r->success()) {
    (void)env.RemoveAll(tmp);
    if (!r.ok()) return r.status().WithContext("making SSH host keys for validation VMs");
    return InternalError("ssh-keygen -A (SSH host keys for validation VMs) failed (" +
                         r->Describe() + "): " + Tail(r->stderr_data, 400));
  }
  // rename() fails on a non-empty directory: another process got there
  // first (keep its set), or an incomplete set is left over (replace it).
  if (::rename(tmp.c_str(), cache_dir.c_str()) != 0 && !complete()) {
    (void)env.RemoveAll(cache_dir);
    if (::rename(tmp.c_str(), cache_dir.c_str()) != 0 && !complete()) {
      int err = errno;
      (void)env.RemoveAll(tmp);
      return InternalError("cannot move the validation SSH host keys to " + cache_dir + ": " +
                           std::strerror(err));
    }
  }
  (void)env.RemoveAll(tmp);
  return keys;
}

}  // namespace imagesmith::vm
