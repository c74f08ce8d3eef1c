// The durable operation that replicates a gallery image version to its
// target regions (kVersionReplicateOperation), and the two calls the
// version provider makes around it.
//
//   PUT / PATCH version ─ one write transaction: the version (Creating or
//                         Updating) + StartVersionReplicationIn
//        │ wait = false (REST, --no-wait): 201/200 with the operation; a
//        │   worker (serve, internal worker) claims it
//        └ wait = true (the CLI without a server): FinishVersionReplication
//            runs it here and returns the version, or the replica's error
//
// The handler calls gallery::ReplicateVersion, which copies every region that
// is not Completed and is idempotent, so the operation is resumable: when the
// worker running it dies, the next worker runs it again from the start and
// finishes what is left (doc/operations.md). A version is never left
// Creating: either a worker finishes its replication or the operation fails
// and the version is Failed.
//
// Thread-safety: as provider.h.
#pragma once

#include <memory>

#include "api/operations.h"
#include "api/provider.h"

namespace imagesmith::api {

inline constexpr char kVersionReplicateOperation[] =
    "Microsoft.Compute/galleries/images/versions/replicate";

// The handler of kVersionReplicateOperation.
std::unique_ptr<OperationHandler> NewVersionReplicationHandler();

// Inside the transaction that wrote the version `version` (in `location`):
// starts its replication operation, held by this process when `held`. If a
// live worker already replicates the version, that operation is returned
// instead; an earlier one whose worker died is failed as superseded.
StatusOr<Operation> StartVersionReplicationIn(Services& services, meta::Transaction& txn,
                                              const ResourceId& version,
                                              const std::string& location, bool held);

// Runs or waits for the operation `op` (Execute when this process holds
// it, Wait otherwise) with the request's progress and interrupt. OK when
// it succeeded; otherwise the replication's error (its status code and ARM
// code kept).
Status FinishVersionReplication(Services& services, const Operation& op, const Request& request);

}  // namespace imagesmith::api
