// The images Batch pools boot from, and the rules that tie pools to them:
// the image must exist and be usable in the pool's region, its OS must fit
// the pool's nodeAgentSKUId, the pools on one custom image share Batch's
// node limits (2,500 dedicated, 1,000 low-priority), a VHD serves at most 40
// Linux nodes, and an image a pool uses is protected from deletion.
//
// Every function runs inside the caller's transaction; thread-compatible.
// Errors say what to do next and name the field or resource.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/resource_id.h"
#include "base/statusor.h"
#include "batch/model.h"
#include "meta/meta_store.h"

namespace imagesmith::batch {

// What a pool's image is, resolved in a region.
struct PoolImage {
  std::string image_id;  // the managed image or gallery version, as stored
  std::string os_type = "Linux";
  bool uefi = false;  // hyperVGeneration V2
};

// The image ID in a pool's stored properties
// (virtualMachineConfiguration.imageReference.virtualMachineImageId); "" for
// VHD pools.
std::string PoolImageIdOf(const Json& props);

// Resolves `image_id` (a managed image, or a gallery version that must be
// replicated, Completed, to `region`) for a pool. NotFound names the image;
// FailedPrecondition names the image and the region when the version has no
// completed replica there. `path` is the JSON path for the error's target.
StatusOr<PoolImage> ResolvePoolImage(meta::Transaction& txn, const std::string& image_id,
                                     const std::string& region, const std::string& path);

// InvalidArgument naming `path` and listing the SKUs that fit when `sku`
// does not fit an image of `os_type` (or is not a SKU imagesmith knows).
Status CheckNodeAgentSku(const std::string& sku, const std::string& os_type,
                         const std::string& path);

// Checks that `dedicated` / `low_priority` nodes for `pool` fit the limits
// of `image_id` together with every other pool in the subscription on that
// image. InvalidArgument with the numbers (limit, held by other pools and
// which, asked) naming `dedicated_path` / `low_priority_path`.
Status CheckImageLimits(meta::Transaction& txn, const ResourceId& pool, const std::string& image_id,
                        int64_t dedicated, int64_t low_priority, const std::string& dedicated_path,
                        const std::string& low_priority_path);

// VHD pools: at most 40 Linux nodes per VHD. InvalidArgument giving how
// many VHD copies the node count needs.
Status CheckVhdCapacity(const std::vector<std::string>& vhd_uris, int64_t nodes,
                        const std::string& path);

// The pools (IDs) in `subscription` whose image is `image` or, for a
// definition, a version under it.
StatusOr<std::vector<ResourceId>> PoolsUsingImage(meta::Transaction& txn,
                                                  const std::string& subscription,
                                                  const ResourceId& image);

// FailedPrecondition (Conflict) naming the pools that use `image` unless
// `force` or no pool uses it: what image, version and definition deletes call.
Status CheckImageNotInUse(meta::Transaction& txn, const ResourceId& image, bool force);

}  // namespace imagesmith::batch
