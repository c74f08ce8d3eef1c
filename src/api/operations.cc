#include "api/operations.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "base/process.h"
#include "base/random.h"
#include "base/strings.h"
#include "builder/run_log.h"

namespace imagesmith::api {
namespace {

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

std::string MakeWorkerId() {
  int pid = static_cast<int>(::getpid());
  return HostName() + ":" + std::to_string(pid) + ":" + std::to_string(ProcessStartTicks(pid));
}

OperationStatus ParseStatus(const std::string& s) {
  if (s == "Succeeded") return OperationStatus::kSucceeded;
  if (s == "Failed") return OperationStatus::kFailed;
  if (s == "Canceled") return OperationStatus::kCanceled;
  return OperationStatus::kInProgress;
}

int64_t IntField(const Json& j, const char* name) {
  const Json* v = j.Find(name);
  return v != nullptr ? v->AsInt64().value_or(0) : 0;
}

std::string Time(int64_t us) { return build::FormatTime(us); }

// The namespace of the target's type: the operation resource lives under
// the provider that owns the target, as Azure's do.
std::string NamespaceOf(const ResourceId& target) {
  return target.kind() == ResourceId::Kind::kResource ? target.provider_namespace()
                                                      : "Microsoft.Resources";
}

Json ErrorJson(const ArmError& e) {
  Json j = Json::MakeObject();
  j.Set("code", Json::String(e.code));
  j.Set("message", Json::String(e.message));
  if (!e.target.empty()) j.Set("target", Json::String(e.target));
  return j;
}

ArmError ErrorFromJson(const Json& j) {
  ArmError e;
  e.http_status = 200;
  if (const Json* c = j.Find("code"); c != nullptr && c->is_string()) e.code = c->string_value();
  if (const Json* m = j.Find("message"); m != nullptr && m->is_string()) {
    e.message = m->string_value();
  }
  if (const Json* t = j.Find("target"); t != nullptr && t->is_string()) {
    e.target = t->string_value();
  }
  return e;
}

int64_t EnvSeconds(const char* name, int64_t fallback_us) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback_us;
  char* end = nullptr;
  double s = std::strtod(v, &end);
  if (end == v || s <= 0) return fallback_us;
  return static_cast<int64_t>(s * 1e6);
}

}  // namespace

std::string_view OperationStatusName(OperationStatus status) {
  switch (status) {
    case OperationStatus::kInProgress:
      return "InProgress";
    case OperationStatus::kSucceeded:
      return "Succeeded";
    case OperationStatus::kFailed:
      return "Failed";
    case OperationStatus::kCanceled:
      return "Canceled";
  }
  return "InProgress";
}

OperationTiming OperationTiming::FromEnv() {
  OperationTiming t;
  t.lease_us = EnvSeconds("IMAGESMITH_OPERATION_LEASE_SECONDS", t.lease_us);
  t.renew_us =
      EnvSeconds("IMAGESMITH_OPERATION_RENEW_SECONDS", std::min(t.renew_us, t.lease_us / 3));
  if (t.renew_us >= t.lease_us) t.renew_us = t.lease_us / 3;
  return t;
}

std::string Operation::ArmId() const {
  return "/subscriptions/" + target.subscription() + "/providers/" + NamespaceOf(target) +
         "/locations/" + (location.empty() ? std::string("local") : location) + "/operations/" + id;
}

Json Operation::ToJson(bool details) const {
  Json j = Json::MakeObject();
  j.Set("id", Json::String(ArmId()));
  j.Set("name", Json::String(id));
  j.Set("status", Json::String(std::string(OperationStatusName(status))));
  j.Set("startTime", Json::String(Time(start_us)));
  if (end_us > 0) j.Set("endTime", Json::String(Time(end_us)));
  j.Set("percentComplete", Json::Int(static_cast<int64_t>(percent_complete)));
  if (error.has_value()) j.Set("error", ErrorJson(*error));
  if (details) {
    j.Set("type", Json::String(type));
    j.Set("target", Json::String(target.ToString()));
    j.Set("owner", owner.empty() ? Json::Null() : Json::String(owner));
    j.Set("leaseExpiry",
          lease_expiry_us > 0 && !done() ? Json::String(Time(lease_expiry_us)) : Json::Null());
    if (cancel_requested) j.Set("cancelRequested", Json::Bool(true));
    if (!abandoned_by.array_items().empty()) j.Set("abandonedBy", abandoned_by);
    if (!handed_back_by.array_items().empty()) j.Set("handedBackBy", handed_back_by);
    if (!finished_by.empty()) j.Set("finishedBy", Json::String(finished_by));
    j.Set("properties", result);
  }
  return j;
}

