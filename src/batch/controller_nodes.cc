// The pool controller's passes over nodes and tasks: adopt, act on requests,
// observe, resize, run start tasks, schedule tasks (controller.h).
#include <algorithm>
#include <ctime>

#include "base/random.h"
#include "base/strings.h"
#include "batch/controller_internal.h"
#include "batch/images.h"
#include "batch/json_util.h"

namespace imagesmith::batch {

namespace {

using Machine = fleet::NodeObservation::Machine;

bool Removed(const meta::Resource& n) { return JBool(JGet(n.properties, "imagesmith"), "removed"); }
bool Removing(const meta::Resource& n) {
  return JBool(JGet(n.properties, "imagesmith"), "removing");
}
std::string State(const meta::Resource& n) { return JStr(n.properties, "state"); }

Json Error(const std::string& code, const std::string& message) {
  Json e = Json::MakeObject();
  e.Set("code", Json::String(code));
  e.Set("message", Json::String(message));
  return e;
}

std::string Tail(Env& env, const std::string& path, size_t max) {
  auto text = env.ReadFile(path, 1 << 20);
  if (!text.ok()) return "";
  std::string s = *text;
  if (s.size() > max) s = "…" + s.substr(s.size() - max);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string Seconds(int64_t us) { return std::to_string(us / 1'000'000) + " s"; }

}  // namespace

std::string FormatUtc(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1'000'000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(micros / 1000 % 1000));
  return buf;
}

// ---- TaskRunner ---------------------------------------------------------------

void TaskRunner::Submit(Env& env, std::string key, std::string node, int64_t slots, Work work) {
  std::lock_guard lock(mu_);
  if (workers_.empty()) {
    for (int i = 0; i < threads_; ++i) workers_.emplace_back([this, &env] { Loop(&env); });
  }
  Item item;
  item.key = key;
  item.node = std::move(node);
  item.work = std::move(work);
  item.cancel = std::make_shared<std::atomic<bool>>(false);
  item.slots = slots;
  items_[key] = std::move(item);
  queue_.push_back(std::move(key));
  cv_.notify_one();
}

void TaskRunner::Loop(Env* env) {
  while (true) {
    std::string key;
    Work work;
    std::shared_ptr<std::atomic<bool>> cancel;
    std::string node;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      key = queue_.front();
      queue_.pop_front();
      auto it = items_.find(key);
      if (it == items_.end()) continue;
      it->second.started = true;
      work = it->second.work;
      cancel = it->second.cancel;
      node = it->second.node;
    }
    Done done;
    done.key = key;
    done.node = node;
    done.start_us = env->NowMicros();
    if (cancel->load()) {
      done.result = CancelledError("canceled before it started");
    } else {
      done.result = work(cancel.get());
    }
    done.end_us = env->NowMicros();
    done.canceled = cancel->load();
    std::lock_guard lock(mu_);
    items_.erase(key);
    done_.push_back(std::move(done));
  }
}

std::vector<TaskRunner::Done> TaskRunner::TakeDone() {
  std::lock_guard lock(mu_);
  std::vector<Done> out;
  out.swap(done_);
  return out;
}

bool TaskRunner::Has(const std::string& key) const {
  std::lock_guard lock(mu_);
  return items_.count(key) != 0;
}

bool TaskRunner::Started(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = items_.find(key);
  return it != items_.end() && it->second.started;
}

int64_t TaskRunner::SlotsInUse(const std::string& node) const {
  std::lock_guard lock(mu_);
  int64_t n = 0;
  for (const auto& [key, item] : items_) {
    if (item.node == node) n += item.slots;
  }
  return n;
}

int TaskRunner::TasksOn(const std::string& node) const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [key, item] : items_) n += item.node == node && item.slots > 0 ? 1 : 0;
  return n;
}

void TaskRunner::Cancel(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = items_.find(key);
  if (it != items_.end()) it->second.cancel->store(true);
}

