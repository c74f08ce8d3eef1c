// Durable operations: long work (a template run; later a version's
// replication, a pool resize) as a record in the metadata database that
// outlives the process that started it (doc/operations.md).
//
//   Enqueue ──> InProgress, no owner ──Claim──> InProgress, owner + lease
//   Start ─────────────────────────────────────┘      │ renewed every 10 s
//                  Succeeded | Failed | Canceled <────┘ (the handler's outcome)
//
// A worker claims an operation with a lease (default 30 s) and renews it on
// a thread while the handler works. When the worker dies its lease runs out
// (on this host a dead owner process is noticed at once); the next worker
// that looks resumes the operation when its handler says it can, or fails it
// with a message naming the dead worker and when its lease ended, after the
// handler has cleaned up (OnAbandoned).
//
// Thread-safety: an Operations object may be used from several threads;
// several processes may use the same database. Every state change is one
// write transaction, so two workers never hold one operation at once.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/arm_error.h"
#include "api/provider.h"
#include "api/services.h"
#include "base/json.h"
#include "base/resource_id.h"
#include "base/statusor.h"

namespace imagesmith::api {

enum class OperationStatus { kInProgress, kSucceeded, kFailed, kCanceled };
// "InProgress", "Succeeded", "Failed", "Canceled".
std::string_view OperationStatusName(OperationStatus status);

// One operation as its record holds it. Copyable value type.
struct Operation {
  std::string id;    // a lowercase GUID
  std::string type;  // "Microsoft.VirtualMachineImages/imageTemplates/run"
  ResourceId target = ResourceId::ForSubscription("");
  std::string location;  // the target's region ("" when it has none)
  OperationStatus status = OperationStatus::kInProgress;
  int64_t start_us = 0;
  int64_t end_us = 0;  // 0 while InProgress
  double percent_complete = 0;
  std::optional<ArmError> error;     // Failed and Canceled only
  Json input = Json::MakeObject();   // what the handler needs to do the work
  Json result = Json::MakeObject();  // what the handler reported at the end
  std::string owner;                 // the worker holding the lease; "" when none
  int64_t lease_expiry_us = 0;
  bool cancel_requested = false;
  // Workers that held the operation and died (with when their lease ended).
  Json abandoned_by = Json::MakeArray();
  // Workers that were stopped (SIGTERM) while they held it and released it
  // for another worker to resume ({worker, time}).
  Json handed_back_by = Json::MakeArray();
  // The worker that recorded the outcome ("" while InProgress, or when a
  // reaper failed it).
  std::string finished_by;

  bool done() const { return status != OperationStatus::kInProgress; }
  // Azure's async operation resource ID:
  // /subscriptions/{sub}/providers/{namespace}/locations/{location}/operations/{id}.
  std::string ArmId() const;
  // Azure's async operation status body: {"id", "name", "status",
  // "startTime", "endTime", "percentComplete", "error": {code, message}};
  // endTime and error only when set. With `details`, also "type", "target",
  // "owner", "leaseExpiry" and "properties" (the handler's result).
  Json ToJson(bool details = false) const;
  // What a front end that waited for the operation answers: Ok when it
  // Succeeded; otherwise its ARM error (Cancelled or FailedPrecondition),
  // the message naming the operation, its target `error_target`.
  Status Outcome(const std::string& error_target) const;
};

// What a worker hands a handler while it runs one operation.
class OperationContext {
 public:
  // Lines for a foreground caller (provider.h's ProgressKind): kStatus for
  // what the run is doing now, kLog for each line of the work's log,
  // kNotice for what the caller must see.
  using LineKind = ProgressKind;
  using LineSink = std::function<void(LineKind, std::string_view)>;

  OperationContext(Services& services, const Operation& op, const std::atomic<bool>& cancel,
                   LineSink sink, std::function<void(double)> set_percent,
                   const std::atomic<bool>* stopping = nullptr)
      : services_(services),
        op_(op),
        cancel_(cancel),
        sink_(std::move(sink)),
        set_percent_(std::move(set_percent)),
        stopping_(stopping) {}

