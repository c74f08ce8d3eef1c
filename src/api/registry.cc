// The built-in providers. Each resource type's provider is added here once.
#include "api/auth_providers.h"
#include "api/batch_internal.h"
#include "api/cluster_internal.h"
#include "api/provider.h"
#include "api/resource_providers.h"
#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
#include "api/sf_internal.h"
#endif
#include "api/template_provider.h"
#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
#include "api/version_replication.h"
#endif

namespace imagesmith::api {

std::unique_ptr<Registry> BuiltinRegistry() {
  auto registry = std::make_unique<Registry>();
  registry->Add(NewSubscriptionProvider());
  registry->Add(NewResourceGroupProvider());
  registry->Add(NewOperationListProvider());
#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
  registry->Add(NewGalleryProvider());
  registry->Add(NewImageDefinitionProvider());
  registry->Add(NewImageVersionProvider());
  registry->Add(NewManagedImageProvider());
  registry->Add(NewManagedClusterProvider());
  registry->Add(NewNodeTypeProvider());
#endif
  registry->Add(NewImageTemplateProvider());
  registry->Add(NewRunOutputProvider());
  registry->Add(NewRunLogProvider());
  registry->Add(NewRunHistoryProvider());
  registry->Add(NewIdentityProvider());
  registry->Add(NewRoleAssignmentProvider());
  registry->Add(NewPermissionsProvider());
  registry->Add(NewCycleCloudClusterProvider());
#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
  registry->Add(NewBatchAccountProvider());
  registry->Add(NewBatchPoolProvider());
  registry->Add(NewBatchNodeProvider());
  registry->Add(NewBatchJobProvider());
  registry->Add(NewBatchTaskProvider());
#endif
  return registry;
}

void AddBuiltinHandlers(Operations& operations) {
  operations.AddHandler(NewTemplateRunHandler());
#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
  operations.AddHandler(sf::NewNodeTypeOperationHandler());
  operations.AddHandler(cc::NewClusterOperationHandler());
  operations.AddHandler(NewPoolControlHandler());
  operations.AddHandler(NewVersionReplicationHandler());
#endif
}

}  // namespace imagesmith::api