void TaskRunner::CancelNode(const std::string& node) {
  std::lock_guard lock(mu_);
  for (auto& [key, item] : items_) {
    if (item.node == node) item.cancel->store(true);
  }
}

void TaskRunner::CancelAll() {
  std::lock_guard lock(mu_);
  for (auto& [key, item] : items_) item.cancel->store(true);
}

std::vector<std::string> TaskRunner::Keys() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, item] : items_) out.push_back(key);
  return out;
}

size_t TaskRunner::InFlight() const {
  std::lock_guard lock(mu_);
  return items_.size() + done_.size();
}

void TaskRunner::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [key, item] : items_) item.cancel->store(true);
    cv_.notify_all();
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

// ---- helpers --------------------------------------------------------------------

meta::Resource* PoolController::Impl::NodeByName(Snapshot& snap, const std::string& name) {
  auto it = node_index_.find(name);
  if (it == node_index_.end()) return nullptr;
  meta::Resource& n = snap.nodes[it->second];
  return Removed(n) ? nullptr : &n;
}

void PoolController::Impl::SetNodeState(Snapshot&, Changes& changes, meta::Resource& node,
                                        const std::string& state) {
  if (State(node) == state) return;
  node.properties.Set("state", Json::String(state));
  node.properties.Set("stateTransitionTime", Json::String(FormatUtc(env_.NowMicros())));
  changes.changed_nodes.insert(node.id.name());
}

std::string PoolController::Impl::NodeDir(const std::string& node) const {
  return batch::NodeDir(data_dir_, node);
}

std::string PoolController::Impl::TaskDir(const meta::Resource& task) const {
  return TaskFilesDir(data_dir_, task.id);
}

fleet::NodeSpec NodeSpecOf(const meta::Resource& node, const Json& pool_props,
                           const std::string& data_dir) {
  const Json& ext = JGet(node.properties, "imagesmith");
  fleet::NodeSpec spec;
  spec.node_id = node.id.name();
  spec.hostname = JStr(ext, "hostname");
  spec.mac = JStr(ext, "mac");
  spec.image.image_id = JStr(ext, "imageId");
  spec.image.disk = JStr(ext, "disk");
  spec.image.uefi = JBool(ext, "uefi");
  auto size = fleet::LookupVmSize(JStr(pool_props, "vmSize"));
  if (size.ok()) spec.size = *size;
  spec.low_priority = !JBool(node.properties, "isDedicated", true);
  spec.work_dir = batch::NodeDir(data_dir, node.id.name());
  return spec;
}

bool LostAfterUp(const meta::Resource& node) {
  std::string st = State(node);
  if (st == "preempted" || st == "unknown") return true;
  if (st != "unusable") return false;
  const Json& errors = JGet(node.properties, "errors");
  if (!errors.is_array() || errors.array_items().empty()) return false;
  std::string code = JStr(errors.array_items()[0], "code");
  return code == "NodeGone" || code == "NodeLost";
}

void PoolController::Impl::RemoveNode(Snapshot& snap, Changes& changes, meta::Resource& node) {
  runner_.CancelNode(node.id.name());
  (void)driver_->Delete(node.id.name());
  const Json& ext = JGet(node.properties, "imagesmith");
  if (disks_.release && !JStr(ext, "disk").empty()) {
    disks_.release(JStr(ext, "imageId"), JStr(ext, "diskRegion"), node.id.name());
  }
  (void)env_.RemoveAll(NodeDir(node.id.name()));
  JObj(node.properties, "imagesmith").Set("removed", Json::Bool(true));
  changes.deleted_nodes.push_back(node.id);
  changes.changed_nodes.erase(node.id.name());
  // Tasks that ran there go back to the queue (unless a completion already
  // settled them).
  for (size_t i = 0; i < snap.tasks.size(); ++i) {
    const Json& p = snap.tasks[i].properties;
    std::string st = JStr(p, "state");
    if ((st == "running" || st == "preparing") &&
        JStr(JGet(p, "nodeInfo"), "nodeId") == node.id.name() &&
        !runner_.Has(snap.tasks[i].id.ToString())) {
      RequeueTask(snap, changes, i, "its node " + node.id.name() + " left the pool");
    }
  }
}