Operation OperationFromRow(const meta::OperationRow& row) {
  Operation op;
  op.id = row.id;
  op.type = row.type;
  auto target = ResourceId::Parse(row.target);
  if (target.ok()) op.target = *target;
  op.status = ParseStatus(row.status);
  op.owner = row.owner;
  op.lease_expiry_us = row.lease_expiry_us;
  const Json& d = row.doc;
  if (const Json* l = d.Find("location"); l != nullptr && l->is_string()) {
    op.location = l->string_value();
  }
  op.start_us = IntField(d, "startUs");
  op.end_us = IntField(d, "endUs");
  if (const Json* p = d.Find("percentComplete"); p != nullptr) {
    op.percent_complete = p->AsDouble().value_or(0);
  }
  if (const Json* e = d.Find("error"); e != nullptr && e->is_object()) op.error = ErrorFromJson(*e);
  if (const Json* i = d.Find("input"); i != nullptr) op.input = *i;
  if (const Json* r = d.Find("result"); r != nullptr) op.result = *r;
  if (const Json* c = d.Find("cancelRequested"); c != nullptr && c->is_bool()) {
    op.cancel_requested = c->bool_value();
  }
  if (const Json* a = d.Find("abandonedBy"); a != nullptr && a->is_array()) op.abandoned_by = *a;
  if (const Json* h = d.Find("handedBackBy"); h != nullptr && h->is_array()) {
    op.handed_back_by = *h;
  }
  if (const Json* f = d.Find("finishedBy"); f != nullptr && f->is_string()) {
    op.finished_by = f->string_value();
  }
  return op;
}

meta::OperationRow OperationToRow(const Operation& op) {
  meta::OperationRow row;
  row.id = op.id;
  row.type = op.type;
  row.target = op.target.ToString();
  row.status = std::string(OperationStatusName(op.status));
  row.owner = op.owner;
  row.lease_expiry_us = op.lease_expiry_us;
  Json d = Json::MakeObject();
  d.Set("location", Json::String(op.location));
  d.Set("startUs", Json::Int(op.start_us));
  d.Set("endUs", Json::Int(op.end_us));
  d.Set("percentComplete", Json::Int(static_cast<int64_t>(op.percent_complete)));
  if (op.error.has_value()) d.Set("error", ErrorJson(*op.error));
  d.Set("input", op.input);
  d.Set("result", op.result);
  d.Set("cancelRequested", Json::Bool(op.cancel_requested));
  d.Set("abandonedBy", op.abandoned_by);
  if (!op.handed_back_by.array_items().empty()) d.Set("handedBackBy", op.handed_back_by);
  if (!op.finished_by.empty()) d.Set("finishedBy", Json::String(op.finished_by));
  row.doc = std::move(d);
  return row;
}

Operations::Operations(Services& services, OperationTiming timing, std::string worker_id)
    : services_(services),
      timing_(timing),
      worker_id_(worker_id.empty() ? MakeWorkerId() : std::move(worker_id)) {}

Operations::~Operations() = default;

void Operations::AddHandler(std::unique_ptr<OperationHandler> handler) {
  std::string type = AsciiToLower(handler->Type());
  handlers_.emplace(std::move(type), std::move(handler));
}

OperationHandler* Operations::HandlerFor(const std::string& type) const {
  auto it = handlers_.find(AsciiToLower(type));
  return it == handlers_.end() ? nullptr : it->second.get();
}

