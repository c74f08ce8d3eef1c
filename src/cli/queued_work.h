// What a command does after it queued a durable operation (--no-wait): make
// sure a worker will run it (doc/operations.md, "Queued work").
#pragma once

#include <string>

#include "base/status.h"
#include "cli/command.h"

namespace imagesmith::cli {

// When a long-running worker is announced on the data directory
// (api/worker_presence.h: `imagesmith serve`, `imagesmith internal worker`),
// says on stderr that it will run operation `operation_id` and starts
// nothing. Otherwise starts a detached `imagesmith internal worker
// --exit-when-idle` (its own session, output appended to DATA/worker.log)
// that runs it and whatever else is queued, then exits. An error only when
// the worker process could not be started.
Status HandOffQueued(CommandContext& ctx, const std::string& data_dir,
                     const std::string& operation_id);

}  // namespace imagesmith::cli
