// Reading Batch request bodies (doc/batch.md): pools in the data-plane shape
// of `az batch pool create --json-file`, in an ARM body whose `properties`
// hold those members, or in the management-plane shape
// (deploymentConfiguration, scaleSettings.fixedScale); resizes; jobs;
// tasks. Errors are InvalidRequestContent naming the JSON path as the user
// wrote it ("virtualMachineConfiguration.imageReference.virtualMachineImageId",
// "properties.scaleSettings.fixedScale.resizeTimeout"). Pure; thread-safe.
#pragma once

#include <string>

#include "base/json.h"
#include "base/statusor.h"
#include "batch/model.h"

namespace imagesmith::api {

// `id`, when the body has one, must equal `pool_name`. Checks the vmSize,
// counts (not negative), resizeTimeout (at least PT5M), taskSlotsPerNode
// (1-256), the node driver (qemu or sim) and that the image is given; the
// image's existence, OS and limits are checked against the database by the
// provider.
StatusOr<batch::PoolSpec> ParsePoolBody(const Json& body, const std::string& pool_name);
// {"targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout",
// "nodeDeallocationOption"}.
StatusOr<batch::ResizeSpec> ParseResizeBody(const Json& body);
StatusOr<batch::JobSpec> ParseJobBody(const Json& body, const std::string& job_name);
StatusOr<batch::TaskSpec> ParseTaskBody(const Json& body, const std::string& task_name);

}  // namespace imagesmith::api
