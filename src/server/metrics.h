// Metrics: what `imagesmith serve` counts, rendered in Prometheus' text
// exposition format (version 0.0.4) at /metrics.
//
//   imagesmith_http_requests_total{method,route,code}          counter
//   imagesmith_http_request_duration_seconds{method,route}     histogram
//   imagesmith_http_connections_active, _accepted_total        gauge, counter
//   ... and whatever the collectors added with AddCollector write (operations
//   by type and state, store bytes and objects per region).
//
// Routes are templates (router.h), never raw paths, so the number of series
// stays bounded whatever clients send.
//
// Thread-safe: Record* may be called from every server thread at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace imagesmith::server {

class Metrics {
 public:
  // Appends complete metric families (# HELP, # TYPE and samples) to `out`.
  using Collector = std::function<void(std::string* out)>;

  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void RecordRequest(std::string_view method, std::string_view route, int status, double seconds);
  void ConnectionOpened() {
    connections_active_.fetch_add(1, std::memory_order_relaxed);
    connections_accepted_.fetch_add(1, std::memory_order_relaxed);
  }
  void ConnectionClosed() { connections_active_.fetch_sub(1, std::memory_order_relaxed); }

  // Adds a collector; call before the server starts.
  void AddCollector(Collector collector);

  // The whole exposition text.
  std::string Render() const;

  // The histogram's bucket upper bounds in seconds.
  static const std::vector<double>& Buckets();

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  // (method, route, code) -> count; guarded by mu_.
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  // (method, route) -> histogram; guarded by mu_.
  std::map<std::pair<std::string, std::string>, Histogram> durations_;
  std::vector<Collector> collectors_;  // fixed before serving
  std::atomic<int64_t> connections_active_{0};
  std::atomic<uint64_t> connections_accepted_{0};
};

// Escapes a label value for the text format (backslash, quote, newline).
std::string PromEscape(std::string_view value);

}  // namespace imagesmith::server