void PoolController::Impl::RequeueTask(Snapshot& snap, Changes& changes, size_t index,
                                       const std::string& why) {
  Json& p = snap.tasks[index].properties;
  p.Set("state", Json::String("active"));
  p.Set("stateTransitionTime", Json::String(FormatUtc(env_.NowMicros())));
  Json& exec = JObj(p, "executionInfo");
  exec.Set("requeueCount", Json::Int(JInt(exec, "requeueCount") + 1));
  exec.Set("lastRequeueTime", Json::String(FormatUtc(env_.NowMicros())));
  exec.Set("lastRequeueReason", Json::String(why));
  JErase(p, "nodeInfo");
  changes.changed_tasks.insert(index);
}

// ---- completions ------------------------------------------------------------------

void PoolController::Impl::ApplyCompletions(Snapshot& snap, Changes& changes) {
  for (TaskRunner::Done& done : runner_.TakeDone()) {
    if (StartsWith(done.key, "start:")) {
      meta::Resource* node = NodeByName(snap, done.node);
      if (node == nullptr) continue;
      Json& info = JObj(node->properties, "startTaskInfo");
      const Json& st = JGet(snap.pool.properties, "startTask");
      int64_t max_retries = JInt(st, "maxTaskRetryCount");
      std::string out_path = NodeDir(done.node) + "/startup/stdout.txt";
      std::string err_path = NodeDir(done.node) + "/startup/stderr.txt";
      info.Set("endTime", Json::String(FormatUtc(done.end_us)));
      changes.changed_nodes.insert(done.node);
      if (!done.result.ok() || done.canceled) {
        // The node went away under it (or the controller stopped): the next
        // pass decides from what the driver sees; run it again when ready.
        info.Set("state", Json::String("none"));
        continue;
      }
      int code = done.result->exit_code;
      info.Set("exitCode", Json::Int(code));
      bool ok = code == 0 && done.result->failure.empty() && !done.result->timed_out;
      if (!ok && JInt(info, "retryCount") < max_retries) {
        info.Set("retryCount", Json::Int(JInt(info, "retryCount") + 1));
        info.Set("state", Json::String("none"));  // runs again next pass
        continue;
      }
      info.Set("state", Json::String("completed"));
      info.Set("result", Json::String(ok ? "success" : "failure"));
      if (!ok) {
        std::string msg = "the start task exited with code " + std::to_string(code);
        if (!done.result->failure.empty()) msg = done.result->failure;
        if (done.result->timed_out) msg = "the start task ran past its maximum wall-clock time";
        msg += " after " + std::to_string(JInt(info, "retryCount") + 1) + " attempt(s)";
        std::string out = Tail(env_, out_path, 2000), err = Tail(env_, err_path, 2000);
        if (!out.empty()) msg += "; stdout: " + out;
        if (!err.empty()) msg += "; stderr: " + err;
        Json failure = Json::MakeObject();
        failure.Set("category", Json::String("UserError"));
        failure.Set("code", Json::String("FailureExitCode"));
        failure.Set("message", Json::String(msg));
        info.Set("failureInfo", failure);
      }
      continue;
    }
    // A task.
    size_t index = snap.tasks.size();
    for (size_t i = 0; i < snap.tasks.size(); ++i) {
      if (snap.tasks[i].id.ToString() == done.key) index = i;
    }
    if (index == snap.tasks.size()) continue;  // its job was deleted
    Json& p = snap.tasks[index].properties;
    meta::Resource* node = NodeByName(snap, done.node);
    bool terminating =
        node != nullptr && ((Removing(*node) && JStr(JGet(node->properties, "imagesmith"),
                                                     "deallocation") == "terminate") ||
                            (done.canceled && JStr(JGet(node->properties, "imagesmith"),
                                                   "disableOption") == "terminate"));
    if (!done.result.ok() || (done.canceled && !terminating)) {
      RequeueTask(snap, changes, index,
                  done.result.ok() ? "its node left the pool"
                                   : "its node was lost: " + done.result.status().message());
      continue;
    }
    Json& exec = JObj(p, "executionInfo");
    exec.Set("endTime", Json::String(FormatUtc(done.end_us)));
    int code = terminating ? -1 : done.result->exit_code;
    bool ok = code == 0 && done.result->failure.empty() && !done.result->timed_out;
    int64_t max_retries = JInt(JGet(p, "constraints"), "maxTaskRetryCount");
    if (!ok && !terminating && JInt(exec, "retryCount") < max_retries) {
      exec.Set("retryCount", Json::Int(JInt(exec, "retryCount") + 1));
      p.Set("state", Json::String("active"));
      p.Set("stateTransitionTime", Json::String(FormatUtc(env_.NowMicros())));
      changes.changed_tasks.insert(index);
      continue;
    }
    exec.Set("exitCode", Json::Int(code));
    exec.Set("result", Json::String(ok ? "success" : "failure"));
    if (!ok) {
      Json failure = Json::MakeObject();
      failure.Set("category", Json::String(terminating ? "ServerError" : "UserError"));
      failure.Set("code", Json::String(terminating ? "TaskEnded" : "FailureExitCode"));
      failure.Set("message",
                  Json::String(terminating ? "the task was terminated because its node was "
                                             "removed or disabled with option terminate"
                               : !done.result->failure.empty()
                                   ? done.result->failure
                                   : "the task exited with code " + std::to_string(code)));
      exec.Set("failureInfo", failure);
    }
    p.Set("state", Json::String("completed"));
    p.Set("stateTransitionTime", Json::String(FormatUtc(env_.NowMicros())));
    changes.changed_tasks.insert(index);
    if (node != nullptr) {
      Json& np = node->properties;
      np.Set("totalTasksRun", Json::Int(JInt(np, "totalTasksRun") + 1));
      if (ok) np.Set("totalTasksSucceeded", Json::Int(JInt(np, "totalTasksSucceeded") + 1));
      changes.changed_nodes.insert(done.node);
    }
  }
}

