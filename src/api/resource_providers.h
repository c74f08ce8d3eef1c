// The built-in providers for subscriptions, resource groups, Compute
// Galleries (galleries, image definitions, image versions) and managed images
// (doc/api.md has the table of verbs, actions and status codes). Each
// function returns a new provider for BuiltinRegistry (registry.cc).
#pragma once

#include <memory>

#include "api/provider.h"

namespace imagesmith::api {

// Microsoft.Resources/subscriptions: GET and LIST (read-only).
std::unique_ptr<Provider> NewSubscriptionProvider();
// Microsoft.Resources/resourceGroups.
std::unique_ptr<Provider> NewResourceGroupProvider();
// Microsoft.Compute/galleries and Microsoft.Compute/galleries/images.
std::unique_ptr<Provider> NewGalleryProvider();
std::unique_ptr<Provider> NewImageDefinitionProvider();
// Microsoft.Compute/galleries/images/versions; PUT publishes and replicates.
std::unique_ptr<Provider> NewImageVersionProvider();
// Microsoft.Compute/images (managed images); PUT imports a disk file.
std::unique_ptr<Provider> NewManagedImageProvider();
// Microsoft.ServiceFabric/managedClusters and .../nodeTypes
// (doc/servicefabric.md); node work is a durable operation.
std::unique_ptr<Provider> NewManagedClusterProvider();
std::unique_ptr<Provider> NewNodeTypeProvider();
// Microsoft.CycleCloud/clusters: clusters imported from CycleCloud templates
// (doc/cyclecloud.md).
std::unique_ptr<Provider> NewCycleCloudClusterProvider();

// imagesmith's own list of durable operations at a scope:
// GET {subscription or group}/providers/Microsoft.Resources/operations
// [?target=ID][&status=S]. Each item is the operation's status with details
// (Operation::ToJson(true), plus "abandoned": true for one whose worker
// died), only those whose target is in the scope and that the caller may
// read ({target type}/read on the target), as lists at a subscription show a
// group's Reader what they may read; it looks at the newest 1,000 records.
inline constexpr char kOperationListType[] = "Microsoft.Resources/operations";
std::unique_ptr<Provider> NewOperationListProvider();

}  // namespace imagesmith::api
