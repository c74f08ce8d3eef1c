// The built-in providers. Each resource type's provider is added here once.
#include "api/auth_providers.h"
#include "api/provider.h"

namespace imagesmith::api {

std::unique_ptr<Registry> BuiltinRegistry() {
  auto registry = std::make_unique<Registry>();
  registry->Add(NewIdentityProvider());
  registry->Add(NewRoleAssignmentProvider());
  return registry;
}

}  // namespace imagesmith::api
