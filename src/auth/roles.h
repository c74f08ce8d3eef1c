// Built-in role definitions: Owner, Contributor and Reader, with the
// Actions / NotActions Azure's definitions give them, and the matching of an
// operation name ("Microsoft.Compute/galleries/write") against them.
//
// A role allows an action when some pattern in Actions matches it and no
// pattern in NotActions does. Patterns compare case-insensitively and '*'
// matches any run of characters, '/' included ("*/read" is every read,
// "Microsoft.Authorization/*/Write" every write under Microsoft.Authorization).
// Stateless and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace imagesmith::auth {

struct RoleDefinition {
  std::string name;  // "Reader"
  std::string guid;  // Azure's fixed ID for the built-in role: "acdd72a7-..."
  std::string description;
  std::vector<std::string> actions;
  std::vector<std::string> not_actions;

  // True when the role permits `action`.
  bool Allows(std::string_view action) const;
  // "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
  // the roleDefinitionId az prints.
  std::string IdIn(std::string_view subscription) const;
};

// Owner, Contributor and Reader, in that order.
const std::vector<RoleDefinition>& BuiltinRoles();

// The role named `name_or_id`: a role name ("reader", any case), its GUID,
// or a full roleDefinitionId ending in the GUID. nullptr when none matches.
const RoleDefinition* FindRole(std::string_view name_or_id);

// True when `pattern` (an Actions entry) matches `action`.
bool ActionMatches(std::string_view pattern, std::string_view action);

}  // namespace imagesmith::auth
