// Creating a role assignment inside a caller's transaction: what the
// roleAssignments provider's PUT does, shared with `ad sp create-for-rbac`
// (accounts.h), which makes the service principal and its assignments in one
// transaction. Internal to src/api/.
#pragma once

#include "api/services.h"
#include "auth/role_assignments.h"
#include "base/json.h"
#include "meta/meta_store.h"

namespace imagesmith::api {

// Validates `body` (ARM's {"properties": {"roleDefinitionId", "principalId",
// ...}}), checks that the scope and the principal exist and that `caller`
// may write role assignments at the scope, and stores the assignment.
// Errors carry ARM codes: ResourceGroupNotFound / ResourceNotFound (scope),
// AuthorizationFailed, RoleDefinitionDoesNotExist, PrincipalNotFound,
// RoleAssignmentExists, InvalidRequestContent naming the member.
StatusOr<auth::RoleAssignment> PutRoleAssignment(meta::Transaction& txn, const Caller& caller,
                                                 const auth::RoleAssignmentRef& ref,
                                                 const Json& body);

}  // namespace imagesmith::api
