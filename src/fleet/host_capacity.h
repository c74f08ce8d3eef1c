// The host-capacity ledger of the qemu driver: what the qemu nodes on this
// host use, so that a node that does not fit is refused before it starts.
//
// One file per node under <state_dir>/ledger/ (JSON: cpus, memoryMb, pid,
// startTicks), changed under an flock on <state_dir>/ledger.lock, so several
// imagesmith processes on one host share it. An entry counts while its
// machine runs (pid and start time match) or, with pid 0, while the node is
// being made (for at most 10 minutes); anything else is stale and removed.
//
// The limits (doc/fleet.md, "The capacity rule"): memory is the host's
// MemTotal less 4 GiB for the host itself; vCPUs are 8 per host CPU (TCG and
// KVM both time-share). $IMAGESMITH_FLEET_HOST_MEMORY_MB and
// $IMAGESMITH_FLEET_HOST_CPUS replace them.
//
// Thread-safe and process-safe.
#pragma once

#include <cstdint>
#include <string>

#include "base/env.h"
#include "base/statusor.h"

namespace imagesmith::fleet {

struct HostLimits {
  int cpus = 0;
  uint64_t memory_mb = 0;
};
StatusOr<HostLimits> ReadHostLimits(Env& env);

class HostCapacity {
 public:
  HostCapacity(Env& env, std::string state_dir);
  // Records `node_id` (pid 0: being made) when cpus and memory_mb fit
  // beside the live entries. ResourceExhausted otherwise, giving what is
  // asked, what is in use (and by how many nodes) and the host's limit.
  Status Reserve(const std::string& node_id, int cpus, uint64_t memory_mb);
  // Records the machine's process once it runs (or again after Reimage).
  Status SetProcess(const std::string& node_id, int64_t pid, uint64_t start_ticks);
  // Forgets the node. OK when it is not there.
  Status Release(const std::string& node_id);

 private:
  Env& env_;
  std::string dir_;
  std::string lock_;
};

}  // namespace imagesmith::fleet
