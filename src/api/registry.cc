// The built-in providers. Each resource type's provider is added here once.
#include "api/provider.h"
#include "api/resource_providers.h"

namespace imagesmith::api {

std::unique_ptr<Registry> BuiltinRegistry() {
  auto registry = std::make_unique<Registry>();
  registry->Add(NewSubscriptionProvider());
  registry->Add(NewResourceGroupProvider());
#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
  registry->Add(NewGalleryProvider());
  registry->Add(NewImageDefinitionProvider());
  registry->Add(NewImageVersionProvider());
  registry->Add(NewManagedImageProvider());
#endif
  return registry;
}

}  // namespace imagesmith::api
