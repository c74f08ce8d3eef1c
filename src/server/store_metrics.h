// Metrics that describe the data directory rather than the server:
//   imagesmith_store_bytes{region}    bytes of object files in each region's store root
//   imagesmith_store_objects{region}  object files in each region's store root
// computed by walking <data dir>/store/<region>/objects (doc/store.md's
// layout) at most once every `refresh_seconds`, so a scrape does not walk a
// large store every time.
//
// Thread-safe.
#pragma once

#include <string>

#include "server/metrics.h"

namespace imagesmith::server {

// A collector for Metrics::AddCollector.
Metrics::Collector StoreCollector(std::string data_dir, int refresh_seconds = 30);

}  // namespace imagesmith::server
