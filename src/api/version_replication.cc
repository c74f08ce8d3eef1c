// The replication of a gallery image version as a durable operation (see
// version_replication.h).
#include "api/version_replication.h"

#include <atomic>

#include "api/arm_error.h"
#include "base/strings.h"
#include "gallery/publish.h"
#include "gallery/resources.h"
#include "store/store.h"

namespace imagesmith::api {
namespace {

// The outcome's result keeps the Status code of a failure, so a caller that
// waits (the CLI) gets the same exit code as when it replicated itself.
OperationOutcome Failed(const Status& why) {
  OperationOutcome out;
  out.status = OperationStatus::kFailed;
  out.error = ToArmError(why);
  out.result.Set("statusCode", Json::Int(static_cast<int64_t>(why.code())));
  return out;
}

class VersionReplicationHandler final : public OperationHandler {
 public:
  std::string_view Type() const override { return kVersionReplicateOperation; }

  OperationOutcome Run(OperationContext& ctx) override {
    Services& s = ctx.services();
    const Operation& op = ctx.operation();
    size_t total = 0, done = 0;
    Status read = s.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource r, gallery::GetVersion(txn, op.target));
      ASSIGN_OR_RETURN(gallery::VersionRecord rec, gallery::VersionRecord::FromResource(r));
      for (const gallery::ReplicaStatus& st : rec.replication) {
        ++total;
        if (st.state == gallery::ReplicaState::kCompleted) ++done;
      }
      return Status::Ok();
    });
    if (!read.ok()) return Failed(read);
    auto store = store::Store::Open(*s.env, s.data_dir + "/store");
    if (!store.ok()) return Failed(store.status());
    if (total > 0) ctx.SetPercent(100.0 * static_cast<double>(done) / static_cast<double>(total));
    auto on_region = [&](const Region& region, gallery::ReplicaState state) {
      ctx.Line(ProgressKind::kStatus,
               "replica in " + region.name() + ": " + gallery::ReplicaStateName(state));
      if (state == gallery::ReplicaState::kCompleted && total > 0 && done < total) {
        ++done;
        ctx.SetPercent(100.0 * static_cast<double>(done) / static_cast<double>(total));
      }
    };
    auto v = gallery::ReplicateVersion(*s.env, *s.meta, **store, op.target, on_region);
    if (!v.ok()) return Failed(v.status());
    OperationOutcome out;
    const Json* state = v->properties.Find("provisioningState");
    out.result.Set("provisioningState",
                   state != nullptr ? *state : Json::String(std::string("Succeeded")));
    return out;
  }

  // ReplicateVersion copies only what is not Completed yet: running it again
  // after a worker died finishes the replication.
  bool Resumable(const Operation&) const override { return true; }
};

}  // namespace

std::unique_ptr<OperationHandler> NewVersionReplicationHandler() {
  return std::make_unique<VersionReplicationHandler>();
}

StatusOr<Operation> StartVersionReplicationIn(Services& services, meta::Transaction& txn,
                                              const ResourceId& version,
                                              const std::string& location, bool held) {
  Operations& ops = *services.operations;
  const int64_t now = services.env->NowMicros();
  ASSIGN_OR_RETURN(auto rows, txn.ListOperations(version.ToString(), "InProgress", 100));
  std::string superseded;
  for (const meta::OperationRow& row : rows) {
    if (row.type != kVersionReplicateOperation) continue;
    Operation op = OperationFromRow(row);
    if (!Operations::Abandoned(op, now)) {
      if (held && op.owner.empty()) {
        // Queued and nobody runs it yet: this caller takes it.
        op.owner = ops.worker_id();
        op.lease_expiry_us = now + OperationTiming::FromEnv().lease_us;
        meta::OperationRow out = OperationToRow(op);
        RETURN_IF_ERROR(txn.ReplaceOperation(out));
      }
      return op;  // a live worker replicates it already
    }
    superseded = op.id;
    op.status = OperationStatus::kFailed;
    ArmError e;
    e.code = "WorkerLost";
    e.message = "the worker " + op.owner + " that replicated " + version.ToString() +
                " stopped without recording a result (killed or crashed); the replication "
                "continues in a new operation";
    op.error = e;
    op.end_us = now;
    op.owner.clear();
    op.lease_expiry_us = 0;
    meta::OperationRow out = OperationToRow(op);
    RETURN_IF_ERROR(txn.ReplaceOperation(out));
  }
  Json input = Json::MakeObject();
  if (!superseded.empty()) input.Set("supersedes", Json::String(superseded));
  return ops.StartIn(txn, kVersionReplicateOperation, version, location, input, held);
}

Status FinishVersionReplication(Services& services, const Operation& op, const Request& request) {
  Operations& ops = *services.operations;
  StatusOr<Operation> done = Status::Ok();
  if (op.owner == ops.worker_id()) {
    done = ops.Execute(op.id, request.progress, request.interrupt);
  } else {
    if (request.progress) {
      request.progress(ProgressKind::kStatus, "waiting for operation " + op.id + " (worker " +
                                                  (op.owner.empty() ? "queued" : op.owner) +
                                                  ") that replicates this version");
    }
    done = ops.Wait(op.id, int64_t{24} * 3600 * 1'000'000);
  }
  if (!done.ok()) return done.status();
  if (done->status == OperationStatus::kSucceeded) return Status::Ok();
  StatusCode code = StatusCode::kInternal;
  if (const Json* c = done->result.Find("statusCode"); c != nullptr) {
    int64_t n = c->AsInt64().value_or(static_cast<int64_t>(StatusCode::kInternal));
    if (n > 0 && n <= static_cast<int64_t>(StatusCode::kUnauthenticated)) {
      code = static_cast<StatusCode>(n);
    }
  }
  ArmError e = done->error.value_or(ArmError{});
  if (e.code.empty()) return Status(code, "operation " + op.id + " did not succeed");
  Status plain(code, e.message);
  if (ToArmError(plain).code == e.code) return plain;  // the usual mapping: no prefix needed
  return ArmStatus(code, e.code, e.message);
}

}  // namespace imagesmith::api
