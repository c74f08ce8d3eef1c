// PoolWatch (batch_pool_watch.h).
#include "api/batch_pool_watch.h"

#include <cstdlib>

#include "api/batch_internal.h"
#include "api/operations.h"
#include "batch/controller.h"

namespace imagesmith::api {

namespace {

using batch::JGet;
using batch::JStr;

// Whether a controller runs (or is queued) for the pool now.
bool ControllerActive(Services& s, meta::Transaction& txn, const meta::Resource& pool) {
  std::string current = JStr(JGet(pool.properties, "imagesmith"), "operationId");
  if (current.empty()) return false;
  auto row = txn.GetOperation(current);
  if (!row.ok()) return false;
  Operation op = OperationFromRow(*row);
  return !op.done() && (!Operations::Abandoned(op, s.env->NowMicros()) || op.owner.empty());
}

}  // namespace

int64_t PoolWatch::IntervalMicros() {
  const char* v = std::getenv("IMAGESMITH_BATCH_WATCH_SECONDS");
  if (v != nullptr && *v != '\0') {
    double d = std::strtod(v, nullptr);
    if (d > 0) return static_cast<int64_t>(d * 1e6);
  }
  return 5'000'000;
}

StatusOr<std::vector<std::string>> PoolWatch::Sweep() {
  Services& s = services_;
  std::vector<ResourceId> quiet;
  RETURN_IF_ERROR(s.meta->Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(std::vector<meta::Resource> subs, txn.ListSubscriptions());
    for (const meta::Resource& sub : subs) {
      ASSIGN_OR_RETURN(std::vector<meta::Resource> pools, txn.ListByType(sub.id, batch::kPoolType));
      for (const meta::Resource& p : pools) {
        if (JStr(p.properties, "state") == "deleting" || ControllerActive(s, txn, p)) continue;
        quiet.push_back(p.id);
      }
    }
    return Status::Ok();
  }));
  std::vector<std::string> queued;
  batch::ControllerTiming timing = batch::ControllerTiming::FromEnv();
  for (const ResourceId& id : quiet) {
    auto changed = batch::CheckPoolNodes(*s.env, *s.meta, s.data_dir, id, timing);
    if (!changed.ok()) {
      queued.push_back(id.ToString() + ": not checked: " + changed.status().message());
      continue;
    }
    if (changed->empty()) continue;
    ControlTicket ticket;
    Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
      auto pool = txn.Get(id);
      if (!pool.ok()) {
        return pool.status().code() == StatusCode::kNotFound ? Status::Ok() : pool.status();
      }
      if (ControllerActive(s, txn, *pool)) return Status::Ok();  // one started meanwhile
      ASSIGN_OR_RETURN(ticket, EnsureControl(s, txn, *pool, /*held=*/false));
      return txn.Replace(*pool);
    });
    if (!st.ok()) return st;
    if (!ticket.operation_id.empty()) {
      queued.push_back(id.ToString() + ": " + *changed + "; controller " + ticket.operation_id);
    }
  }
  return queued;
}

}  // namespace imagesmith::api