  Services& services() const { return services_; }
  const Operation& operation() const { return op_; }
  // Set when cancel was requested (operation cancel from any process, or
  // the foreground caller's Ctrl-C) or the lease was lost; the handler
  // stops as soon as it can.
  const std::atomic<bool>& cancel() const { return cancel_; }
  // Whether the worker itself is stopping (Operations::Stop, on SIGTERM):
  // cancel() is set too, but the work was not canceled by a user; a handler
  // says so in what it records (the worker hands a resumable operation back
  // and fails another one with WorkerStopped).
  bool stopping() const { return stopping_ != nullptr && stopping_->load(); }
  void Line(LineKind kind, std::string_view text) const {
    if (sink_) sink_(kind, text);
  }
  // 0-100; recorded with the next lease renewal.
  void SetPercent(double percent) const {
    if (set_percent_) set_percent_(percent);
  }

 private:
  Services& services_;
  const Operation& op_;
  const std::atomic<bool>& cancel_;
  LineSink sink_;
  std::function<void(double)> set_percent_;
  const std::atomic<bool>* stopping_;
};

// How an operation ended.
struct OperationOutcome {
  OperationStatus status = OperationStatus::kSucceeded;
  std::optional<ArmError> error;     // for Failed and Canceled
  Json result = Json::MakeObject();  // kept as the operation's result
};

// The work behind one operation type. Handlers hold no per-operation state;
// Run may be called from several threads at once for different operations.
class OperationHandler {
 public:
  virtual ~OperationHandler() = default;
  virtual std::string_view Type() const = 0;
  // Does the work to its end (or until ctx.cancel()) and says how it ended.
  virtual OperationOutcome Run(OperationContext& ctx) = 0;
  // Whether an operation whose worker died may be run again from the start
  // by another worker (its work is idempotent). Default: no.
  virtual bool Resumable(const Operation&) const { return false; }
  // Called once when a dead worker's operation is taken over, before it is
  // resumed or failed with `why`: undo or mark what the dead worker left
  // half-done. Errors are logged into the failure message, not fatal.
  virtual Status OnAbandoned(Services&, const Operation&, const std::string& why) {
    (void)why;
    return Status::Ok();
  }
};

// Lease timing. Defaults: 30 s lease, renewed every 10 s, cancel requests
// seen within 250 ms. IMAGESMITH_OPERATION_LEASE_SECONDS and
// IMAGESMITH_OPERATION_RENEW_SECONDS override the first two (tests).
struct OperationTiming {
  int64_t lease_us = 30'000'000;
  int64_t renew_us = 10'000'000;
  int64_t poll_us = 250'000;
  static OperationTiming FromEnv();
};

class Operations {
 public:
  // Borrows `services` (which points back at this object) for its lifetime.
  // `worker_id` names this worker; "" makes "host:pid:start-ticks" (tests
  // give two objects in one process different names).
  explicit Operations(Services& services, OperationTiming timing = OperationTiming::FromEnv(),
                      std::string worker_id = "");
  Operations(const Operations&) = delete;
  Operations& operator=(const Operations&) = delete;
  ~Operations();

  // Takes ownership. Requires that no handler for the same type was added.
  void AddHandler(std::unique_ptr<OperationHandler> handler);

  // This process's worker ID, "host:pid:start-ticks".
  const std::string& worker_id() const { return worker_id_; }

  // A new InProgress operation that no worker holds yet: the next Claim
  // takes it. `type` must have a handler.
  StatusOr<Operation> Enqueue(const std::string& type, const ResourceId& target,
                              const std::string& location, const Json& input);
  // A new operation already held by this worker (for Execute at once, as a
  // CLI command without a server does). Done inside the caller's
  // transaction `txn` so it commits with the change that starts the work.
  StatusOr<Operation> StartIn(meta::Transaction& txn, const std::string& type,
                              const ResourceId& target, const std::string& location,
                              const Json& input, bool held);

