// Node-count rules of a nodearray, as pure functions.
//   - MaxCount and MaxCoreCount are enforced together; the lower wins
//     (MaxCoreCount counts cores: floor(MaxCoreCount / cores per node)).
//   - Nodes are spread over backing scale sets of at most
//     Azure.MaxScalesetSize nodes; a new one starts every that many nodes.
//     Without the attribute every node is in one scale set.
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"

namespace imagesmith::cyclecloud {

struct NodeLimit {
  std::optional<int64_t> max_nodes;  // nullopt: no limit
  std::string reason;                // "MaxCount 10" or "MaxCoreCount 64 (16 per node)"
  // With both limits set: how they combine, for the error ("MaxCount 10 and
  // MaxCoreCount 64 / 16 cores per node = 4 nodes are enforced together and
  // the lower wins"); "" otherwise.
  std::string rule;
};

// Requires cores_per_node >= 1 and non-negative limits.
NodeLimit EffectiveNodeLimit(std::optional<int64_t> max_count,
                             std::optional<int64_t> max_core_count, int64_t cores_per_node);

// OK when `current + adding` nodes fit `limit`; otherwise ResourceExhausted
// "nodearray NAME: adding N nodes to M would exceed REASON (at most K)".
Status CheckAddNodes(const std::string& nodearray, int64_t current, int64_t adding,
                     const NodeLimit& limit);

// The 0-based scale set of the 0-based node `index`; and how many scale
// sets `count` nodes need. `max_scaleset_size` nullopt or >= 1.
int64_t ScaleSetOf(int64_t index, std::optional<int64_t> max_scaleset_size);
int64_t ScaleSetsFor(int64_t count, std::optional<int64_t> max_scaleset_size);

}  // namespace imagesmith::cyclecloud