bool Operations::OwnerDead(const std::string& owner) {
  // host:pid:ticks
  size_t a = owner.rfind(':');
  if (a == std::string::npos || a == 0) return false;
  size_t b = owner.rfind(':', a - 1);
  if (b == std::string::npos) return false;
  if (owner.substr(0, b) != HostName()) return false;
  int pid = std::atoi(owner.substr(b + 1, a - b - 1).c_str());
  uint64_t ticks = std::strtoull(owner.c_str() + a + 1, nullptr, 10);
  if (pid <= 0) return false;
  return !ProcessAlive(pid, ticks);
}

bool Operations::Abandoned(const Operation& op, int64_t now_us) {
  if (op.done() || op.owner.empty()) return false;
  return op.lease_expiry_us < now_us || OwnerDead(op.owner);
}

StatusOr<Operation> Operations::StartIn(meta::Transaction& txn, const std::string& type,
                                        const ResourceId& target, const std::string& location,
                                        const Json& input, bool held) {
  if (HandlerFor(type) == nullptr) {
    return InternalError("no handler for operations of type '" + type + "'");
  }
  Operation op;
  op.id = AsciiToLower(NewUuidV4());
  op.type = type;
  op.target = target;
  op.location = location;
  op.start_us = services_.env->NowMicros();
  op.input = input;
  if (held) {
    op.owner = worker_id_;
    op.lease_expiry_us = op.start_us + timing_.lease_us;
  }
  meta::OperationRow row = OperationToRow(op);
  RETURN_IF_ERROR(txn.CreateOperation(row));
  return op;
}

StatusOr<Operation> Operations::Enqueue(const std::string& type, const ResourceId& target,
                                        const std::string& location, const Json& input) {
  Operation out;
  RETURN_IF_ERROR(services_.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(out, StartIn(txn, type, target, location, input, false));
    return Status::Ok();
  }));
  return out;
}

StatusOr<Operation> Operations::Get(const std::string& id) {
  RETURN_IF_ERROR(Reap(id));
  return Load(id);
}

StatusOr<Operation> Operations::Load(const std::string& id) {
  Operation out;
  RETURN_IF_ERROR(services_.meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(id));
    out = OperationFromRow(row);
    return Status::Ok();
  }));
  return out;
}

StatusOr<std::vector<Operation>> Operations::List(const std::optional<ResourceId>& target,
                                                  int64_t limit) {
  std::vector<Operation> out;
  RETURN_IF_ERROR(services_.meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(auto rows, txn.ListOperations(target ? target->ToString() : "", "", limit));
    for (const meta::OperationRow& r : rows) out.push_back(OperationFromRow(r));
    return Status::Ok();
  }));
  return out;
}

Status Operations::RequestCancel(const std::string& id) {
  return services_.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(id));
    Operation op = OperationFromRow(row);
    if (op.done()) {
      return FailedPreconditionError("operation '" + id + "' has already ended (" +
                                     std::string(OperationStatusName(op.status)) + ")");
    }
    op.cancel_requested = true;
    meta::OperationRow out = OperationToRow(op);
    return txn.ReplaceOperation(out);
  });
}

Status Operations::Finish(const std::string& id, const OperationOutcome& outcome) {
  return services_.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(id));
    Operation op = OperationFromRow(row);
    if (op.owner != worker_id_ || op.done()) {
      return AbortedError("operation " + id + " is no longer held by worker " + worker_id_ +
                          " (now " + (op.owner.empty() ? std::string("nobody") : op.owner) + ", " +
                          std::string(OperationStatusName(op.status)) + ")");
    }
    op.status = outcome.status;
    op.error = outcome.error;
    op.result = outcome.result;
    op.end_us = services_.env->NowMicros();
    if (op.status == OperationStatus::kSucceeded) op.percent_complete = 100;
    op.owner.clear();
    op.lease_expiry_us = 0;
    op.finished_by = worker_id_;
    meta::OperationRow out = OperationToRow(op);
    return txn.ReplaceOperation(out);
  });
}

void Operations::Stop() { stopping_.store(true); }

