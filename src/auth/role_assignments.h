// Role assignments: a principal holds a role at a scope (a subscription, a
// resource group or a resource) and so on everything below it.
//
// Storage: records in the collection "roleAssignments", keyed by the
// assignment's name (a GUID, unique in the tenant as in Azure), holding the
// scope as a canonical resource ID string. They are kept outside the
// resource tree on purpose: an assignment on a gallery is not a child of
// the gallery (it must not block deleting the gallery's images, nor show in
// the group's resources), and the subscription-scope ID
// /subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments/{g}
// is not a ResourceId (base/resource_id.h has no extension resources).
// ParseRoleAssignmentId splits such IDs into scope and name.
//
// Functions run inside the caller's transaction; thread-compatible.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.h"
#include "auth/roles.h"
#include "base/json.h"
#include "base/resource_id.h"
#include "base/statusor.h"
#include "meta/meta_store.h"

namespace imagesmith::auth {

inline constexpr const char* kRoleAssignmentType = "Microsoft.Authorization/roleAssignments";

struct RoleAssignment {
  std::string name;  // GUID
  ResourceId scope = ResourceId::ForSubscription("");
  std::string principal_id;    // object ID
  std::string principal_type;  // "User" or "ServicePrincipal"
  std::string role_guid;       // a built-in role's GUID (roles.h)
  std::string description;
  std::string created_by;  // object ID of the principal that created it
  int64_t created_us = 0;
  int64_t updated_us = 0;

  // "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}".
  std::string Id() const;
  const RoleDefinition& Role() const;  // requires a built-in role_guid
  // ARM's shape: {id, name, type, properties: {roleDefinitionId, principalId,
  // principalType, scope, description, condition, conditionVersion,
  // createdOn, updatedOn, createdBy, updatedBy, delegatedManagedIdentityResourceId}}.
  Json ToJson() const;
};

// A role assignment ID split into its scope and name. InvalidArgument
// naming the ID when it is not "{scope}/providers/Microsoft.Authorization/
// roleAssignments/{guid}" with a valid scope; with `allow_no_name`,
// "{scope}/providers/Microsoft.Authorization/roleAssignments" (a list) is
// accepted and gives an empty name.
struct RoleAssignmentRef {
  ResourceId scope = ResourceId::ForSubscription("");
  std::string name;
};
StatusOr<RoleAssignmentRef> ParseRoleAssignmentId(std::string_view id, bool allow_no_name = false);

// True when an assignment at `assignment_scope` applies to `target`: the
// same scope or one below it.
bool ScopeCovers(const ResourceId& assignment_scope, const ResourceId& target);

// Every assignment, ordered by name.
StatusOr<std::vector<RoleAssignment>> ListRoleAssignments(meta::Transaction& txn);
// The assignment named `name`; NotFound (RoleAssignmentNotFound) when there
// is none.
StatusOr<RoleAssignment> GetRoleAssignment(meta::Transaction& txn, const std::string& name);
// Stores a new assignment. AlreadyExists with the ARM code
// RoleAssignmentExists when the principal already holds the role at that
// scope under another name, Conflict when `name` is taken by a different
// assignment. Storing an identical assignment again is OK (idempotent PUT).
// Fills created/updated times.
Status CreateRoleAssignment(meta::Transaction& txn, RoleAssignment& assignment);
// NotFound when absent.
Status DeleteRoleAssignment(meta::Transaction& txn, const std::string& name);

// Deletes every assignment at `scope` or below it, and returns how many.
// Providers call it when they delete a resource or group, as ARM removes
// the extension resources of a deleted scope, so a new resource of the same
// name does not inherit the old one's grants.
StatusOr<int> DeleteRoleAssignmentsUnder(meta::Transaction& txn, const ResourceId& scope);

// The roles `principal_id` holds at `scope`, assigned there or above.
StatusOr<std::vector<const RoleDefinition*>> EffectiveRoles(meta::Transaction& txn,
                                                            const std::string& principal_id,
                                                            const ResourceId& scope);
// True when `principal` holds one of `role_names` at `scope` (the owner holds
// every role). For checks such as "the staging group needs Contributor or
// Owner for the template's identity".
StatusOr<bool> HoldsRole(meta::Transaction& txn, const Principal& principal,
                         const std::vector<std::string>& role_names, const ResourceId& scope);

}  // namespace imagesmith::auth
