// /metrics collectors fed from the durable operations in the metadata
// database (doc/server.md, "Metrics"), so they count the work of every
// process on the data directory, not only this server's:
//   imagesmith_operations{type,state}                     gauge
//   imagesmith_build_phase_duration_seconds{phase}        histogram of the
//       template runs' phases (source, customize, generalize, disk,
//       validate, distribute), from each run operation's result.phaseSeconds
// Both come from one scan of the newest 10000 operations, at most every
// `refresh_seconds`.
//
// Thread-safety: the collector may be called from several threads.
#pragma once

#include "api/operations.h"
#include "base/json.h"
#include "server/metrics.h"

namespace imagesmith::server {

// Borrows `operations` for the collector's lifetime.
Metrics::Collector OperationsCollector(api::Operations& operations, int refresh_seconds = 10);

// The histogram's text for `results` (each a run operation's result, with
// "phaseSeconds": {phase: seconds}); exposed for tests.
std::string BuildPhaseHistogram(const std::vector<Json>& results);

}  // namespace imagesmith::server