// ---- deletion, adoption, requests -------------------------------------------------

bool PoolController::Impl::TearDown(Snapshot& snap, Changes& changes) {
  runner_.CancelAll();
  for (meta::Resource& n : snap.nodes) {
    if (Removed(n)) continue;
    RemoveNode(snap, changes, n);
  }
  return runner_.InFlight() == 0;
}

void PoolController::Impl::AdoptNodes(Snapshot& snap, Changes& changes) {
  for (meta::Resource& n : snap.nodes) {
    if (Removed(n) || adopted_.count(n.id.name()) != 0) continue;
    const Json& ext = JGet(n.properties, "imagesmith");
    adopted_.insert(n.id.name());
    auto runtime = fleet::NodeRuntime::FromJson(JGet(ext, "runtime"));
    if (!runtime.ok()) continue;  // never created (creating): Allocate handles it
    // Known to this process's driver already (the pool watch, an earlier
    // controller): Observe tells what became of it.
    if (driver_->Runtime(n.id.name()).ok()) continue;
    Status s = driver_->Adopt(SpecOf(n, snap), *runtime);
    if (!s.ok()) {
      n.properties.Set("errors", Json::MakeArray());
      JObj(n.properties, "imagesmith");
      Json errors = Json::MakeArray();
      errors.Append(Error("NodeLost", "the node's machine could not be adopted: " + s.message()));
      std::string was = State(n);
      if (was != "unusable" && was != "preempted" && was != "leavingpool") {
        n.properties.Set("errors", errors);
        SetNodeState(snap, changes, n, "unusable");
        ++changes.newly_lost;
      }
    }
  }
  // Tasks whose records are gone (their job was deleted) are stopped.
  std::set<std::string> known;
  for (const meta::Resource& t : snap.tasks) known.insert(t.id.ToString());
  for (const std::string& key : runner_.Keys()) {
    if (!StartsWith(key, "start:") && known.count(key) == 0) runner_.Cancel(key);
  }
  // Tasks the records say run but nobody here runs were lost with the
  // process that ran them: requeue them.
  for (size_t i = 0; i < snap.tasks.size(); ++i) {
    std::string st = JStr(snap.tasks[i].properties, "state");
    if ((st == "running" || st == "preparing") && !runner_.Has(snap.tasks[i].id.ToString())) {
      RequeueTask(snap, changes, i, "the process that ran it stopped");
    }
  }
  for (meta::Resource& n : snap.nodes) {
    Json& info = JObj(n.properties, "startTaskInfo");
    if (JStr(info, "state") == "running" && !runner_.Has("start:" + n.id.name())) {
      info.Set("state", Json::String("none"));
      changes.changed_nodes.insert(n.id.name());
    }
  }
}

