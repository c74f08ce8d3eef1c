// The identity and access providers: user-assigned managed identities and
// role assignments (doc/auth.md). Each function returns a new provider for
// BuiltinRegistry (registry.cc).
#pragma once

#include <memory>

#include "api/provider.h"

namespace imagesmith::api {

// Microsoft.ManagedIdentity/userAssignedIdentities: PUT, GET, LIST (group or
// subscription), DELETE. A new identity gets a principalId (its object ID
// for role assignments), a clientId and the directory's tenantId.
std::unique_ptr<Provider> NewIdentityProvider();

// Microsoft.Authorization/roleAssignments at subscription, group or resource
// scope (Request::extension_type / extension_name): PUT (needs
// Microsoft.Authorization/roleAssignments/write, which only Owner has), GET,
// LIST (assignments at, above and below the scope, as ARM lists them
// without $filter), DELETE.
std::unique_ptr<Provider> NewRoleAssignmentProvider();

// Microsoft.Authorization/permissions at any scope (LIST, with the scope in
// Request::id): the caller's own effective permissions there, as Azure's
// "Permissions - List For Resource" gives them: {"value": [{"actions",
// "notActions", "dataActions", "notDataActions"}]}, one entry per role the
// caller holds at the scope or above; the owner gets {"actions": ["*"]}.
// Anyone may ask about themselves. The web console hides what these deny.
std::unique_ptr<Provider> NewPermissionsProvider();

}  // namespace imagesmith::api
