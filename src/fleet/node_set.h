// A RolloutTarget over a node driver: the nodes of one fleet (a node type, a
// pool, a nodearray), each with the image it runs, judged healthy from the
// node agent's heartbeat and an optional application health command run in
// the guest (the stand-in for Azure's application health extension).
//
// Health of one node, from NodeDriver::Observe:
//   booting (no hello yet)                 -> Pending
//   gone, preempted                        -> Unhealthy, with the driver's detail
//   ready, last heartbeat older than limit -> Unhealthy: "no heartbeat for N s"
//   ready, no health command               -> Healthy
//   ready, health command exits 0          -> Healthy; otherwise Unhealthy with
//                                             its exit code and output (or
//                                             "timed out" after 90 s)
//   ready, the guest cannot start it yet   -> Pending (the agent's task channel
//     (root not writable or data disk not     is not up, or the task wrapper
//     mounted within 60 s)                    exits 125; tried again next time)
// A health command's verdict is kept for `health_ttl_us` and forgotten when
// the node is reimaged or rebooted.
//
// Thread-compatible: one owner (the rollout's worker) at a time.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fleet/node_driver.h"
#include "fleet/rollout.h"

namespace imagesmith::fleet {

struct NodeSetOptions {
  // The image ID a rollout names -> what a node boots. Required.
  std::function<StatusOr<NodeImage>(const std::string& image_id)> resolve_image;
  // Whether an image ID can still be booted. Required.
  std::function<bool(const std::string& image_id)> image_exists;
  // maxSurge: the spec of a new node (its id, hostname, MAC, work_dir, size)
  // on `image`. Unset: AddInstance fails with FailedPrecondition.
  std::function<StatusOr<NodeSpec>(const NodeImage& image)> new_node;
  // Whether a node's upgrade is deferred now (a running task with
  // osRollingUpgradeDeferral). Unset: never.
  std::function<bool(const std::string& node_id)> deferred;
  // The upgrade domain of a node (UpgradePolicy::batch_by_upgrade_domain).
  // Unset: 0 for every node.
  std::function<int(const std::string& node_id)> upgrade_domain;
  // Run with /bin/sh -c in the guest as root; empty: heartbeats alone.
  std::string health_command;
  std::string health_dir;  // host directory for the command's output files
  int64_t heartbeat_limit_us = 30'000'000;
  int64_t health_ttl_us = 30'000'000;
};

class NodeSet final : public RolloutTarget {
 public:
  NodeSet(Env& env, NodeDriver& driver, NodeSetOptions options);

  // A node the fleet already has, running `image_id`.
  void Add(const std::string& node_id, const std::string& image_id);
  // The image each node runs (or is being reimaged onto).
  const std::map<std::string, std::string>& images() const { return images_; }

  StatusOr<std::vector<InstanceView>> Instances() override;
  Status Reimage(const std::string& id, const std::string& image) override;
  StatusOr<std::string> AddInstance(const std::string& image) override;
  Status RemoveInstance(const std::string& id) override;
  bool ImageExists(const std::string& image) override;

 private:
  struct Verdict {
    bool healthy = false;
    std::string detail;
    int64_t at_us = 0;
  };
  InstanceView View(const std::string& id, const std::string& image, int64_t now_us);

  Env& env_;
  NodeDriver& driver_;
  NodeSetOptions options_;
  std::map<std::string, std::string> images_;
  std::map<std::string, Verdict> verdicts_;
};

}  // namespace imagesmith::fleet
