#include "server/operation_metrics.h"

#include <chrono>
#include <cstdio>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/template_provider.h"

namespace imagesmith::server {
namespace {

// Upper bounds in seconds: a cached step takes under a second, a package
// install minutes, a TCG validation boot tens of seconds.
constexpr double kBounds[] = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};

std::string Number(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", v);
  return text;
}

}  // namespace

std::string BuildPhaseHistogram(const std::vector<Json>& results) {
  struct Series {
    std::vector<int64_t> buckets = std::vector<int64_t>(std::size(kBounds), 0);
    int64_t count = 0;
    double sum = 0;
  };
  std::map<std::string, Series> by_phase;
  for (const Json& result : results) {
    const Json* phases = result.is_object() ? result.Find("phaseSeconds") : nullptr;
    if (phases == nullptr || !phases->is_object()) continue;
    for (const JsonMember& m : phases->object_items()) {
      std::optional<double> seconds = m.value.AsDouble();
      if (!seconds.has_value() || *seconds < 0) continue;
      Series& s = by_phase[m.key];
      for (size_t i = 0; i < std::size(kBounds); ++i) {
        if (*seconds <= kBounds[i]) ++s.buckets[i];
      }
      ++s.count;
      s.sum += *seconds;
    }
  }
  std::string out =
      "# HELP imagesmith_build_phase_duration_seconds How long the phases of template runs took "
      "(runs among the newest 10000 durable operations).\n"
      "# TYPE imagesmith_build_phase_duration_seconds histogram\n";
  for (const auto& [phase, s] : by_phase) {
    std::string label = "phase=\"" + PromEscape(phase) + "\"";
    for (size_t i = 0; i < std::size(kBounds); ++i) {
      out += "imagesmith_build_phase_duration_seconds_bucket{" + label + ",le=\"" +
             Number(kBounds[i]) + "\"} " + std::to_string(s.buckets[i]) + "\n";
    }
    out += "imagesmith_build_phase_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " +
           std::to_string(s.count) + "\n";
    out += "imagesmith_build_phase_duration_seconds_sum{" + label + "} " + Number(s.sum) + "\n";
    out += "imagesmith_build_phase_duration_seconds_count{" + label + "} " +
           std::to_string(s.count) + "\n";
  }
  return out;
}

Metrics::Collector OperationsCollector(api::Operations& operations, int refresh_seconds) {
  struct State {
    std::mutex mu;
    std::chrono::steady_clock::time_point at;                       // guarded by mu
    std::map<std::pair<std::string, std::string>, int64_t> counts;  // guarded by mu
    std::string phases;                                             // guarded by mu
    bool valid = false;                                             // guarded by mu
  };
  auto state = std::make_shared<State>();
  return [&operations, state, refresh_seconds](std::string* out) {
    std::lock_guard<std::mutex> lock(state->mu);
    auto now = std::chrono::steady_clock::now();
    if (!state->valid || now - state->at > std::chrono::seconds(refresh_seconds)) {
      auto list = operations.List(std::nullopt, 10000);
      if (list.ok()) {
        state->counts.clear();
        std::vector<Json> runs;
        for (const api::Operation& op : *list) {
          ++state->counts[{op.type, std::string(api::OperationStatusName(op.status))}];
          if (op.type == api::kTemplateRunOperation && op.done()) runs.push_back(op.result);
        }
        state->phases = BuildPhaseHistogram(runs);
        state->at = now;
        state->valid = true;
      }
    }
    *out +=
        "# HELP imagesmith_operations Durable operations in the metadata database (the newest "
        "10000), by type and status.\n";
    *out += "# TYPE imagesmith_operations gauge\n";
    for (const auto& [key, n] : state->counts) {
      *out += "imagesmith_operations{type=\"" + PromEscape(key.first) + "\",state=\"" +
              PromEscape(key.second) + "\"} " + std::to_string(n) + "\n";
    }
    *out += state->phases;
  };
}

}  // namespace imagesmith::server
