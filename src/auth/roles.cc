#include "auth/roles.h"

#include <cctype>

#include "base/strings.h"

namespace imagesmith::auth {
namespace {

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// Glob match with '*' only; iterative with one backtrack point, so a
// pattern cannot make it take more than O(|p| * |a|) steps.
bool Glob(std::string_view p, std::string_view a) {
  size_t pi = 0, ai = 0, star = std::string_view::npos, mark = 0;
  while (ai < a.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ai;
    } else if (pi < p.size() && Lower(p[pi]) == Lower(a[ai])) {
      ++pi;
      ++ai;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ai = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace

bool ActionMatches(std::string_view pattern, std::string_view action) {
  return Glob(pattern, action);
}

bool RoleDefinition::Allows(std::string_view action) const {
  bool allowed = false;
  for (const std::string& p : actions) allowed = allowed || ActionMatches(p, action);
  if (!allowed) return false;
  for (const std::string& p : not_actions) {
    if (ActionMatches(p, action)) return false;
  }
  return true;
}

std::string RoleDefinition::IdIn(std::string_view subscription) const {
  return "/subscriptions/" + std::string(subscription) +
         "/providers/Microsoft.Authorization/roleDefinitions/" + guid;
}

const std::vector<RoleDefinition>& BuiltinRoles() {
  // Azure's built-in role definitions (Actions / NotActions as published).
  static const std::vector<RoleDefinition> kRoles = {
      {"Owner",
       "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
       "Grants full access to manage all resources, including the ability to assign roles in "
       "Azure RBAC.",
       {"*"},
       {}},
      {"Contributor",
       "b24988ac-6180-42a0-ab88-20f7382dd24c",
       "Grants full access to manage all resources, but does not allow you to assign roles in "
       "Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
       {"*"},
       {"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action",
        "Microsoft.Blueprint/blueprintAssignments/write",
        "Microsoft.Blueprint/blueprintAssignments/delete",
        "Microsoft.Compute/galleries/share/action", "Microsoft.Purview/consents/write",
        "Microsoft.Purview/consents/delete"}},
      {"Reader",
       "acdd72a7-3385-48ef-bd42-f606fba81ae7",
       "View all resources, but does not allow "
       "you to make any changes.",
       {"*/read"},
       {}},
  };
  return kRoles;
}

const RoleDefinition* FindRole(std::string_view name_or_id) {
  for (const RoleDefinition& r : BuiltinRoles()) {
    if (EqualsIgnoreCase(r.name, name_or_id) || EqualsIgnoreCase(r.guid, name_or_id)) return &r;
    if (name_or_id.size() > r.guid.size() + 1 &&
        EqualsIgnoreCase(name_or_id.substr(name_or_id.size() - r.guid.size()), r.guid) &&
        name_or_id[name_or_id.size() - r.guid.size() - 1] == '/' &&
        StartsWithIgnoreCase(name_or_id, "/subscriptions/")) {
      return &r;
    }
  }
  return nullptr;
}

}  // namespace imagesmith::auth
