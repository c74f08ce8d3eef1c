// The pool watch: between controllers, nobody else looks at a quiet pool's
// nodes. `imagesmith serve` runs a PoolWatch on a thread: every interval it
// looks at every Batch pool that no controller runs for
// (batch::CheckPoolNodes) and, when a node's machine is gone, it was
// preempted or its heartbeats stopped, queues the pool's controller
// operation for the workers (EnsureControl), which records the node's new
// state and replaces it (doc/batch.md, "The pool watch").
//
// Deadlines: a node whose machine stops is `unusable` within one interval
// (plus the driver's notice, about 5 s for qemu); a node whose heartbeats
// stop is `unknown` within the heartbeat deadline (30 s) plus one interval.
//
// Thread-safety: one thread calls Sweep; Services must be usable from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/services.h"
#include "base/statusor.h"

namespace imagesmith::api {

class PoolWatch {
 public:
  // Default 5 s; $IMAGESMITH_BATCH_WATCH_SECONDS replaces it (tests).
  static int64_t IntervalMicros();

  explicit PoolWatch(Services& services) : services_(services) {}
  PoolWatch(const PoolWatch&) = delete;
  PoolWatch& operator=(const PoolWatch&) = delete;

  // One look at every pool. Returns a line per pool it queued a controller
  // for ("<pool ID>: <what changed>"). Errors: the database's; a pool
  // whose check fails is skipped (its line says why).
  StatusOr<std::vector<std::string>> Sweep();

 private:
  Services& services_;
};

}  // namespace imagesmith::api