void PoolController::Impl::NodeActions(Snapshot& snap, Changes& changes) {
  const Json& actions = JGet(JGet(snap.pool.properties, "imagesmith"), "nodeActions");
  if (!actions.is_object()) return;
  for (const JsonMember& m : actions.object_items()) {
    changes.consumed_actions.push_back(m.key);
    meta::Resource* node = NodeByName(snap, m.key);
    if (node == nullptr) continue;
    std::string action = JStr(m.value, "action");
    if (action == "disableScheduling" || action == "enableScheduling") {
      // Batch's node scheduling: a disabled node takes no new task and is
      // offline once nothing runs on it; its running tasks are requeued,
      // terminated, or left to finish (taskcompletion).
      bool disable = action == "disableScheduling";
      Json& ext = JObj(node->properties, "imagesmith");
      node->properties.Set("schedulingState", Json::String(disable ? "disabled" : "enabled"));
      changes.changed_nodes.insert(node->id.name());
      if (!disable) {
        JErase(ext, "disableOption");
        continue;
      }
      std::string option = JStr(m.value, "nodeDeallocationOption");
      if (option.empty()) option = "requeue";
      ext.Set("disableOption", Json::String(option));
      if (option == "taskcompletion") continue;
      for (const meta::Resource& t : snap.tasks) {
        if (JStr(JGet(t.properties, "nodeInfo"), "nodeId") == node->id.name()) {
          runner_.Cancel(t.id.ToString());
        }
      }
      continue;
    }
    if (action == "delete") {
      Json& ext = JObj(node->properties, "imagesmith");
      ext.Set("removing", Json::Bool(true));
      ext.Set("deallocation", Json::String(JStr(m.value, "nodeDeallocationOption").empty()
                                               ? "requeue"
                                               : JStr(m.value, "nodeDeallocationOption")));
      ext.Set("userDeleted", Json::Bool(true));
      SetNodeState(snap, changes, *node, "leavingpool");
      continue;
    }
    runner_.CancelNode(node->id.name());
    Status s;
    if (action == "reboot") {
      s = driver_->Reboot(node->id.name());
    } else {
      fleet::NodeSpec spec = SpecOf(*node, snap);
      s = driver_->Reimage(node->id.name(), spec.image);
      Json& info = JObj(node->properties, "startTaskInfo");
      info.Set("state", Json::String("none"));
      info.Set("retryCount", Json::Int(0));
    }
    Json& ext = JObj(node->properties, "imagesmith");
    ext.Set("bootStartUs", Json::Int(env_.NowMicros()));
    JErase(ext, "helloUs");
    if (action == "reboot")
      JObj(node->properties, "startTaskInfo").Set("state", Json::String("none"));
    if (!s.ok()) {
      Json errors = Json::MakeArray();
      errors.Append(Error("NodeActionFailed", action + " failed: " + s.message()));
      node->properties.Set("errors", errors);
      SetNodeState(snap, changes, *node, "unusable");
      continue;
    }
    SetNodeState(snap, changes, *node, action == "reboot" ? "rebooting" : "reimaging");
  }
}

