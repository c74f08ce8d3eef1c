// Service Fabric managed clusters and node types
// (Microsoft.ServiceFabric/managedClusters, .../nodeTypes; doc/servicefabric.md):
// what the providers (sf_provider.cc) and the node type operation
// (sf_node_type_ops.cc) share. Internal to src/api/.
//
// A node type's resource keeps Azure's properties and, under
// properties.imagesmith, what only imagesmith needs:
//   nodeDriver       "qemu" | "sim"
//   healthCommand    optional application health command (run in the guest)
//   rollingUpgradePolicy  optional: the rollout engine's policy fields
//   currentImage     the image ID the node type runs (a version or managed image)
//   nodes            [{"id", "index", "image", "runtime"}]
//   operationId      the operation that works on it now (or last)
//   rollout          the current or last rollout (fleet::RolloutState, resumable)
//   rolloutHistory   the last 5 rollouts, newest first
//   autoUpgrade      {"targetImage", "attempts", "lastAttemptUs", "nextRetryUs", "result"}
//
// Thread-compatible; functions taking a Transaction run in the caller's.
#pragma once

#include <string>

#include "api/operations.h"
#include "api/provider.h"
#include "fleet/rollout.h"
#include "meta/meta_store.h"

namespace imagesmith::api::sf {

inline constexpr char kClusterType[] = "Microsoft.ServiceFabric/managedClusters";
inline constexpr char kNodeTypeType[] = "Microsoft.ServiceFabric/managedClusters/nodeTypes";
// The durable operation that provisions, scales, restarts, reimages, deletes
// and rolls out a node type.
inline constexpr char kNodeTypeOperation[] =
    "Microsoft.ServiceFabric/managedClusters/nodeTypes/operation";
// Upgrade domains of a node type: instance i is in domain i % 5.
inline constexpr int kUpgradeDomains = 5;
// A failed automatic OS upgrade is tried again after this long, at most
// kMaxAutoUpgradeRetries times.
inline constexpr int64_t kAutoUpgradeRetryUs = 24LL * 3600 * 1'000'000;
inline constexpr int kMaxAutoUpgradeRetries = 3;

// properties.imagesmith of `r` (made when absent).
Json& Ext(meta::Resource& r);
const Json* ExtFind(const meta::Resource& r, std::string_view key);
std::string ExtString(const meta::Resource& r, std::string_view key);

// What a node type's vmImageResourceId names.
enum class ImageKind { kManagedImage, kDefinition, kVersion };
// InvalidArgument naming `path` when `id` is none of the three.
StatusOr<ImageKind> ClassifyImage(const ResourceId& id, const std::string& path);

// The image a node type boots now for `image_ref` in `region`: the managed
// image or version itself, or the definition's `latest` there. NotFound
// naming what is missing (a version not replicated to the region says so).
StatusOr<std::string> ResolveNodeImage(meta::Transaction& txn, const ResourceId& image_ref,
                                       const std::string& region);

// Starts the node type operation of `kind` ("provision", "rollout",
// "restart", "reimage", "delete") on `node_type` inside `txn`, refusing
// (Conflict) while another one runs; records its ID in the node type.
// `extra` members are added to the operation's input.
StatusOr<Operation> StartNodeTypeOperation(Services& services, meta::Transaction& txn,
                                           meta::Resource& node_type, const std::string& kind,
                                           const Json& extra, bool held);

// Runs a started operation to its end when `request.wait` (the CLI) and
// answers with the node type; else 202 with the operation.
StatusOr<Response> FinishNodeTypeOperation(Services& services, const Request& request,
                                           const Operation& op, const ResourceId& node_type);

// The node type as a GET shows it (Azure's shape plus properties.imagesmith
// without the resumable rollout state).
Json NodeTypeJson(const meta::Resource& r);

// The automatic OS upgrade controller for one cluster, once: for each node
// type (in name order, one at a time) that floats on a gallery image
// definition, when the cluster has enableAutoOSUpgrade, rolls it to its
// definition's new `latest` in the cluster's region, retrying a failed
// upgrade after 24 hours at most 3 times. Returns what it did per node type
// ({"nodeTypes": [{"name", "action", "detail", "rollout"?}]}).
StatusOr<Json> RunAutoOsUpgrade(Services& services, const Request& request,
                                const ResourceId& cluster);

std::unique_ptr<OperationHandler> NewNodeTypeOperationHandler();

}  // namespace imagesmith::api::sf
