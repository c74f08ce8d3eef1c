// A RolloutTarget over a node driver. See node_set.h.
#include "fleet/node_set.h"

#include "base/strings.h"

namespace imagesmith::fleet {

NodeSet::NodeSet(Env& env, NodeDriver& driver, NodeSetOptions options)
    : env_(env), driver_(driver), options_(std::move(options)) {}

void NodeSet::Add(const std::string& node_id, const std::string& image_id) {
  images_[node_id] = image_id;
}

InstanceView NodeSet::View(const std::string& id, const std::string& image, int64_t now_us) {
  InstanceView v;
  v.id = id;
  v.image = image;
  v.deferred = options_.deferred ? options_.deferred(id) : false;
  v.upgrade_domain = options_.upgrade_domain ? options_.upgrade_domain(id) : 0;
  NodeObservation obs = driver_.Observe(id);
  switch (obs.machine) {
    case NodeObservation::Machine::kBooting:
      v.health = Health::kPending;
      v.health_detail = "the node agent has not said hello yet";
      return v;
    case NodeObservation::Machine::kGone:
      v.health = Health::kUnhealthy;
      v.health_detail =
          "the machine is not running" + (obs.detail.empty() ? "" : ": " + obs.detail);
      return v;
    case NodeObservation::Machine::kPreempted:
      v.health = Health::kUnhealthy;
      v.health_detail = "preempted";
      return v;
    case NodeObservation::Machine::kReady:
      break;
  }
  if (now_us - obs.last_heartbeat_us > options_.heartbeat_limit_us) {
    v.health = Health::kUnhealthy;
    v.health_detail = "no heartbeat from the node agent for " +
                      std::to_string((now_us - obs.last_heartbeat_us) / 1'000'000) + " s";
    return v;
  }
  if (options_.health_command.empty()) {
    v.health = Health::kHealthy;
    return v;
  }
  auto cached = verdicts_.find(id);
  if (cached == verdicts_.end() || now_us - cached->second.at_us > options_.health_ttl_us) {
    TaskSpec task;
    task.command_line = options_.health_command;
    task.admin = true;
    task.stdout_path = JoinPath(options_.health_dir, id + ".health.out");
    task.stderr_path = task.stdout_path;
    task.max_wall_clock = std::chrono::seconds(90);
    (void)env_.RemoveAll(task.stdout_path);
    Verdict verdict;
    verdict.at_us = now_us;
    StatusOr<TaskResult> r = driver_.RunTask(id, task, nullptr);
    if (!r.ok()) {
      // The agent is not ready for commands yet: not a verdict.
      v.health = Health::kPending;
      v.health_detail = "health command not run: " + r.status().message();
      return v;
    }
    StatusOr<std::string> out = env_.ReadFile(task.stdout_path, 64 << 10);
    std::string output = out.ok() ? std::string(TrimWhitespace(out.value())) : "";
    if (!r->failure.empty()) {
      // The guest could not start the command yet (its root file system
      // or data disk is not mounted: a slow boot): not a verdict either.
      v.health = Health::kPending;
      v.health_detail =
          "health command not run: " + r->failure + (output.empty() ? "" : ": " + output);
      return v;
    }
    verdict.healthy = r->exit_code == 0 && !r->timed_out;
    if (!verdict.healthy) {
      verdict.detail =
          "health command `" + options_.health_command + "` " +
          (r->timed_out ? std::string("timed out") : "exited " + std::to_string(r->exit_code)) +
          (output.empty() ? "" : ": " + output);
    }
    cached = verdicts_.insert_or_assign(id, verdict).first;
  }
  v.health = cached->second.healthy ? Health::kHealthy : Health::kUnhealthy;
  v.health_detail = cached->second.detail;
  return v;
}

StatusOr<std::vector<InstanceView>> NodeSet::Instances() {
  std::vector<InstanceView> out;
  out.reserve(images_.size());
  const int64_t now = env_.NowMicros();
  for (const auto& [id, image] : images_) out.push_back(View(id, image, now));
  return out;
}

Status NodeSet::Reimage(const std::string& id, const std::string& image) {
  auto it = images_.find(id);
  if (it == images_.end()) return NotFoundError("no node " + id + " in this fleet");
  ASSIGN_OR_RETURN(NodeImage node_image, options_.resolve_image(image));
  RETURN_IF_ERROR(driver_.Reimage(id, node_image));
  it->second = image;
  verdicts_.erase(id);
  return Status::Ok();
}

StatusOr<std::string> NodeSet::AddInstance(const std::string& image) {
  if (!options_.new_node) {
    return FailedPreconditionError("this fleet cannot make new instances (maxSurge)");
  }
  ASSIGN_OR_RETURN(NodeImage node_image, options_.resolve_image(image));
  ASSIGN_OR_RETURN(NodeSpec spec, options_.new_node(node_image));
  RETURN_IF_ERROR(driver_.Create(spec).status());
  images_[spec.node_id] = image;
  return spec.node_id;
}

Status NodeSet::RemoveInstance(const std::string& id) {
  RETURN_IF_ERROR(driver_.Delete(id));
  images_.erase(id);
  verdicts_.erase(id);
  return Status::Ok();
}

bool NodeSet::ImageExists(const std::string& image) { return options_.image_exists(image); }

}  // namespace imagesmith::fleet