// ---- observation -------------------------------------------------------------------

void PoolController::Impl::StartStartTask(Snapshot& snap, Changes& changes, meta::Resource& node) {
  const Json& st = JGet(snap.pool.properties, "startTask");
  std::string dir = NodeDir(node.id.name()) + "/startup";
  (void)env_.CreateDirs(dir);
  (void)env_.WriteFileAtomic(dir + "/stdout.txt", "");
  (void)env_.WriteFileAtomic(dir + "/stderr.txt", "");
  fleet::TaskSpec spec;
  spec.command_line = JStr(st, "commandLine");
  const Json& env_settings = JGet(st, "environmentSettings");
  if (env_settings.is_array()) {
    for (const Json& e : env_settings.array_items()) {
      spec.environment.push_back(JStr(e, "name") + "=" + JStr(e, "value"));
    }
  }
  spec.environment.push_back("AZ_BATCH_POOL_ID=" + pool_id_.name());
  spec.environment.push_back("AZ_BATCH_NODE_ID=" + node.id.name());
  spec.environment.push_back("AZ_BATCH_NODE_STARTUP_DIR=/mnt/batch/tasks/startup");
  spec.admin = JStr(JGet(JGet(st, "userIdentity"), "autoUser"), "elevationLevel") == "admin";
  spec.working_dir = "/mnt/batch/tasks/startup/wd";
  spec.stdout_path = dir + "/stdout.txt";
  spec.stderr_path = dir + "/stderr.txt";
  Json& info = JObj(node.properties, "startTaskInfo");
  info.Set("state", Json::String("running"));
  info.Set("startTime", Json::String(FormatUtc(env_.NowMicros())));
  JErase(info, "endTime");
  JErase(info, "exitCode");
  JErase(info, "result");
  JErase(info, "failureInfo");
  changes.changed_nodes.insert(node.id.name());
  fleet::NodeDriver* driver = driver_;
  std::string id = node.id.name();
  runner_.Submit(env_, "start:" + id, id, 0, [driver, id, spec](const std::atomic<bool>* cancel) {
    return driver->RunTask(id, spec, cancel);
  });
}

