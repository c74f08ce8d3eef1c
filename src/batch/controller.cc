// The pool controller's loop: load the records, apply what the task threads
// finished, act on nodes, resize, schedule, write back. Node states and task
// execution live in controller_nodes.cc.
#include "batch/controller.h"

#include <cstdlib>
#include <mutex>

#include "base/data_dir.h"
#include "base/random.h"
#include "base/strings.h"
#include "batch/controller_internal.h"
#include "batch/images.h"
#include "batch/json_util.h"

namespace imagesmith::batch {

namespace {

int64_t EnvSeconds(const char* name, int64_t fallback_us) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback_us;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (end == v || d <= 0) return fallback_us;
  return static_cast<int64_t>(d * 1e6);
}

}  // namespace

ControllerTiming ControllerTiming::FromEnv() {
  ControllerTiming t;
  t.hello_deadline_us = EnvSeconds("IMAGESMITH_BATCH_HELLO_DEADLINE_SECONDS", t.hello_deadline_us);
  t.heartbeat_deadline_us =
      EnvSeconds("IMAGESMITH_BATCH_HEARTBEAT_DEADLINE_SECONDS", t.heartbeat_deadline_us);
  if (const char* v = std::getenv("IMAGESMITH_BATCH_RESIZE_TIMEOUT_SECONDS");
      v != nullptr && *v != '\0') {
    t.resize_timeout_override_us = EnvSeconds("IMAGESMITH_BATCH_RESIZE_TIMEOUT_SECONDS", 0);
  }
  if (const char* v = std::getenv("IMAGESMITH_BATCH_TASK_THREADS"); v != nullptr) {
    int n = std::atoi(v);
    if (n > 0 && n <= 1024) t.task_threads = n;
  }
  return t;
}

StatusOr<fleet::NodeDriver*> ProcessDriver(Env& env, const std::string& data_dir,
                                           const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<fleet::NodeDriver>>* drivers =
      new std::map<std::string, std::unique_ptr<fleet::NodeDriver>>();
  std::lock_guard lock(mu);
  std::string key = AsciiToLower(name);
  auto it = drivers->find(key);
  if (it != drivers->end()) return it->second.get();
  std::unique_ptr<fleet::NodeDriver> driver;
  if (key == "sim") {
    driver = fleet::MakeSimDriver(env, fleet::SimSettings::FromEnv());
  } else if (key == "qemu") {
    RETURN_IF_ERROR(env.CreateDirs(data_dir + "/fleet"));
    driver = fleet::MakeQemuDriver(env, data_dir + "/fleet", VmAccelCacheFile(data_dir));
  } else {
    return InvalidArgumentError("node driver '" + name + "' is not known; use qemu or sim");
  }
  fleet::NodeDriver* raw = driver.get();
  (*drivers)[key] = std::move(driver);
  return raw;
}

PoolController::PoolController(Env& env, meta::MetaStore& meta, std::string data_dir,
                               ResourceId pool, std::string operation_id, ControllerTiming timing,
                               NodeDisks disks)
    : impl_(std::make_unique<Impl>(env, meta, std::move(data_dir), std::move(pool),
                                   std::move(operation_id), timing, std::move(disks))) {}

PoolController::~PoolController() = default;

StatusOr<Json> PoolController::Run(const std::atomic<bool>& cancel,
                                   const std::function<void(std::string_view)>& status) {
  return impl_->Run(cancel, status);
}

// ---- Impl -------------------------------------------------------------------

PoolController::Impl::Impl(Env& env, meta::MetaStore& meta, std::string data_dir, ResourceId pool,
                           std::string operation_id, ControllerTiming timing, NodeDisks disks)
    : env_(env),
      meta_(meta),
      data_dir_(std::move(data_dir)),
      pool_id_(std::move(pool)),
      operation_id_(std::move(operation_id)),
      timing_(timing),
      disks_(std::move(disks)),
      runner_(timing.task_threads) {}

PoolController::Impl::~Impl() { runner_.Stop(); }

