#include "auth/authorize.h"

#include <string>

namespace imagesmith::auth {

Status Authorize(meta::Transaction&, const Principal& principal, std::string_view action,
                 const ResourceId& scope) {
  if (principal.is_owner) return Status::Ok();
  // Role assignments are not evaluated yet: everyone but the owner is denied.
  return PermissionDeniedError(
      "AuthorizationFailed: The client '" + principal.name + "' with object id '" +
      principal.object_id + "' does not have authorization to perform action '" +
      std::string(action) + "' over scope '" + scope.ToString() + "' or the scope is invalid.");
}

}  // namespace imagesmith::auth