  // Runs an operation this worker holds to its end: renews the lease on a
  // thread, watches for cancel requests (and `local_cancel` when given),
  // records the outcome. Returns the final record. If the lease was lost
  // (another worker took the operation over), the outcome is not recorded
  // and the result is Aborted.
  StatusOr<Operation> Execute(const std::string& id, OperationContext::LineSink sink = {},
                              const std::atomic<bool>* local_cancel = nullptr);

  // Claims one operation (queued, or abandoned by a dead worker) and, for an
  // abandoned one, resumes or fails it; then runs it with Execute. Returns
  // false when there was nothing to claim.
  StatusOr<bool> RunOne();
  // Runs RunOne until `stop` is set, sleeping `idle_us` when idle; with
  // `exit_when_idle`, returns when nothing is left to claim.
  Status Work(const std::atomic<bool>& stop, bool exit_when_idle, int64_t idle_us = 500'000);

  // Graceful stop (SIGTERM): Work returns without claiming more, and every
  // Execute in progress sets its handler's cancel flag (with
  // OperationContext::stopping). When a handler returns without success its
  // operation is not left to lease expiry: a resumable one is handed back
  // (queued again with no owner, so another worker claims it at once; the
  // record's handedBackBy names this worker), any other is failed with code
  // WorkerStopped naming this worker. A cancel a user asked for still ends
  // Canceled. Thread-safe; cannot be undone.
  void Stop();
  bool stopping() const { return stopping_.load(); }
  // After Stop, for a worker that cannot wait for its handlers any longer:
  // hands back or fails (as above) every operation this worker still holds,
  // so nothing waits for a lease to run out. Returns how many it released.
  StatusOr<int> ReleaseHeld();

  // The operation; NotFound names the ID. An operation whose worker is dead
  // and whose handler cannot resume it is failed first (see Reap).
  StatusOr<Operation> Get(const std::string& id);
  // Newest first; only those on `target` when given.
  StatusOr<std::vector<Operation>> List(const std::optional<ResourceId>& target, int64_t limit);
  // Fails `id` if it is InProgress, its worker is dead (or its lease ran
  // out) and its handler cannot resume it; calls the handler's OnAbandoned
  // first. OK and nothing done otherwise.
  Status Reap(const std::string& id);
  // Records that cancel was requested; the worker sees it within the poll
  // interval. FailedPrecondition when the operation has already ended.
  Status RequestCancel(const std::string& id);
  // Polls until the operation ends or `timeout_us` passes
  // (DeadlineExceeded naming the operation and its status then).
  StatusOr<Operation> Wait(const std::string& id, int64_t timeout_us);

  // Whether the worker `owner` is known to be dead: a process on this host
  // that no longer runs. (Workers on other hosts are judged by lease only.)
  static bool OwnerDead(const std::string& owner);
  // Whether `op` is InProgress and held by nobody alive: its owner is dead
  // or its lease ended before `now_us`.
  static bool Abandoned(const Operation& op, int64_t now_us);

 private:
  OperationHandler* HandlerFor(const std::string& type) const;
  // The record as it is now (no reaping).
  StatusOr<Operation> Load(const std::string& id);
  // Takes over an abandoned operation that this worker now holds: calls
  // OnAbandoned, then fails it unless `resume`. Returns whether to run it.
  StatusOr<bool> TakeOver(Operation& op, bool resume);
  Status Finish(const std::string& id, const OperationOutcome& outcome);
  // Stop's hand-back of an operation this worker holds: queued again when
  // its handler can resume it, else failed with WorkerStopped (`detail` is
  // added to the message).
  Status HandBack(const std::string& id, const std::string& detail);

  Services& services_;
  const OperationTiming timing_;
  const std::string worker_id_;
  std::map<std::string, std::unique_ptr<OperationHandler>> handlers_;  // set up before use
  std::atomic<bool> stopping_{false};
};

// Adds every built-in operation handler (registry.cc).
void AddBuiltinHandlers(Operations& operations);

// Record <-> row conversions (operations.cc); exposed for tests.
Operation OperationFromRow(const meta::OperationRow& row);
meta::OperationRow OperationToRow(const Operation& op);

}  // namespace imagesmith::api