StatusOr<Json> PoolController::Impl::Run(const std::atomic<bool>& cancel,
                                         const std::function<void(std::string_view)>& status) {
  std::string last_line;
  Json summary = Json::MakeObject();
  while (true) {
    bool quiet = false, gone = false;
    Status s = Tick(quiet, gone, summary);
    if (!s.ok()) {
      runner_.CancelAll();
      runner_.Stop();
      return s;
    }
    if (status) {
      std::string line = JStr(summary, "line");
      if (line != last_line) status(line);
      last_line = line;
    }
    if (gone || quiet) break;
    if (cancel.load()) {
      runner_.CancelAll();
      runner_.Stop();
      summary.Set("canceled", Json::Bool(true));
      break;
    }
    env_.SleepFor(std::chrono::milliseconds(timing_.tick_us / 1000));
  }
  JErase(summary, "line");
  return summary;
}

Status PoolController::Impl::Load(Snapshot& snap) {
  return meta_.Read([&](meta::Transaction& txn) -> Status {
    auto pool = txn.Get(pool_id_);
    if (!pool.ok()) {
      if (pool.status().code() == StatusCode::kNotFound) {
        snap.pool_missing = true;
        return Status::Ok();
      }
      return pool.status();
    }
    snap.pool = *pool;
    ASSIGN_OR_RETURN(snap.nodes, txn.ListChildren(pool_id_, kNodeType));
    ResourceId account = pool_id_.Parent();
    auto account_r = txn.Get(account);
    if (account_r.ok()) snap.account = *account_r;
    ASSIGN_OR_RETURN(std::vector<meta::Resource> jobs, txn.ListChildren(account, kJobType));
    for (meta::Resource& job : jobs) {
      if (!EqualsIgnoreCase(JStr(JGet(job.properties, "poolInfo"), "poolId"), pool_id_.name())) {
        continue;
      }
      ASSIGN_OR_RETURN(std::vector<meta::Resource> tasks, txn.ListChildren(job.id, kTaskType));
      for (meta::Resource& t : tasks) snap.tasks.push_back(std::move(t));
      snap.jobs.push_back(std::move(job));
    }
    // Cores other pools of the account hold, for the account's core quota.
    ASSIGN_OR_RETURN(std::vector<meta::Resource> pools, txn.ListChildren(account, kPoolType));
    for (const meta::Resource& p : pools) {
      if (EqualsIgnoreCase(p.id.name(), pool_id_.name())) continue;
      auto size = fleet::LookupVmSize(JStr(p.properties, "vmSize"));
      int64_t cores = size.ok() ? size->cpus : 1;
      snap.other_dedicated_cores += cores * JInt(p.properties, "currentDedicatedNodes");
      snap.other_low_priority_cores += cores * JInt(p.properties, "currentLowPriorityNodes");
    }
    return Status::Ok();
  });
}

