// Authorization: may `principal` perform `action` on `scope`? Actions are
// Azure's operation names ("Microsoft.Compute/galleries/write",
// "Microsoft.VirtualMachineImages/imageTemplates/run/action",
// "Microsoft.Authorization/roleAssignments/write"); scopes are resource IDs.
// Role assignments at a scope apply to it and everything below it.
//
// Thread-compatible: runs inside the caller's transaction.
#pragma once

#include <string_view>

#include "auth/principal.h"
#include "base/resource_id.h"
#include "base/status.h"
#include "meta/meta_store.h"

namespace imagesmith::auth {

// OK when allowed. Otherwise PermissionDenied with the ARM code
// AuthorizationFailed and Azure's message: "The client '<name>' with object
// id '<id>' does not have authorization to perform action '<action>' over
// scope '<scope>' or the scope is invalid."
// The data directory's owner (Principal::is_owner) is allowed everything;
// anyone else when a role assignment at `scope` or above (role_assignments.h)
// gives them a built-in role whose Actions / NotActions permit `action`
// (roles.h).
Status Authorize(meta::Transaction& txn, const Principal& principal, std::string_view action,
                 const ResourceId& scope);

}  // namespace imagesmith::auth
