#include "cyclecloud/scaling.h"

namespace imagesmith::cyclecloud {

NodeLimit EffectiveNodeLimit(std::optional<int64_t> max_count,
                             std::optional<int64_t> max_core_count, int64_t cores_per_node) {
  NodeLimit out;
  if (max_count) {
    out.max_nodes = *max_count;
    out.reason = "MaxCount " + std::to_string(*max_count);
  }
  if (max_core_count) {
    int64_t by_cores = *max_core_count / (cores_per_node < 1 ? 1 : cores_per_node);
    if (max_count) {
      out.rule = "MaxCount " + std::to_string(*max_count) + " and MaxCoreCount " +
                 std::to_string(*max_core_count) + " / " + std::to_string(cores_per_node) +
                 " cores per node = " + std::to_string(by_cores) +
                 " nodes are enforced together and the lower wins";
    }
    if (!out.max_nodes || by_cores < *out.max_nodes) {
      out.max_nodes = by_cores;
      out.reason = "MaxCoreCount " + std::to_string(*max_core_count) + " (" +
                   std::to_string(cores_per_node) + " cores per node)";
    }
  }
  return out;
}

Status CheckAddNodes(const std::string& nodearray, int64_t current, int64_t adding,
                     const NodeLimit& limit) {
  if (adding < 0)
    return InvalidArgumentError("nodearray " + nodearray + ": cannot add a negative count");
  if (!limit.max_nodes || current + adding <= *limit.max_nodes) return Status::Ok();
  return ResourceExhaustedError("nodearray " + nodearray + ": adding " + std::to_string(adding) +
                                " nodes to " + std::to_string(current) + " would exceed " +
                                limit.reason + " (at most " + std::to_string(*limit.max_nodes) +
                                " nodes)" + (limit.rule.empty() ? "" : "; " + limit.rule));
}

int64_t ScaleSetOf(int64_t index, std::optional<int64_t> max_scaleset_size) {
  if (!max_scaleset_size || *max_scaleset_size < 1) return 0;
  return index / *max_scaleset_size;
}

int64_t ScaleSetsFor(int64_t count, std::optional<int64_t> max_scaleset_size) {
  if (count <= 0) return 0;
  if (!max_scaleset_size || *max_scaleset_size < 1) return 1;
  return (count + *max_scaleset_size - 1) / *max_scaleset_size;
}

}  // namespace imagesmith::cyclecloud
