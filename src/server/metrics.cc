#include "server/metrics.h"

#include <cstdio>

namespace imagesmith::server {

const std::vector<double>& Metrics::Buckets() {
  static const std::vector<double> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return kBuckets;
}

Metrics::Metrics() = default;

std::string PromEscape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::RecordRequest(std::string_view method, std::string_view route, int status,
                            double seconds) {
  const auto& buckets = Buckets();
  size_t bucket = 0;
  while (bucket < buckets.size() && seconds > buckets[bucket]) ++bucket;
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(method), std::string(route), status}];
  Histogram& h = durations_[{std::string(method), std::string(route)}];
  if (h.counts.empty()) h.counts.assign(buckets.size() + 1, 0);
  ++h.counts[bucket];
  ++h.count;
  h.sum += seconds;
}

void Metrics::AddCollector(Collector collector) { collectors_.push_back(std::move(collector)); }

std::string Metrics::Render() const {
  std::string out;
  char num[64];
  out +=
      "# HELP imagesmith_http_requests_total HTTP requests answered, by method, route "
      "template and status code.\n";
  out += "# TYPE imagesmith_http_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, count] : requests_) {
      const auto& [method, route, code] = key;
      out += "imagesmith_http_requests_total{method=\"" + PromEscape(method) + "\",route=\"" +
             PromEscape(route) + "\",code=\"" + std::to_string(code) + "\"} " +
             std::to_string(count) + "\n";
    }
    out +=
        "# HELP imagesmith_http_request_duration_seconds Time from a complete request to its "
        "response, by method and route template.\n";
    out += "# TYPE imagesmith_http_request_duration_seconds histogram\n";
    const auto& buckets = Buckets();
    for (const auto& [key, h] : durations_) {
      std::string labels =
          "method=\"" + PromEscape(key.first) + "\",route=\"" + PromEscape(key.second) + "\"";
      uint64_t cumulative = 0;
      for (size_t i = 0; i < buckets.size(); ++i) {
        cumulative += h.counts[i];
        std::snprintf(num, sizeof(num), "%g", buckets[i]);
        out += "imagesmith_http_request_duration_seconds_bucket{" + labels + ",le=\"" + num +
               "\"} " + std::to_string(cumulative) + "\n";
      }
      out += "imagesmith_http_request_duration_seconds_bucket{" + labels + ",le=\"+Inf\"} " +
             std::to_string(h.count) + "\n";
      std::snprintf(num, sizeof(num), "%.9g", h.sum);
      out += "imagesmith_http_request_duration_seconds_sum{" + labels + "} " + num + "\n";
      out += "imagesmith_http_request_duration_seconds_count{" + labels + "} " +
             std::to_string(h.count) + "\n";
    }
  }
  out += "# HELP imagesmith_http_connections_active Open client connections.\n";
  out += "# TYPE imagesmith_http_connections_active gauge\n";
  out += "imagesmith_http_connections_active " +
         std::to_string(connections_active_.load(std::memory_order_relaxed)) + "\n";
  out += "# HELP imagesmith_http_connections_accepted_total Client connections accepted.\n";
  out += "# TYPE imagesmith_http_connections_accepted_total counter\n";
  out += "imagesmith_http_connections_accepted_total " +
         std::to_string(connections_accepted_.load(std::memory_order_relaxed)) + "\n";
  for (const Collector& c : collectors_) c(&out);
  return out;
}

}  // namespace imagesmith::server