Status Operations::HandBack(const std::string& id, const std::string& detail) {
  ASSIGN_OR_RETURN(Operation op, Load(id));
  OperationHandler* handler = HandlerFor(op.type);
  if (handler == nullptr || !handler->Resumable(op)) {
    OperationOutcome out;
    out.status = OperationStatus::kFailed;
    ArmError e;
    e.http_status = 503;
    e.code = "WorkerStopped";
    e.message = "the worker " + worker_id_ + " that ran operation " + id + " (" + op.type + " on " +
                op.target.ToString() +
                ") was stopped (SIGTERM or SIGINT) before it finished; the work was interrupted "
                "and cannot be resumed: start it again";
    if (!detail.empty()) e.message += " (" + detail + ")";
    out.error = e;
    out.result = op.result;
    return Finish(id, out);
  }
  return services_.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(id));
    Operation cur = OperationFromRow(row);
    if (cur.owner != worker_id_ || cur.done()) return Status::Ok();  // not ours any more
    Json entry = Json::MakeObject();
    entry.Set("worker", Json::String(worker_id_));
    entry.Set("time", Json::String(Time(services_.env->NowMicros())));
    cur.handed_back_by.Append(std::move(entry));
    cur.owner.clear();
    cur.lease_expiry_us = 0;
    meta::OperationRow out = OperationToRow(cur);
    return txn.ReplaceOperation(out);
  });
}

StatusOr<int> Operations::ReleaseHeld() {
  std::vector<std::string> held;
  RETURN_IF_ERROR(services_.meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(auto rows, txn.ListOperations("", "InProgress", 10000));
    for (const meta::OperationRow& r : rows) {
      if (r.owner == worker_id_) held.push_back(r.id);
    }
    return Status::Ok();
  }));
  int released = 0;
  for (const std::string& id : held) {
    Status s = HandBack(id, "its handler did not stop in time");
    if (s.ok()) ++released;
  }
  return released;
}

StatusOr<Operation> Operations::Execute(const std::string& id, OperationContext::LineSink sink,
                                        const std::atomic<bool>* local_cancel) {
  ASSIGN_OR_RETURN(Operation op, Load(id));
  if (op.owner != worker_id_ || op.done()) {
    return FailedPreconditionError("operation " + id + " is not held by this worker");
  }
  OperationHandler* handler = HandlerFor(op.type);
  if (handler == nullptr) {
    return InternalError("no handler for operations of type '" + op.type + "'");
  }

  std::atomic<bool> cancel{op.cancel_requested || stopping_.load()};
  std::atomic<bool> requested{op.cancel_requested};  // a user asked to cancel
  std::atomic<bool> lost{false};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;                     // guarded by mu
  double percent = op.percent_complete;  // guarded by mu
  bool percent_dirty = false;            // guarded by mu

  // The lease keeper: renews the lease, records progress, and watches the
  // record for a cancel request (and the caller's own cancel flag).
  std::thread keeper([&] {
    int64_t next_renew = services_.env->MonotonicMicros() + timing_.renew_us;
    std::unique_lock<std::mutex> lock(mu);
    while (!done) {
      cv.wait_for(lock, std::chrono::microseconds(timing_.poll_us));
      if (done) break;
      if (local_cancel != nullptr && local_cancel->load()) {
        requested.store(true);
        cancel.store(true);
      }
      if (stopping_.load()) cancel.store(true);
      bool renew = services_.env->MonotonicMicros() >= next_renew;
      bool write_percent = percent_dirty && renew;
      double p = percent;
      if (write_percent) percent_dirty = false;
      lock.unlock();
      if (renew) {
        Status s = services_.meta->Update([&](meta::Transaction& txn) {
          ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(id));
          if (row.owner != worker_id_ || row.status != "InProgress") {
            lost.store(true);
            return Status::Ok();
          }
          row.lease_expiry_us = services_.env->NowMicros() + timing_.lease_us;
          if (write_percent) row.doc.Set("percentComplete", Json::Int(static_cast<int64_t>(p)));
          if (const Json* c = row.doc.Find("cancelRequested");
              c != nullptr && c->is_bool() && c->bool_value()) {
            requested.store(true);
            cancel.store(true);
          }
          return txn.ReplaceOperation(row);
        });
        // A failed renewal is retried at the next poll; the lease has
        // room for two misses.
        if (s.ok()) next_renew = services_.env->MonotonicMicros() + timing_.renew_us;
        if (lost.load()) cancel.store(true);
      } else if (!cancel.load()) {
        (void)services_.meta->Read([&](meta::Transaction& txn) {
          ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(id));
          const Json* c = row.doc.Find("cancelRequested");
          if (c != nullptr && c->is_bool() && c->bool_value()) {
            requested.store(true);
            cancel.store(true);
          }
          if (row.owner != worker_id_ || row.status != "InProgress") {
            lost.store(true);
            cancel.store(true);
          }
          return Status::Ok();
        });
      }
      lock.lock();
    }
  });

  OperationContext ctx(
      services_, op, cancel, std::move(sink),
      [&](double p) {
        std::lock_guard<std::mutex> lock(mu);
        percent = p;
        percent_dirty = true;
      },
      &stopping_);
  OperationOutcome outcome = handler->Run(ctx);
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  keeper.join();
  if (lost.load()) {
    return AbortedError("operation " + id + " was taken over by another worker while " +
                        worker_id_ + " ran it (its lease ran out); its outcome was not recorded");
  }
  if (stopping_.load() && outcome.status != OperationStatus::kSucceeded && !requested.load()) {
    // Stopped by SIGTERM, not canceled by anyone: another worker resumes it
    // now, or it fails saying why (HandBack).
    OperationHandler* h = HandlerFor(op.type);
    if (h != nullptr && h->Resumable(op)) {
      RETURN_IF_ERROR(HandBack(id, ""));
      return Load(id);
    }
    if (outcome.status == OperationStatus::kCanceled) {
      RETURN_IF_ERROR(HandBack(id, outcome.error ? outcome.error->message : ""));
      return Load(id);
    }
  }
  RETURN_IF_ERROR(Finish(id, outcome));
  return Load(id);
}