void PoolController::Impl::ObserveNodes(Snapshot& snap, Changes& changes) {
  int64_t now = env_.NowMicros();
  const Json& start_task = JGet(snap.pool.properties, "startTask");
  bool has_start_task = start_task.is_object() && !JStr(start_task, "commandLine").empty();
  bool wait_for_success = JBool(start_task, "waitForSuccess", true);
  std::string sku =
      JStr(JGet(snap.pool.properties, "virtualMachineConfiguration"), "nodeAgentSKUId");
  for (meta::Resource& n : snap.nodes) {
    if (Removed(n) || !JGet(JGet(n.properties, "imagesmith"), "runtime").is_object()) continue;
    std::string state = State(n);
    if (state == "unusable" || state == "preempted") continue;
    Json& ext = JObj(n.properties, "imagesmith");
    fleet::NodeObservation obs = driver_->Observe(n.id.name());
    auto fail = [&](const std::string& new_state, const std::string& code,
                    const std::string& message) {
      Json errors = Json::MakeArray();
      errors.Append(Error(code, message));
      n.properties.Set("errors", errors);
      // A node that was up and is lost now (not one that never came up):
      // a steady pool replaces it.
      bool was_up = JInt(ext, "helloUs") > 0 && state != "unknown";
      if (was_up && (new_state == "unknown" || new_state == "preempted" || code == "NodeGone")) {
        ++changes.newly_lost;
      }
      SetNodeState(snap, changes, n, new_state);
    };
    if (obs.machine == Machine::kGone) {
      if (state == "leavingpool") continue;
      fail("unusable", "NodeGone",
           "the node's machine is not running" + (obs.detail.empty() ? "" : ": " + obs.detail));
      continue;
    }
    if (obs.machine == Machine::kPreempted) {
      fail("preempted", "NodePreempted", "the low-priority node was preempted");
      continue;
    }
    if (state == "leavingpool") continue;
    if (obs.machine == Machine::kBooting) {
      int64_t boot = JInt(ext, "bootStartUs");
      if (JInt(ext, "helloUs") > 0) {
        // It was up: the guest rebooted by itself, or this process cannot
        // hear its agent yet (another process holds the channel). The hello
        // deadline runs from when this controller first saw it so.
        auto seen = booting_since_.emplace(n.id.name(), now).first;
        boot = std::max(boot, seen->second);
      }
      if (now - boot > timing_.hello_deadline_us) {
        fail("unusable", "NodeAgentNoHello",
             "the node's agent did not say hello within " + Seconds(timing_.hello_deadline_us) +
                 " of its start (the image may not boot" +
                 (obs.detail.empty() ? "" : "; " + obs.detail) + ")");
        continue;
      }
      if (state == "creating") SetNodeState(snap, changes, n, "starting");
      continue;
    }
    // Ready: hello said.
    booting_since_.erase(n.id.name());
    if (JInt(ext, "helloUs") == 0) {
      ext.Set("helloUs", Json::Int(now));
      changes.changed_nodes.insert(n.id.name());
      if (obs.guest.has_value()) {
        Json osr = Json::MakeObject();
        for (const auto& [k, v] : obs.guest->os_release) osr.Set(k, Json::String(v));
        ext.Set("osRelease", osr);
        Json agent = Json::MakeObject();
        agent.Set("version", Json::String(obs.guest->agent_version));
        agent.Set("lastUpdateTime", Json::String(FormatUtc(now)));
        n.properties.Set("nodeAgentInfo", agent);
        auto id = obs.guest->os_release.find("ID");
        auto ver = obs.guest->os_release.find("VERSION_ID");
        if (!sku.empty() && id != obs.guest->os_release.end() &&
            !SkuFitsOsRelease(sku, id->second,
                              ver == obs.guest->os_release.end() ? "" : ver->second)) {
          fail("unusable", "NodeAgentSkuMismatch",
               "the node's OS (" + id->second + " " +
                   (ver == obs.guest->os_release.end() ? "" : ver->second) +
                   ", from /etc/os-release) does not fit nodeAgentSKUId '" + sku + "'");
          continue;
        }
      }
    }
    if (obs.last_heartbeat_us > 0 && now - obs.last_heartbeat_us > timing_.heartbeat_deadline_us) {
      if (state != "unknown") {
        fail("unknown", "HeartbeatLost",
             "no heartbeat from the node's agent for " + Seconds(now - obs.last_heartbeat_us) +
                 " (deadline " + Seconds(timing_.heartbeat_deadline_us) + ")");
      }
      continue;
    }
    if (state == "unknown") n.properties.Set("errors", Json::MakeArray());
    Json& info = JObj(n.properties, "startTaskInfo");
    std::string st_state = JStr(info, "state");
    if (has_start_task && (st_state.empty() || st_state == "none")) {
      StartStartTask(snap, changes, n);
      st_state = "running";
    }
    std::string next;
    if (has_start_task && wait_for_success && st_state == "running") {
      next = "waitingforstarttask";
    } else if (has_start_task && wait_for_success && JStr(info, "result") == "failure") {
      next = "starttaskfailed";
    } else if (runner_.TasksOn(n.id.name()) > 0) {
      next = "running";
    } else {
      next = JStr(n.properties, "schedulingState") == "disabled" ? "offline" : "idle";
    }
    if (next == "starttaskfailed" && state != "starttaskfailed") {
      n.properties.Set("errors", Json::MakeArray());
    }
    int64_t running = runner_.TasksOn(n.id.name());
    if (JInt(n.properties, "runningTasksCount", -1) != running) {
      n.properties.Set("runningTasksCount", Json::Int(running));
      changes.changed_nodes.insert(n.id.name());
    }
    SetNodeState(snap, changes, n, next);
  }
}

}  // namespace imagesmith::batch
