// What the Batch providers share (batch_pool_provider.cc,
// batch_job_provider.cc, batch_pool_run.cc). Internal to src/api/.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "api/operations.h"
#include "api/provider.h"
#include "batch/json_util.h"
#include "batch/model.h"

namespace imagesmith::api {

// The durable operation that runs a pool's controller (batch/controller.h).
inline constexpr char kPoolControlOperation[] = "Microsoft.Batch/batchAccounts/pools/control";

std::vector<std::string> BatchApiVersions();

// The pool as front ends print it: the ARM resource with the controller's
// bookkeeping left out of properties.imagesmith (nodeDriver and
// operationId stay).
Json PoolJson(const meta::Resource& r);
// A node, job or task resource without its internal members.
Json BatchChildJson(const meta::Resource& r);

// In a write transaction: makes sure a controller works on `pool` (whose
// record `pool_r` the caller changed and has not written yet): reuses the
// pool's operation while a live worker holds it or it is queued, or starts
// a new one (held by this process when `held`). Records the operation in
// the pool's properties.imagesmith.operationId. Returns the operation and
// whether it is new and held here (the caller then runs Execute).
struct ControlTicket {
  std::string operation_id;
  bool run_here = false;
};
StatusOr<ControlTicket> EnsureControl(Services& services, meta::Transaction& txn,
                                      meta::Resource& pool_r, bool held);

// After the transaction: with request.wait, runs the operation here
// (run_here) or waits for the worker that holds it; then nothing. Errors
// are the operation's.
Status FinishControl(Services& services, const Request& request, const ControlTicket& ticket);

// NotFound naming the account and saying how pools create it.
StatusOr<meta::Resource> GetAccount(meta::Transaction& txn, const ResourceId& account);
// NotFound naming the pool ID as `what` (a JSON path or "pool").
StatusOr<meta::Resource> GetPool(meta::Transaction& txn, const ResourceId& pool,
                                 const std::string& target = "");

std::unique_ptr<Provider> NewBatchAccountProvider();
std::unique_ptr<Provider> NewBatchPoolProvider();
std::unique_ptr<Provider> NewBatchNodeProvider();
std::unique_ptr<Provider> NewBatchJobProvider();
std::unique_ptr<Provider> NewBatchTaskProvider();
std::unique_ptr<OperationHandler> NewPoolControlHandler();

}  // namespace imagesmith::api