StatusOr<bool> Operations::TakeOver(Operation& op, bool resume) {
  OperationHandler* handler = HandlerFor(op.type);
  const std::string dead = op.owner;  // the previous owner, set by the caller
  int64_t ended = op.lease_expiry_us;
  std::string why = "the worker " + dead + " that ran operation " + op.id + " (" + op.type +
                    " on " + op.target.ToString() +
                    ") stopped without recording a result: it was killed or crashed";
  if (OwnerDead(dead)) {
    why += " (its process is gone; its lease would have ended at " + Time(ended) + ")";
  } else {
    why += "; its lease ended at " + Time(ended) + " without being renewed";
  }
  if (handler == nullptr) {
    resume = false;
  } else {
    Status cleaned = handler->OnAbandoned(services_, op, why);
    if (!cleaned.ok()) why += "; cleaning up after it failed: " + cleaned.message();
  }
  bool run_again = resume && handler != nullptr && handler->Resumable(op);
  RETURN_IF_ERROR(services_.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(op.id));
    Operation cur = OperationFromRow(row);
    if (cur.owner != worker_id_ || cur.done()) {
      return AbortedError("operation " + op.id + " was taken over by someone else");
    }
    Json entry = Json::MakeObject();
    entry.Set("worker", Json::String(dead));
    entry.Set("leaseExpiry", Json::String(Time(ended)));
    cur.abandoned_by.Append(std::move(entry));
    if (!run_again) {
      cur.status = OperationStatus::kFailed;
      ArmError e;
      e.code = "WorkerLost";
      e.message = why;
      cur.error = e;
      cur.end_us = services_.env->NowMicros();
      cur.owner.clear();
      cur.lease_expiry_us = 0;
    }
    meta::OperationRow out = OperationToRow(cur);
    op = cur;
    return txn.ReplaceOperation(out);
  }));
  return run_again;
}