Status PoolController::Impl::Tick(bool& quiet, bool& gone, Json& summary) {
  Snapshot snap;
  RETURN_IF_ERROR(Load(snap));
  if (snap.pool_missing) {
    gone = true;
    summary.Set("deleted", Json::Bool(true));
    return Status::Ok();
  }
  const Json& props = snap.pool.properties;
  const Json& ext = JGet(props, "imagesmith");
  if (!JStr(ext, "operationId").empty() && JStr(ext, "operationId") != operation_id_) {
    // A newer operation took the pool over (this one was abandoned and
    // resumed late): leave the pool to it.
    gone = true;
    summary.Set("superseded", Json::Bool(true));
    return Status::Ok();
  }
  auto driver = ProcessDriver(env_, data_dir_,
                              JStr(ext, "nodeDriver").empty() ? "qemu" : JStr(ext, "nodeDriver"));
  if (!driver.ok()) return driver.status();
  driver_ = *driver;

  Changes changes;
  changes.base_resize_seq = JInt(ext, "resizeSeq");
  node_index_.clear();
  for (size_t i = 0; i < snap.nodes.size(); ++i) node_index_[snap.nodes[i].id.name()] = i;
  ApplyCompletions(snap, changes);
  if (JStr(props, "state") == "deleting") {
    // Nodes an earlier process made must be adopted before this driver can
    // stop them.
    AdoptNodes(snap, changes);
    bool done = TearDown(snap, changes);
    RETURN_IF_ERROR(Persist(snap, changes, done, quiet));
    if (done) {
      gone = true;
      summary.Set("deleted", Json::Bool(true));
    }
    summary.Set("line", Json::String("pool " + pool_id_.name() + ": deleting " +
                                     std::to_string(snap.nodes.size()) + " nodes"));
    return Status::Ok();
  }
  AdoptNodes(snap, changes);
  NodeActions(snap, changes);
  ObserveNodes(snap, changes);
  Allocate(snap, changes);
  Schedule(snap, changes);
  bool idle = Quiet(snap);
  RETURN_IF_ERROR(Persist(snap, changes, false, idle));
  quiet = idle;

  const Json& p = changes.pool.properties;
  summary = Json::MakeObject();
  summary.Set("allocationState", Json::String(JStr(p, "allocationState")));
  summary.Set("currentDedicatedNodes", Json::Int(JInt(p, "currentDedicatedNodes")));
  summary.Set("currentLowPriorityNodes", Json::Int(JInt(p, "currentLowPriorityNodes")));
  summary.Set("resizeErrors",
              JGet(p, "resizeErrors").is_array() ? JGet(p, "resizeErrors") : Json::MakeArray());
  std::map<std::string, int> by_state;
  for (const meta::Resource& n : snap.nodes) by_state[JStr(n.properties, "state")]++;
  std::string states;
  for (const auto& [state, count] : by_state) {
    states += (states.empty() ? "" : ", ") + std::to_string(count) + " " + state;
  }
  int active = 0, running = 0, completed = 0;
  for (const meta::Resource& t : snap.tasks) {
    std::string st = JStr(t.properties, "state");
    if (st == "active") ++active;
    if (st == "running" || st == "preparing") ++running;
    if (st == "completed") ++completed;
  }
  std::string line = "pool " + pool_id_.name() + ": " + JStr(p, "allocationState") + ", " +
                     std::to_string(JInt(p, "targetDedicatedNodes")) + "+" +
                     std::to_string(JInt(p, "targetLowPriorityNodes")) + " nodes wanted; " +
                     (states.empty() ? "no nodes" : states);
  if (!snap.tasks.empty()) {
    line += "; tasks: " + std::to_string(active) + " active, " + std::to_string(running) +
            " running, " + std::to_string(completed) + " completed";
  }
  summary.Set("line", Json::String(line));
  return Status::Ok();
}

bool PoolController::Impl::Quiet(const Snapshot& snap) const {
  const Json& props = snap.pool.properties;
  if (JStr(props, "allocationState") != "steady") return false;
  const Json& actions = JGet(JGet(props, "imagesmith"), "nodeActions");
  if (actions.is_object() && !actions.object_items().empty()) return false;
  if (runner_.InFlight() > 0) return false;
  for (const meta::Resource& n : snap.nodes) {
    std::string st = JStr(n.properties, "state");
    if (st == "creating" || st == "starting" || st == "waitingforstarttask" || st == "rebooting" ||
        st == "reimaging" || st == "leavingpool") {
      return false;
    }
  }
  for (const meta::Resource& t : snap.tasks) {
    std::string st = JStr(t.properties, "state");
    if (st == "active" || st == "preparing" || st == "running") {
      // Active tasks with no node that could ever run them do not keep the
      // pool busy (an empty pool, or every node failed).
      if (st == "active" && !AnyNodeCanRun(snap)) continue;
      return false;
    }
  }
  return true;
}

