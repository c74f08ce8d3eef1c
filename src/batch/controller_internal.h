// The pool controller's insides, shared by controller.cc (the loop, loading
// and writing records) and controller_nodes.cc (node states, resizing,
// start tasks and task scheduling). Internal to src/batch/.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "batch/controller.h"
#include "batch/json_util.h"
#include "batch/model.h"

namespace imagesmith::batch {

// Runs start tasks and tasks (driver.RunTask, which blocks) on a few
// threads, started on first use. Thread-safe.
class TaskRunner {
 public:
  using Work = std::function<StatusOr<fleet::TaskResult>(const std::atomic<bool>* cancel)>;
  struct Done {
    std::string key;   // the task's ID, or "start:<node>"
    std::string node;  // the node it ran on
    StatusOr<fleet::TaskResult> result = fleet::TaskResult{};
    int64_t start_us = 0;
    int64_t end_us = 0;
    bool canceled = false;  // Cancel was called for it
  };

  explicit TaskRunner(int threads) : threads_(threads) {}
  ~TaskRunner() { Stop(); }

  // `slots`: the task slots it takes on the node (0 for a start task).
  void Submit(Env& env, std::string key, std::string node, int64_t slots, Work work);
  // Finished work since the last call.
  std::vector<Done> TakeDone();
  bool Has(const std::string& key) const;
  bool Started(const std::string& key) const;
  // Slots of the node's in-flight tasks (start tasks count 0).
  int64_t SlotsInUse(const std::string& node) const;
  int TasksOn(const std::string& node) const;
  void Cancel(const std::string& key);
  void CancelNode(const std::string& node);
  void CancelAll();
  size_t InFlight() const;
  // The keys of queued and running work.
  std::vector<std::string> Keys() const;
  // Cancels everything and joins the threads.
  void Stop();

 private:
  struct Item {
    std::string key, node;
    Work work;
    std::shared_ptr<std::atomic<bool>> cancel;
    bool started = false;
    int64_t slots = 0;
  };
  void Loop(Env* env);

  const int threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;      // guarded by mu_
  std::map<std::string, Item> items_;  // guarded by mu_: queued and running
  std::vector<Done> done_;             // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::vector<std::thread> workers_;   // started under mu_, joined by Stop
};

// The driver's spec of a pool's node from its record (hostname, MAC, image,
// disk, size from the pool's vmSize, work dir under `data_dir`).
fleet::NodeSpec NodeSpecOf(const meta::Resource& node, const Json& pool_props,
                           const std::string& data_dir);

// Whether a node record is one that was lost after it came up (unknown,
// preempted, unusable with NodeGone or NodeLost): it stays listed, with its
// state and errors, until the resize that replaces it ends.
bool LostAfterUp(const meta::Resource& node);

class PoolController::Impl {
 public:
  Impl(Env& env, meta::MetaStore& meta, std::string data_dir, ResourceId pool,
       std::string operation_id, ControllerTiming timing, NodeDisks disks);
  ~Impl();
  StatusOr<Json> Run(const std::atomic<bool>& cancel,
                     const std::function<void(std::string_view)>& status);

 private:
  // The pool's records as one pass reads them; the pass changes them in
  // place and Persist writes back what Changes lists.
  struct Snapshot {
    bool pool_missing = false;
    meta::Resource pool = NewResource(ResourceId::ForSubscription(""));
    meta::Resource account = NewResource(ResourceId::ForSubscription(""));
    std::vector<meta::Resource> nodes;
    std::vector<meta::Resource> jobs;   // the jobs on this pool
    std::vector<meta::Resource> tasks;  // their tasks
    int64_t other_dedicated_cores = 0;
    int64_t other_low_priority_cores = 0;
  };
  struct Changes {
    int64_t base_resize_seq = 0;
    std::set<std::string> created_nodes;  // by name; also in Snapshot::nodes
    std::set<std::string> changed_nodes;  // by name
    std::vector<ResourceId> deleted_nodes;
    std::set<size_t> changed_tasks;             // indexes into Snapshot::tasks
    std::vector<std::string> consumed_actions;  // node names
    // Nodes that were fine and were lost in this pass (machine gone,
    // heartbeats stopped, preempted): a steady pool starts a resize to
    // replace them.
    int newly_lost = 0;
    meta::Resource pool = NewResource(ResourceId::ForSubscription(""));  // the pool as written
  };

  Status Tick(bool& quiet, bool& gone, Json& summary);
  Status Load(Snapshot& snap);
  Status Persist(Snapshot& snap, Changes& changes, bool delete_pool, bool& quiet);
  bool Quiet(const Snapshot& snap) const;
  bool AnyNodeCanRun(const Snapshot& snap) const;

  // controller_nodes.cc
  void ApplyCompletions(Snapshot& snap, Changes& changes);
  bool TearDown(Snapshot& snap, Changes& changes);
  void AdoptNodes(Snapshot& snap, Changes& changes);
  void NodeActions(Snapshot& snap, Changes& changes);
  void ObserveNodes(Snapshot& snap, Changes& changes);
  void Allocate(Snapshot& snap, Changes& changes);
  void Schedule(Snapshot& snap, Changes& changes);
  // Helpers.
  meta::Resource* NodeByName(Snapshot& snap, const std::string& name);
  void SetNodeState(Snapshot& snap, Changes& changes, meta::Resource& node,
                    const std::string& state);
  void StartStartTask(Snapshot& snap, Changes& changes, meta::Resource& node);
  void RemoveNode(Snapshot& snap, Changes& changes, meta::Resource& node);
  void RequeueTask(Snapshot& snap, Changes& changes, size_t index, const std::string& why);
  fleet::NodeSpec SpecOf(const meta::Resource& node, const Snapshot& snap) const {
    return NodeSpecOf(node, snap.pool.properties, data_dir_);
  }
  std::string NodeDir(const std::string& node) const;
  std::string TaskDir(const meta::Resource& task) const;

  Env& env_;
  meta::MetaStore& meta_;
  const std::string data_dir_;
  const ResourceId pool_id_;
  const std::string operation_id_;
  const ControllerTiming timing_;
  const NodeDisks disks_;
  fleet::NodeDriver* driver_ = nullptr;
  std::map<std::string, size_t> node_index_;      // node name -> Snapshot::nodes index
  std::set<std::string> adopted_;                 // nodes this controller created or adopted
  std::map<std::string, int64_t> booting_since_;  // nodes that were up, seen booting since
  TaskRunner runner_;
};

}  // namespace imagesmith::batch
