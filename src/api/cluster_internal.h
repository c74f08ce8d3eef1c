// CycleCloud clusters (Microsoft.CycleCloud/clusters; doc/cyclecloud.md):
// what the provider (cluster_provider.cc) and the cluster operation
// (cluster_ops.cc) share. Internal to src/api/.
//
// The cluster's nodes are records in properties.nodes[], one per machine:
//   name          "head", "execute-3"
//   template      the [[node]] or [[nodearray]] section it comes from
//   nodearray     the nodearray's name, or null for a [[node]]
//   state         Off | Acquiring | Preparing | Ready | Failed | Terminating
//   statusMessage why it is Failed (names the node and, for images, the image)
//   image         the image it runs: a resource ID or a catalog URN (null: none yet)
//   imageReference the template's image attributes when it started
//   hostname      the guest's hostname (from the agent's hello)
//   scaleSet      the backing scale set of a nodearray node ("execute-ss1")
//   machineType, cores, nodeId (the driver's id), runtime (the driver's NodeRuntime)
// Acquiring and Terminating nodes are work for the cluster operation, which
// moves them on (Acquiring -> Preparing -> Ready | Failed; Terminating ->
// Off for a [[node]], removed for a nodearray node). The provider only marks
// nodes; the operation acts.
//
// Thread-compatible; functions taking a Transaction run in the caller's.
#pragma once

#include <string>

#include "api/operations.h"
#include "api/provider.h"
#include "meta/meta_store.h"

namespace imagesmith::api::cc {

inline constexpr char kClusterType[] = "Microsoft.CycleCloud/clusters";
// The durable operation that moves a cluster's Acquiring and Terminating
// nodes to their end states.
inline constexpr char kClusterOperation[] = "Microsoft.CycleCloud/clusters/operation";

// The agent version JetpackVersion must match (imagesmith's own).
std::string AgentVersion();

// The cluster as GET shows it: the stored resource plus, per node,
// imageUpToDate / imageNote when the template now names another image, and
// properties.nodearrays (count, limit, scale sets).
Json ClusterJson(const meta::Resource& r);

#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
std::unique_ptr<OperationHandler> NewClusterOperationHandler();
#endif

}  // namespace imagesmith::api::cc
