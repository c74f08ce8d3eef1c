// The pool controller's resize (create, replace and remove nodes; end a
// resize with Batch's resizeErrors) and its task scheduler (controller.h).
#include <algorithm>

#include "base/random.h"
#include "base/strings.h"
#include "batch/controller_internal.h"
#include "batch/images.h"
#include "batch/json_util.h"

namespace imagesmith::batch {

namespace {

bool Removed(const meta::Resource& n) { return JBool(JGet(n.properties, "imagesmith"), "removed"); }
bool Removing(const meta::Resource& n) {
  return JBool(JGet(n.properties, "imagesmith"), "removing");
}
std::string State(const meta::Resource& n) { return JStr(n.properties, "state"); }
bool Dedicated(const meta::Resource& n) { return JBool(n.properties, "isDedicated", true); }
bool Failed(const meta::Resource& n) {
  std::string st = State(n);
  return st == "unusable" || st == "unknown" || st == "preempted";
}
bool Live(const meta::Resource& n) { return !Removed(n) && !Removing(n) && !Failed(n); }
bool Settled(const meta::Resource& n) {
  std::string st = State(n);
  return st == "idle" || st == "running" || st == "starttaskfailed" || st == "offline";
}
// Which nodes a shrink removes first.
int RemovalRank(const meta::Resource& n) {
  std::string st = State(n);
  if (st == "unusable" || st == "unknown" || st == "starttaskfailed") return 0;
  if (st == "creating" || st == "starting" || st == "waitingforstarttask") return 1;
  if (st == "idle") return 2;
  return 3;
}

Json ResizeError(const std::string& code, const std::string& message) {
  Json e = Json::MakeObject();
  e.Set("code", Json::String(code));
  e.Set("message", Json::String(message));
  return e;
}

std::string RandomMac() {
  std::string hex = RandomHex(6);
  return "52:54:00:" + hex.substr(0, 2) + ":" + hex.substr(2, 2) + ":" + hex.substr(4, 2);
}

}  // namespace

void PoolController::Impl::Allocate(Snapshot& snap, Changes& changes) {
  Json& props = snap.pool.properties;
  Json& ext = JObj(props, "imagesmith");
  int64_t now = env_.NowMicros();
  std::string alloc = JStr(props, "allocationState");
  int64_t target_d = JInt(props, "targetDedicatedNodes");
  int64_t target_l = JInt(props, "targetLowPriorityNodes");
  auto set_alloc = [&](const std::string& state) {
    if (JStr(props, "allocationState") == state) return;
    props.Set("allocationState", Json::String(state));
    props.Set("allocationStateTransitionTime", Json::String(FormatUtc(now)));
  };
  auto add_error = [&](const std::string& code, const std::string& message) {
    Json& errors = JGet(props, "resizeErrors").is_array()
                       ? *props.Find("resizeErrors")
                       : props.Set("resizeErrors", Json::MakeArray());
    for (const Json& e : errors.array_items()) {
      if (JStr(e, "code") == code) return;
    }
    errors.Append(ResizeError(code, message));
  };

  // Nodes being removed go when nothing of theirs runs any more.
  for (meta::Resource& n : snap.nodes) {
    if (Removed(n) || !Removing(n)) continue;
    std::string option = JStr(JGet(n.properties, "imagesmith"), "deallocation");
    if (option == "requeue" || option == "terminate" || option.empty()) {
      runner_.CancelNode(n.id.name());
    } else {
      runner_.Cancel("start:" + n.id.name());
    }
    bool busy = false;
    for (const meta::Resource& t : snap.tasks) {
      std::string st = JStr(t.properties, "state");
      if ((st == "running" || st == "preparing") &&
          JStr(JGet(t.properties, "nodeInfo"), "nodeId") == n.id.name() &&
          runner_.Has(t.id.ToString())) {
        busy = true;
      }
    }
    if (!busy && !runner_.Has("start:" + n.id.name())) RemoveNode(snap, changes, n);
  }

  if (alloc == "stopping") {
    add_error("ResizeStopped",
              "the resize was stopped (batch pool stop-resize) before the pool "
              "reached its target");
    set_alloc("steady");
    alloc = "steady";
  }

  int64_t live_d = 0, live_l = 0;
  for (const meta::Resource& n : snap.nodes) {
    if (Live(n)) (Dedicated(n) ? live_d : live_l)++;
  }
  if (alloc == "steady" && changes.newly_lost > 0 && (live_d < target_d || live_l < target_l)) {
    // A steady pool that lost nodes in this pass (machine gone, heartbeats
    // stopped, preempted) starts a resize of its own to replace them. Only
    // on the loss itself: nodes left lost by a resize that timed out or
    // failed do not start one resize after another.
    ext.Set("resizeSeq", Json::Int(JInt(ext, "resizeSeq") + 1));
    ext.Set("resizeStartUs", Json::Int(now));
    props.Set("resizeErrors", Json::MakeArray());
    set_alloc("resizing");
    alloc = "resizing";
  }

  if (alloc == "resizing") {
    int64_t timeout_us = timing_.resize_timeout_override_us.value_or(
        JInt(ext, "resizeTimeoutSeconds", kDefaultResizeTimeoutSeconds) * 1'000'000);
    int64_t start = JInt(ext, "resizeStartUs", now);
    bool timed_out = now - start > timeout_us;
    bool failed = false;
    const Json& errs = JGet(props, "resizeErrors");
    if (errs.is_array()) {
      for (const Json& e : errs.array_items())
        failed = failed || JStr(e, "code") == "AllocationFailed";
    }
    // Replace failed nodes while the resize has time left. A node lost
    // after it came up stays listed (with its state and errors) until the
    // resize ends, so users see what was replaced; one that never came up
    // goes at once.
    if (!timed_out && !failed) {
      for (meta::Resource& n : snap.nodes) {
        if (!Removed(n) && !Removing(n) && Failed(n) && !LostAfterUp(n)) {
          RemoveNode(snap, changes, n);
        }
      }
    }
    // The account's core quota caps what may be allocated.
    auto size = fleet::LookupVmSize(JStr(props, "vmSize"));
    int64_t cores = size.ok() ? std::max(1, size->cpus) : 1;
    int64_t quota_d =
        JInt(snap.account.properties, "dedicatedCoreQuota", kDefaultDedicatedCoreQuota);
    int64_t quota_l =
        JInt(snap.account.properties, "lowPriorityCoreQuota", kDefaultLowPriorityCoreQuota);
    int64_t allowed_d = std::max<int64_t>(0, (quota_d - snap.other_dedicated_cores) / cores);
    int64_t allowed_l = std::max<int64_t>(0, (quota_l - snap.other_low_priority_cores) / cores);
    int64_t want_d = std::min(target_d, allowed_d), want_l = std::min(target_l, allowed_l);
    bool quota_hit = want_d < target_d || want_l < target_l;

    int64_t need_d = want_d - live_d, need_l = want_l - live_l;
    if (!timed_out && !failed && (need_d > 0 || need_l > 0)) {
      std::string image_id = PoolImageIdOf(props);
      PoolImage image;
      Status resolved;
      const Json& uris =
          JGet(JGet(JGet(props, "virtualMachineConfiguration"), "osDisk"), "imageUris");
      if (!image_id.empty()) {
        resolved = meta_.Read([&](meta::Transaction& txn) -> Status {
          ASSIGN_OR_RETURN(
              image, ResolvePoolImage(txn, image_id, snap.pool.location, "virtualMachineImageId"));
          return Status::Ok();
        });
      } else if (uris.is_array()) {
        for (const Json& u : uris.array_items()) {
          std::string path = u.is_string() ? u.string_value() : "";
          if (StartsWith(path, "file://")) path = path.substr(7);
          if (resolved.ok() && !env_.FileExists(path)) {
            resolved = NotFoundError("the VHD " + path + " (osDisk.imageUris) does not exist");
          }
        }
        if (resolved.ok() && uris.array_items().size() > 0) {
          image.image_id = uris.array_items()[0].string_value();
        }
      }
      if (!resolved.ok()) {
        std::string msg = resolved.message();
        if (StartsWith(msg, "virtualMachineImageId: ")) msg = msg.substr(23);
        add_error("AllocationFailed",
                  "allocating " + std::to_string(std::max<int64_t>(0, need_d)) + " dedicated and " +
                      std::to_string(std::max<int64_t>(0, need_l)) + " low-priority nodes in " +
                      snap.pool.location + " failed: " + msg);
        failed = true;
      }
      for (int64_t i = 0; !failed && i < need_d + need_l; ++i) {
        bool dedicated = i < need_d;
        if (!dedicated && need_l <= 0) break;
        if (dedicated && need_d <= 0) continue;
        std::string name = "tvmps_" + RandomHex(24);
        meta::Resource node = NewResource(pool_id_.Child("nodes", name));
        node.location = snap.pool.location;
        Json& np = node.properties;
        np.Set("id", Json::String(name));
        np.Set("state", Json::String("creating"));
        np.Set("stateTransitionTime", Json::String(FormatUtc(now)));
        np.Set("allocationTime", Json::String(FormatUtc(now)));
        np.Set("isDedicated", Json::Bool(dedicated));
        np.Set("schedulingState", Json::String("enabled"));
        np.Set("vmSize", Json::String(JStr(props, "vmSize")));
        np.Set("runningTasksCount", Json::Int(0));
        np.Set("totalTasksRun", Json::Int(0));
        np.Set("errors", Json::MakeArray());
        Json& next = JObj(np, "imagesmith");
        // A hostname has no '_' (RFC 1123; the guest would drop it).
        std::string hostname = name;
        std::replace(hostname.begin(), hostname.end(), '_', '-');
        next.Set("hostname", Json::String(hostname));
        next.Set("mac", Json::String(RandomMac()));
        next.Set("imageId", Json::String(image.image_id));
        next.Set("uefi", Json::Bool(image.uefi));
        next.Set("bootStartUs", Json::Int(now));
        (void)env_.CreateDirs(NodeDir(name));
        if (driver_->Name() == "qemu") {
          StatusOr<std::string> disk =
              disks_.acquire ? disks_.acquire(image.image_id, snap.pool.location, name)
                             : StatusOr<std::string>(UnimplementedError(
                                   "this process cannot make regional disks for qemu nodes"));
          if (!disk.ok()) {
            (void)env_.RemoveAll(NodeDir(name));
            add_error("AllocationFailed", "the disk of " + image.image_id + " in " +
                                              snap.pool.location +
                                              " could not be made: " + disk.status().message());
            failed = true;
            break;
          }
          next.Set("disk", Json::String(*disk));
          next.Set("diskRegion", Json::String(snap.pool.location));
        }
        auto runtime = driver_->Create(SpecOf(node, snap));
        if (!runtime.ok()) {
          if (disks_.release && driver_->Name() == "qemu") {
            disks_.release(image.image_id, snap.pool.location, name);
          }
          (void)env_.RemoveAll(NodeDir(name));
          add_error("AllocationFailed", "creating a node with the " + std::string(driver_->Name()) +
                                            " driver failed: " + runtime.status().message());
          failed = true;
          break;
        }
        next.Set("runtime", runtime->ToJson());
        np.Set("state", Json::String("starting"));
        adopted_.insert(name);
        node_index_[name] = snap.nodes.size();
        snap.nodes.push_back(node);
        changes.created_nodes.insert(name);
        (dedicated ? live_d : live_l)++;
      }
    }
    // Shrink: take the least useful nodes first.
    for (int pass = 0; pass < 2; ++pass) {
      bool dedicated = pass == 0;
      int64_t excess = (dedicated ? live_d - target_d : live_l - target_l);
      if (excess <= 0) continue;
      std::vector<meta::Resource*> candidates;
      for (meta::Resource& n : snap.nodes) {
        if (Live(n) && Dedicated(n) == dedicated) candidates.push_back(&n);
      }
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const meta::Resource* a, const meta::Resource* b) {
                         return RemovalRank(*a) < RemovalRank(*b);
                       });
      std::string option = JStr(ext, "nodeDeallocationOption");
      for (int64_t i = 0; i < excess && i < static_cast<int64_t>(candidates.size()); ++i) {
        Json& next = JObj(candidates[static_cast<size_t>(i)]->properties, "imagesmith");
        next.Set("removing", Json::Bool(true));
        next.Set("deallocation", Json::String(option.empty() ? "requeue" : option));
        SetNodeState(snap, changes, *candidates[static_cast<size_t>(i)], "leavingpool");
        (dedicated ? live_d : live_l)--;
      }
    }
    bool leaving = false, settled = true;
    for (const meta::Resource& n : snap.nodes) {
      if (Removed(n)) continue;
      if (Removing(n)) leaving = true;
      if (Live(n) && !Settled(n)) settled = false;
    }
    if (failed) {
      set_alloc("steady");
    } else if (timed_out) {
      int64_t unusable = 0;
      for (const meta::Resource& n : snap.nodes) unusable += !Removed(n) && Failed(n) ? 1 : 0;
      add_error(
          "AllocationTimedOut",
          "the pool did not reach its target of " + std::to_string(target_d) + " dedicated and " +
              std::to_string(target_l) + " low-priority nodes within its resizeTimeout of " +
              FormatIsoDuration(timeout_us / 1'000'000) + ": " + std::to_string(live_d) +
              " dedicated and " + std::to_string(live_l) + " low-priority nodes are up" +
              (unusable > 0
                   ? ", " + std::to_string(unusable) + " unusable (see imagesmith batch node list)"
                   : std::string()));
      set_alloc("steady");
    } else if (live_d == want_d && live_l == want_l && settled && !leaving) {
      for (meta::Resource& n : snap.nodes) {
        if (!Removed(n) && !Removing(n) && Failed(n)) RemoveNode(snap, changes, n);
      }
      if (quota_hit) {
        add_error("AccountCoreQuotaReached",
                  "the account's core quota (" + std::to_string(quota_d) + " dedicated, " +
                      std::to_string(quota_l) + " low-priority cores; other pools use " +
                      std::to_string(snap.other_dedicated_cores) + " and " +
                      std::to_string(snap.other_low_priority_cores) + ") allows " +
                      std::to_string(want_d) + " dedicated and " + std::to_string(want_l) +
                      " low-priority " + JStr(props, "vmSize") + " nodes of the " +
                      std::to_string(target_d) + " and " + std::to_string(target_l) +
                      " asked; raise it with imagesmith batch account set");
      }
      set_alloc("steady");
    }
  }

  int64_t cur_d = 0, cur_l = 0;
  for (const meta::Resource& n : snap.nodes) {
    if (Removed(n)) continue;
    (Dedicated(n) ? cur_d : cur_l)++;
  }
  props.Set("currentDedicatedNodes", Json::Int(cur_d));
  props.Set("currentLowPriorityNodes", Json::Int(cur_l));
}

