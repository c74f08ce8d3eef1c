// ServicesPool: one api::Services per server thread, each with its own
// MetaStore (its own SQLite connection) on the same database, so requests on
// different threads read in parallel (SQLite WAL) instead of queueing on one
// connection's mutex. Writers still take the database's write lock one at a
// time, waiting up to the store's busy timeout.
//
// Thread-safe. ForThisThread gives each of the first `stores.size()` threads
// that call it its own Services for good; any further thread shares `base`
// (whose MetaStore serialises its transactions, so that is still correct).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "api/services.h"
#include "meta/meta_store.h"

namespace imagesmith::server {

class ServicesPool {
 public:
  // `base` is borrowed (its MetaStore and Operations must outlive the pool);
  // the pool owns `stores`. With no stores every thread uses `base`.
  ServicesPool(api::Services& base, std::vector<std::unique_ptr<meta::MetaStore>> stores);
  ServicesPool(const ServicesPool&) = delete;
  ServicesPool& operator=(const ServicesPool&) = delete;

  api::Services& ForThisThread();

 private:
  api::Services& base_;
  std::vector<std::unique_ptr<meta::MetaStore>> stores_;
  std::vector<api::Services> services_;  // services_[i].meta == stores_[i]
  std::atomic<size_t> next_{0};
};

}  // namespace imagesmith::server
