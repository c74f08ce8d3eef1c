#include "auth/authorize.h"

#include <string>

#include "auth/role_assignments.h"

namespace imagesmith::auth {

Status Authorize(meta::Transaction& txn, const Principal& principal, std::string_view action,
                 const ResourceId& scope) {
  if (principal.is_owner) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<const RoleDefinition*> roles,
                   EffectiveRoles(txn, principal.object_id, scope));
  for (const RoleDefinition* role : roles) {
    if (role->Allows(action)) return Status::Ok();
  }
  return PermissionDeniedError(
      "AuthorizationFailed: The client '" + principal.name + "' with object id '" +
      principal.object_id + "' does not have authorization to perform action '" +
      std::string(action) + "' over scope '" + scope.ToString() + "' or the scope is invalid.");
}

}  // namespace imagesmith::auth
