// The pool controller: makes a Batch pool's nodes match its targets through
// a node driver, turns what the driver observes into Batch's node states,
// runs the start task, schedules the pool's tasks and records everything in
// the metadata database (doc/batch.md, "The controller").
//
//   pool record (targets, nodeActions, state) ──┐
//                                               v
//   driver.Observe ──> node states ──> create / replace / remove nodes
//                               └────> start task, tasks (on a thread pool)
//                                               v
//   pool record (allocationState, currentNodes, resizeErrors), node and task records
//
// One controller runs per pool at a time: it is the work of the pool's
// durable operation (api/batch_pool_run.cc), which the CLI runs in the
// foreground and `imagesmith serve` / `internal worker` run as workers. Run
// returns when the pool is quiet (allocation steady, no queued or running
// task, no pending node action), when it is deleted, or on cancel. It never
// blocks on a node: Observe is cheap and tasks run on the controller's own
// threads, which Run joins before it returns.
//
// Nodes outlive the controller: a later controller (another process) adopts
// every node its records name, by the driver's NodeRuntime.
//
// Deadlines (overridable for tests by environment variables):
//   hello      a node that has not said hello 600 s after it was started
//              (IMAGESMITH_BATCH_HELLO_DEADLINE_SECONDS) becomes unusable;
//   heartbeat  a ready node without a heartbeat for 30 s
//              (IMAGESMITH_BATCH_HEARTBEAT_DEADLINE_SECONDS) becomes unknown;
//   resize     resizeTimeout of the pool (IMAGESMITH_BATCH_RESIZE_TIMEOUT_SECONDS
//              replaces it for tests, which cannot wait the 5-minute minimum).
// While a pool is resizing, unusable, unknown and preempted nodes are
// replaced (nodes lost after they came up stay listed until the resize
// ends); a steady pool that loses a node that was up (unknown, preempted,
// machine gone) starts a new resize to replace it. Between controllers,
// CheckPoolNodes below lets `imagesmith serve` notice such a loss.
//
// Thread-safety: one PoolController is used by one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/env.h"
#include "base/json.h"
#include "base/resource_id.h"
#include "base/statusor.h"
#include "fleet/node_driver.h"
#include "meta/meta_store.h"

namespace imagesmith::batch {

struct ControllerTiming {
  int64_t hello_deadline_us = 600'000'000;
  int64_t heartbeat_deadline_us = 30'000'000;
  int64_t tick_us = 200'000;
  std::optional<int64_t> resize_timeout_override_us;
  int task_threads = 16;  // IMAGESMITH_BATCH_TASK_THREADS
  static ControllerTiming FromEnv();
};

// The process-wide driver named `name` ("sim" or "qemu"), made on first use
// (sim with SimSettings::FromEnv, qemu with its state under
// `data_dir`/fleet). InvalidArgument for another name. The driver lives as
// long as the process, so nodes it made stay known to later controllers.
StatusOr<fleet::NodeDriver*> ProcessDriver(Env& env, const std::string& data_dir,
                                           const std::string& name);

// Where qemu nodes' disks come from: the api layer supplies regional disks
// (fleet/regional_disks.h) made from the store. `acquire` returns the raw
// disk for (image, region) and counts `node` as a user; `release` forgets
// it. Unused by sim; without them qemu pools fail allocation.
struct NodeDisks {
  std::function<StatusOr<std::string>(const std::string& image_id, const std::string& region,
                                      const std::string& node)>
      acquire;
  std::function<void(const std::string& image_id, const std::string& region,
                     const std::string& node)>
      release;
};

// The watch between controllers (api/batch_pool_watch.h, run by
// `imagesmith serve`): whether the nodes of `pool`, a pool no controller
// runs for, changed since their records were written, so that a controller
// must run: a node's machine is gone (or cannot be adopted), it was
// preempted, its heartbeats stopped for timing.heartbeat_deadline_us (or
// came back while it is unknown). Adopts the pool's nodes into the process
// driver first, so that later calls see their heartbeats (qemu: waits up to
// 15 s for the hello of a node it did not know). Changes nothing in the
// database. Returns "" when nothing changed, else a line naming the node
// and what happened. Errors: the database's, or an unknown node driver.
StatusOr<std::string> CheckPoolNodes(Env& env, meta::MetaStore& meta, const std::string& data_dir,
                                     const ResourceId& pool, const ControllerTiming& timing);

class PoolController {
 public:
  // `operation_id`: the durable operation this controller is the work of;
  // the pool record names it while the controller runs.
  PoolController(Env& env, meta::MetaStore& meta, std::string data_dir, ResourceId pool,
                 std::string operation_id, ControllerTiming timing = ControllerTiming::FromEnv(),
                 NodeDisks disks = {});
  PoolController(const PoolController&) = delete;
  PoolController& operator=(const PoolController&) = delete;
  ~PoolController();

  // Runs passes until the pool is quiet, deleted, or `cancel` is set (then
  // in-flight tasks are stopped and left for the next controller to
  // requeue). `status` receives a line when the pool's summary changes.
  // Returns the pool's summary: {allocationState, currentDedicatedNodes,
  // currentLowPriorityNodes, resizeErrors, deleted}. Errors are the
  // database's; problems with nodes and images end up in the pool's
  // resizeErrors and the nodes' errors instead.
  StatusOr<Json> Run(const std::atomic<bool>& cancel,
                     const std::function<void(std::string_view)>& status);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imagesmith::batch