Status Operations::Reap(const std::string& id) {
  ASSIGN_OR_RETURN(Operation op, Load(id));
  if (!Abandoned(op, services_.env->NowMicros())) return Status::Ok();
  OperationHandler* handler = HandlerFor(op.type);
  if (handler != nullptr && handler->Resumable(op)) return Status::Ok();  // a worker resumes it
  // Take the lease (one write transaction, guarded by the old owner), then fail it.
  bool claimed = false;
  std::string previous = op.owner;
  int64_t previous_expiry = op.lease_expiry_us;
  RETURN_IF_ERROR(services_.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(id));
    if (row.owner != previous || row.status != "InProgress") return Status::Ok();
    row.owner = worker_id_;
    row.lease_expiry_us = services_.env->NowMicros() + timing_.lease_us;
    claimed = true;
    return txn.ReplaceOperation(row);
  }));
  if (!claimed) return Status::Ok();
  op.owner = previous;
  op.lease_expiry_us = previous_expiry;
  return TakeOver(op, false).status();
}

StatusOr<bool> Operations::RunOne() {
  if (stopping_.load()) return false;
  std::vector<std::string> types;
  for (const auto& [type, h] : handlers_) types.push_back(std::string(h->Type()));
  std::optional<meta::OperationRow> claimed;
  RETURN_IF_ERROR(services_.meta->Update([&](meta::Transaction& txn) {
    // Owners on this host whose process is gone need not wait for their lease.
    ASSIGN_OR_RETURN(auto held, txn.ListOperations("", "InProgress", 10000));
    std::set<std::string> dead;
    for (const meta::OperationRow& r : held) {
      if (!r.owner.empty() && r.owner != worker_id_ && OwnerDead(r.owner)) dead.insert(r.owner);
    }
    int64_t now = services_.env->NowMicros();
    ASSIGN_OR_RETURN(claimed, txn.ClaimOperation(types, worker_id_, now, now + timing_.lease_us,
                                                 {dead.begin(), dead.end()}));
    return Status::Ok();
  }));
  if (!claimed.has_value()) return false;
  Operation op = OperationFromRow(*claimed);
  if (!claimed->previous_owner.empty()) {
    op.owner = claimed->previous_owner;
    op.lease_expiry_us = claimed->previous_lease_expiry_us;
    ASSIGN_OR_RETURN(bool run_again, TakeOver(op, true));
    if (!run_again) return true;
  }
  auto done = Execute(op.id);
  if (!done.ok() && done.status().code() != StatusCode::kAborted) return done.status();
  return true;
}

Status Operations::Work(const std::atomic<bool>& stop, bool exit_when_idle, int64_t idle_us) {
  int failures = 0;
  while (!stop.load() && !stopping_.load()) {
    auto ran = RunOne();
    if (!ran.ok()) {
      // The database was busy or failed; try again after a pause. A worker
      // that only runs what is queued gives up after ten failures in a row.
      if (exit_when_idle && ++failures >= 10) return ran.status();
      services_.env->SleepFor(std::chrono::milliseconds(idle_us / 1000));
      continue;
    }
    failures = 0;
    if (*ran) continue;
    if (exit_when_idle) return Status::Ok();
    services_.env->SleepFor(std::chrono::milliseconds(idle_us / 1000));
  }
  return Status::Ok();
}

StatusOr<Operation> Operations::Wait(const std::string& id, int64_t timeout_us) {
  int64_t deadline = services_.env->MonotonicMicros() + timeout_us;
  while (true) {
    ASSIGN_OR_RETURN(Operation op, Get(id));
    if (op.done()) return op;
    if (services_.env->MonotonicMicros() >= deadline) {
      return DeadlineExceededError(
          "operation " + id + " is still " + std::string(OperationStatusName(op.status)) + " (" +
          std::to_string(static_cast<int>(op.percent_complete)) + "% complete) after the timeout");
    }
    services_.env->SleepFor(std::chrono::milliseconds(200));
  }
}

Status Operation::Outcome(const std::string& error_target) const {
  if (status == OperationStatus::kSucceeded) return Status::Ok();
  const ArmError e = error.value_or(ArmError{500, "OperationFailed", "failed", "", {}});
  return ArmStatus(status == OperationStatus::kCanceled ? StatusCode::kCancelled
                                                        : StatusCode::kFailedPrecondition,
                   e.code, e.message + " (operation " + id + ")", error_target);
}

}  // namespace imagesmith::api
