// The rollout engine: moves a fleet's instances to a new image in batches,
// with health gates and automatic rollback, following virtual machine scale
// sets' automatic OS image upgrade and rolling upgrade policy
// (doc/rollout.md). Every consumer that floats on an image definition or on
// `latest` uses it: Batch pools, Service Fabric node types, CycleCloud
// nodearrays.
//
//   Begin ──> RollingForward ──batch──> health ──gate ok──> next batch ... ──> Completed
//                 │                        │ gate breached
//                 │ Cancel                 └──> roll the upgraded instances back ──> Faulted
//                 └──> Cancelled
//
// The engine holds no thread and no clock: the caller (a durable operation
// with a lease) calls Step with the time now, every second or so, until the
// state is done(). Everything the engine knows is in RolloutState, which
// round-trips through JSON, so a rollout resumes where it was after its
// worker dies. The same inputs give the same batches, so tests can assert
// exact batch sizes with an injected clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/statusor.h"

namespace imagesmith::fleet {

// ISO 8601 durations as Azure writes them: "PT0S", "PT5M", "PT1H30M",
// "P1DT2H", "PT0.5S". InvalidArgument naming `path` otherwise.
StatusOr<int64_t> ParseIsoDurationUs(std::string_view text, std::string_view path);
// The shortest such text: 90 s is "PT1M30S", 0 is "PT0S".
std::string FormatIsoDuration(int64_t us);

// rollingUpgradePolicy, plus automaticOSUpgradePolicy's
// disableAutomaticRollback, with Azure's defaults.
struct UpgradePolicy {
  int max_batch_instance_percent = 20;
  int max_unhealthy_instance_percent = 20;
  int max_unhealthy_upgraded_instance_percent = 20;
  int64_t pause_time_between_batches_us = 0;
  bool prioritize_unhealthy_instances = false;
  bool max_surge = false;
  bool disable_automatic_rollback = false;
  // How long an upgraded instance may take to report healthy
  // (imagesmith's "healthDeadline", default PT5M).
  int64_t health_deadline_us = 300'000'000;
  // Service Fabric node types (imagesmith's "batchByUpgradeDomain"): each
  // batch is the pending instances of one upgrade domain
  // (InstanceView::upgrade_domain), lowest domain first, in place of
  // maxBatchInstancePercent.
  bool batch_by_upgrade_domain = false;

