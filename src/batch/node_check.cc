// CheckPoolNodes (controller.h): the pool watch's look at a quiet pool's
// nodes. The same rules as the controller's ObserveNodes, read-only.
#include "base/strings.h"
#include "batch/controller.h"
#include "batch/controller_internal.h"
#include "batch/json_util.h"
#include "batch/model.h"

namespace imagesmith::batch {

using Machine = fleet::NodeObservation::Machine;

StatusOr<std::string> CheckPoolNodes(Env& env, meta::MetaStore& meta, const std::string& data_dir,
                                     const ResourceId& pool, const ControllerTiming& timing) {
  meta::Resource pool_r = NewResource(pool);
  std::vector<meta::Resource> nodes;
  bool missing = false;
  RETURN_IF_ERROR(meta.Read([&](meta::Transaction& txn) -> Status {
    auto r = txn.Get(pool);
    if (!r.ok()) {
      missing = r.status().code() == StatusCode::kNotFound;
      return missing ? Status::Ok() : r.status();
    }
    pool_r = *r;
    ASSIGN_OR_RETURN(nodes, txn.ListChildren(pool, kNodeType));
    return Status::Ok();
  }));
  if (missing || nodes.empty()) return std::string();
  const Json& ext = JGet(pool_r.properties, "imagesmith");
  ASSIGN_OR_RETURN(
      fleet::NodeDriver * driver,
      ProcessDriver(env, data_dir,
                    JStr(ext, "nodeDriver").empty() ? "qemu" : JStr(ext, "nodeDriver")));
  int64_t now = env.NowMicros();
  for (const meta::Resource& n : nodes) {
    const Json& next = JGet(n.properties, "imagesmith");
    if (JBool(next, "removed") || JBool(next, "removing")) continue;
    auto runtime = fleet::NodeRuntime::FromJson(JGet(next, "runtime"));
    if (!runtime.ok()) continue;  // never made: a controller's business
    std::string state = JStr(n.properties, "state");
    if (state == "unusable" || state == "preempted" || state == "leavingpool") continue;
    const std::string name = n.id.name();
    // A node this process's driver knows is observed; another is adopted
    // first (qemu: reconnects to its agent and waits for a hello).
    Status adopted = driver->Runtime(name).ok()
                         ? Status::Ok()
                         : driver->Adopt(NodeSpecOf(n, pool_r.properties, data_dir), *runtime);
    if (!adopted.ok()) {
      return "node " + name + ": its machine could not be adopted: " + adopted.message();
    }
    fleet::NodeObservation obs = driver->Observe(name);
    if (obs.machine == Machine::kGone) return "node " + name + ": its machine is not running";
    if (obs.machine == Machine::kPreempted) return "node " + name + ": preempted";
    if (obs.machine != Machine::kReady || obs.last_heartbeat_us <= 0) continue;
    bool late = now - obs.last_heartbeat_us > timing.heartbeat_deadline_us;
    if (late && state != "unknown") {
      return "node " + name + ": no heartbeat for " +
             std::to_string((now - obs.last_heartbeat_us) / 1'000'000) + " s";
    }
    if (!late && state == "unknown") return "node " + name + ": heartbeats are back";
  }
  return std::string();
}

}  // namespace imagesmith::batch
