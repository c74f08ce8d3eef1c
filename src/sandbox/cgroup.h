// Cgroup: a fresh control group for one sandbox run, on cgroup v2 (one
// directory) or v1 (one directory in each of the memory, cpu, pids and freezer
// hierarchies). Internal to sandbox/; Run uses it to limit and to kill
// everything a command started, and to notice OOM kills.
//
// Placement: beneath the calling process's own cgroup in each hierarchy (read
// from /proc/self/cgroup); if that is not writable, or on v2 cannot delegate
// controllers (its cgroup holds processes), beneath a top-level "imagesmith"
// group. The directories are named imagesmith-sandbox-<pid>-<n>.
//
// Thread-compatible: one owner per object; distinct objects may be used from
// different threads.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "base/statusor.h"
#include "sandbox/sandbox.h"

namespace imagesmith::sandbox {

class Cgroup {
 public:
  // Creates the cgroup and applies `limits`. Fails with FailedPrecondition
  // (naming the directory and errno text) when a needed controller is missing
  // or the directory cannot be created or configured; nothing is left behind
  // on failure.
  static StatusOr<std::unique_ptr<Cgroup>> Create(const Limits& limits);

  // Kills whatever is still inside and removes the directories (best effort).
  ~Cgroup();
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  // Moves process `pid` (and its future children) into the cgroup.
  Status AddProcess(pid_t pid);

  // SIGKILLs every process in the cgroup (v2: cgroup.kill; v1: freeze, kill,
  // thaw) and waits up to 10 s until it is empty.
  Status KillAll();

  // OOM kills counted by the kernel for this cgroup so far (memory.events
  // oom_kill on v2, memory.oom_control oom_kill on v1); 0 if unknown.
  int64_t OomKills() const;

  // Kills what is left and removes the directories. Idempotent.
  Status Remove();

  bool v2() const { return v2_; }
  // The directories (one on v2; one per hierarchy on v1).
  const std::vector<std::string>& dirs() const { return dirs_; }
  // The directory holding `controller`'s files ("memory", "cpu", "pids",
  // "freezer"), or "" when that controller is not used.
  std::string DirFor(const std::string& controller) const;

 private:
  Cgroup() = default;
  std::vector<pid_t> Pids() const;

  bool v2_ = false;
  bool removed_ = false;
  std::vector<std::string> dirs_;
  std::vector<std::pair<std::string, std::string>> controller_dirs_;  // controller -> dir
};

}  // namespace imagesmith::sandbox