  // `rolling` is a rollingUpgradePolicy object (or null), `automatic` an
  // automaticOSUpgradePolicy object (or null); `path` is the JSON path of
  // the object holding both, for errors. Percentages must be 5-100, pauses
  // and deadlines ISO 8601 durations; unknown fields are refused.
  static StatusOr<UpgradePolicy> FromJson(const Json* rolling, const Json* automatic,
                                          std::string_view path);
  Json ToJson() const;  // rollingUpgradePolicy's fields
};

enum class Health {
  kPending,    // starting, or its health is not known yet
  kHealthy,    // the agent's heartbeat arrives and the health command passes
  kUnhealthy,  // final: the target has decided (health_detail says why)
};

// An instance as its fleet sees it now.
struct InstanceView {
  std::string id;
  std::string image;  // the image it runs or is being reimaged onto
  Health health = Health::kPending;
  std::string health_detail;  // why unhealthy: the health command's output, "no heartbeat..."
  bool deferred = false;      // a running task defers its upgrade (osRollingUpgradeDeferral)
  int upgrade_domain = 0;     // UpgradePolicy::batch_by_upgrade_domain's grouping
};

// The fleet a rollout acts on. Calls return quickly: a reimage or a new
// instance starts and its health shows in later Instances() answers.
class RolloutTarget {
 public:
  virtual ~RolloutTarget() = default;
  virtual StatusOr<std::vector<InstanceView>> Instances() = 0;
  virtual Status Reimage(const std::string& id, const std::string& image) = 0;
  // maxSurge: a new instance on `image`; returns its ID.
  virtual StatusOr<std::string> AddInstance(const std::string& image) = 0;
  virtual Status RemoveInstance(const std::string& id) = 0;
  // Whether `image` can still be booted (a version deleted while the
  // rollout moves to it cannot).
  virtual bool ImageExists(const std::string& image) = 0;
};

enum class RunningStatus { kRollingForward, kCancelled, kCompleted, kFaulted };
// "RollingForward", "Cancelled", "Completed", "Faulted" (Azure's codes).
std::string_view RunningStatusName(RunningStatus status);

struct RolloutBatch {
  int number = 0;                      // 1-based
  std::vector<std::string> instances;  // reimaged, or made (maxSurge)
  std::vector<std::string> replaces;   // maxSurge: the old instances removed after
  int64_t start_us = 0;
  int64_t end_us = 0;                         // 0 while running
  std::map<std::string, std::string> failed;  // instance -> why
};

// One rollout, complete enough to resume it. Copyable value type.
struct RolloutState {
  std::string id;
  std::string target_image;
  std::string started_by = "Platform";  // "Platform" (a new latest) or "User"
  UpgradePolicy policy;
  RunningStatus status = RunningStatus::kRollingForward;
  int64_t start_us = 0;
  int64_t end_us = 0;
  std::string last_action = "Start";  // "Start" or "Cancel"
  int64_t last_action_us = 0;
  // Every instance the rollout has to move, and where it was before.
  std::map<std::string, std::string> previous_image;
  std::vector<std::string> succeeded;         // in the order they finished
  std::map<std::string, std::string> failed;  // instance -> why
  std::vector<RolloutBatch> batches;
  int64_t next_batch_us = 0;  // pauseTimeBetweenBatches
  std::string waiting;        // what the rollout waits for now, for people
  // Rollback (after a breached gate, unless disableAutomaticRollback).
  bool rolling_back = false;
  bool rollback_started = false;                // the reimages back have been asked for
  std::map<std::string, std::string> rollback;  // instance -> image it goes back to
  int64_t rollback_start_us = 0;
  int rolled_back_succeeded = 0;
  int rolled_back_failed = 0;
  std::string rollback_error;
  // Why it stopped: the gate, the instances and their health output.
  std::string error_code;  // "MaxUnhealthyUpgradedInstancePercentExceeded", ...
  std::string error_message;
  std::vector<std::pair<std::string, std::string>> error_details;  // instance -> output

  bool done() const { return status != RunningStatus::kRollingForward; }
  int in_progress() const;
  int pending() const;
  // Azure's RollingUpgradeStatusInfo properties ("policy", "runningStatus",
  // "progress", "error") plus imagesmith's "id", "targetImage",
  // "startedBy", "batches", "waiting" and "rollbackInfo"; and, with
  // `resumable`, "state": what FromJson needs to go on.
  Json ToJson(bool resumable = false) const;
  static StatusOr<RolloutState> FromJson(const Json& json);
};

class Rollout {
 public:
  // A rollout of every instance not on `target_image` yet. FailedPrecondition
  // when the target image cannot be booted; the state is Completed at once
  // when every instance is already on it.
  static StatusOr<RolloutState> Begin(RolloutTarget& target, const std::string& id,
                                      const std::string& target_image, const UpgradePolicy& policy,
                                      int64_t now_us);
  // Looks at the target and does what is due: starts a batch, judges one,
  // rolls back, finishes. Errors are the target's (the state is unchanged
  // by a failed call and the caller retries).
  static Status Step(RolloutTarget& target, RolloutState& state, int64_t now_us);
  // Stops starting batches: Cancelled. Instances already being reimaged go
  // on; nothing is rolled back. No-op when done.
  static void Cancel(RolloutState& state, int64_t now_us);
};

// Keeps the last 5 rollouts (newest first) in `history`, a JSON array of
// RolloutState::ToJson(), replacing an entry with the same id.
void RecordHistory(Json& history, const RolloutState& state);

}  // namespace imagesmith::fleet