bool PoolController::Impl::AnyNodeCanRun(const Snapshot& snap) const {
  for (const meta::Resource& n : snap.nodes) {
    std::string st = JStr(n.properties, "state");
    if (st == "idle" || st == "running" || st == "waitingforstarttask" || st == "starting" ||
        st == "creating" || st == "rebooting" || st == "reimaging") {
      return true;
    }
  }
  return false;
}

Status PoolController::Impl::Persist(Snapshot& snap, Changes& changes, bool delete_pool,
                                     bool& quiet) {
  return meta_.Update([&](meta::Transaction& txn) -> Status {
    for (const std::string& name : changes.created_nodes) {
      auto it = node_index_.find(name);
      if (it == node_index_.end()) continue;
      meta::Resource n = snap.nodes[it->second];
      RETURN_IF_ERROR(txn.Create(n));
    }
    for (const std::string& name : changes.changed_nodes) {
      auto it = node_index_.find(name);
      if (it == node_index_.end() || changes.created_nodes.count(name) != 0) continue;
      meta::Resource n = snap.nodes[it->second];
      Status s = txn.Replace(n);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    for (const ResourceId& id : changes.deleted_nodes) {
      Status s = txn.Delete(id);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    for (size_t i : changes.changed_tasks) {
      meta::Resource t = snap.tasks[i];
      Status s = txn.Replace(t);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    auto fresh = txn.Get(pool_id_);
    if (!fresh.ok()) {
      if (fresh.status().code() == StatusCode::kNotFound) return Status::Ok();
      return fresh.status();
    }
    if (delete_pool) return txn.Delete(pool_id_);
    Json& fp = fresh->properties;
    Json& fext = JObj(fp, "imagesmith");
    const Json& ours = snap.pool.properties;
    const Json& oext = JGet(ours, "imagesmith");
    bool same_resize = JInt(fext, "resizeSeq") == changes.base_resize_seq;
    if (same_resize) {
      for (const char* key : {"allocationState", "allocationStateTransitionTime", "resizeErrors"}) {
        fp.Set(key, JGet(ours, key));
      }
      fext.Set("resizeSeq", Json::Int(JInt(oext, "resizeSeq")));
      fext.Set("resizeStartUs", Json::Int(JInt(oext, "resizeStartUs")));
      JErase(fext, "stopRequested");
      if (JBool(oext, "stopRequested")) fext.Set("stopRequested", Json::Bool(true));
    }
    fp.Set("currentDedicatedNodes", JGet(ours, "currentDedicatedNodes"));
    fp.Set("currentLowPriorityNodes", JGet(ours, "currentLowPriorityNodes"));
    Json& actions = JObj(fext, "nodeActions");
    for (const std::string& done : changes.consumed_actions) JErase(actions, done);
    if (quiet) {
      // Release the pool only if nothing new arrived since the snapshot: a
      // new resize, a node action, or a task that a job got meanwhile.
      bool still =
          same_resize && actions.object_items().empty() && JStr(fp, "allocationState") == "steady";
      if (still) {
        ASSIGN_OR_RETURN(std::vector<meta::Resource> jobs,
                         txn.ListChildren(pool_id_.Parent(), kJobType));
        for (const meta::Resource& job : jobs) {
          if (!EqualsIgnoreCase(JStr(JGet(job.properties, "poolInfo"), "poolId"),
                                pool_id_.name())) {
            continue;
          }
          ASSIGN_OR_RETURN(std::vector<meta::Resource> tasks, txn.ListChildren(job.id, kTaskType));
          for (const meta::Resource& t : tasks) {
            bool known = false;
            for (const meta::Resource& mine : snap.tasks) {
              known = known || EqualsIgnoreCase(mine.id.ToString(), t.id.ToString());
            }
            if (!known && JStr(t.properties, "state") == "active" && AnyNodeCanRun(snap)) {
              still = false;
            }
          }
        }
      }
      if (still) {
        JErase(fext, "operationId");
      } else {
        quiet = false;
      }
    }
    changes.pool = *fresh;
    return txn.Replace(*fresh);
  });
}

}  // namespace imagesmith::batch