void PoolController::Impl::Schedule(Snapshot& snap, Changes& changes) {
  const Json& props = snap.pool.properties;
  int64_t slots_per_node = std::max<int64_t>(1, JInt(props, "taskSlotsPerNode", 1));
  const Json& start_task = JGet(props, "startTask");
  bool gate = start_task.is_object() && !JStr(start_task, "commandLine").empty() &&
              JBool(start_task, "waitForSuccess", true);
  // Tasks preparing whose thread picked them up now run.
  for (size_t i = 0; i < snap.tasks.size(); ++i) {
    Json& p = snap.tasks[i].properties;
    if (JStr(p, "state") == "preparing" && runner_.Started(snap.tasks[i].id.ToString())) {
      p.Set("state", Json::String("running"));
      p.Set("stateTransitionTime", Json::String(FormatUtc(env_.NowMicros())));
      changes.changed_tasks.insert(i);
    }
  }
  std::vector<meta::Resource*> nodes;
  for (meta::Resource& n : snap.nodes) {
    if (!Live(n) || (State(n) != "idle" && State(n) != "running")) continue;
    if (JStr(n.properties, "schedulingState") == "disabled") continue;
    if (gate && JStr(JGet(n.properties, "startTaskInfo"), "result") != "success") continue;
    nodes.push_back(&n);
  }
  if (nodes.empty()) return;
  std::map<std::string, int64_t> priority;
  for (const meta::Resource& j : snap.jobs) {
    if (JStr(j.properties, "state") == "active") {
      priority[AsciiToLower(j.id.name())] = JInt(j.properties, "priority");
    }
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < snap.tasks.size(); ++i) {
    if (JStr(snap.tasks[i].properties, "state") != "active") continue;
    if (priority.count(AsciiToLower(snap.tasks[i].id.Parent().name())) == 0) continue;
    order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int64_t pa = priority[AsciiToLower(snap.tasks[a].id.Parent().name())];
    int64_t pb = priority[AsciiToLower(snap.tasks[b].id.Parent().name())];
    if (pa != pb) return pa > pb;
    return snap.tasks[a].created_us < snap.tasks[b].created_us;
  });
  for (size_t index : order) {
    meta::Resource& task = snap.tasks[index];
    Json& p = task.properties;
    int64_t required = std::max<int64_t>(1, JInt(p, "requiredSlots", 1));
    meta::Resource* best = nullptr;
    int64_t best_free = 0;
    for (meta::Resource* n : nodes) {
      int64_t free = slots_per_node - runner_.SlotsInUse(n->id.name());
      if (free >= required && free > best_free) {
        best = n;
        best_free = free;
      }
    }
    if (best == nullptr) break;
    std::string dir = TaskDir(task);
    (void)env_.CreateDirs(dir);
    (void)env_.WriteFileAtomic(dir + "/stdout.txt", "");
    (void)env_.WriteFileAtomic(dir + "/stderr.txt", "");
    fleet::TaskSpec spec;
    spec.command_line = JStr(p, "commandLine");
    const Json& settings = JGet(p, "environmentSettings");
    if (settings.is_array()) {
      for (const Json& e : settings.array_items()) {
        spec.environment.push_back(JStr(e, "name") + "=" + JStr(e, "value"));
      }
    }
    std::string job = task.id.Parent().name();
    spec.environment.push_back("AZ_BATCH_JOB_ID=" + job);
    spec.environment.push_back("AZ_BATCH_TASK_ID=" + task.id.name());
    spec.environment.push_back("AZ_BATCH_POOL_ID=" + pool_id_.name());
    spec.environment.push_back("AZ_BATCH_NODE_ID=" + best->id.name());
    spec.admin = JStr(JGet(JGet(p, "userIdentity"), "autoUser"), "elevationLevel") == "admin";
    spec.working_dir = "/mnt/batch/tasks/workitems/" + job + "/job-1/" + task.id.name() + "/wd";
    spec.stdout_path = dir + "/stdout.txt";
    spec.stderr_path = dir + "/stderr.txt";
    p.Set("state", Json::String("preparing"));
    p.Set("stateTransitionTime", Json::String(FormatUtc(env_.NowMicros())));
    Json node_info = Json::MakeObject();
    node_info.Set("poolId", Json::String(pool_id_.name()));
    node_info.Set("nodeId", Json::String(best->id.name()));
    p.Set("nodeInfo", node_info);
    Json& exec = JObj(p, "executionInfo");
    exec.Set("startTime", Json::String(FormatUtc(env_.NowMicros())));
    JErase(exec, "endTime");
    JErase(exec, "exitCode");
    JErase(exec, "result");
    JErase(exec, "failureInfo");
    changes.changed_tasks.insert(index);
    fleet::NodeDriver* driver = driver_;
    std::string node_id = best->id.name();
    runner_.Submit(env_, task.id.ToString(), node_id, required,
                   [driver, node_id, spec](const std::atomic<bool>* cancel) {
                     return driver->RunTask(node_id, spec, cancel);
                   });
    SetNodeState(snap, changes, *best, "running");
  }
}

}  // namespace imagesmith::batch
