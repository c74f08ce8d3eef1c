#include "auth/role_assignments.h"

#include <cstdio>
#include <ctime>

#include "base/strings.h"

namespace imagesmith::auth {
namespace {

constexpr const char* kCollection = "roleAssignments";
constexpr std::string_view kInfix = "/providers/Microsoft.Authorization/roleAssignments";

std::string Str(const Json& o, std::string_view key) {
  const Json* v = o.Find(key);
  return v != nullptr && v->is_string() ? v->string_value() : std::string();
}

StatusOr<RoleAssignment> FromRecord(const meta::Record& r) {
  RoleAssignment a;
  a.name = r.key;
  auto scope = ResourceId::Parse(Str(r.value, "scope"));
  if (!scope.ok() || FindRole(Str(r.value, "roleDefinitionGuid")) == nullptr) {
    return DataLossError("role assignment " + r.key +
                         " in the metadata database is damaged (bad scope or role)");
  }
  a.scope = *scope;
  a.principal_id = Str(r.value, "principalId");
  a.principal_type = Str(r.value, "principalType");
  a.role_guid = Str(r.value, "roleDefinitionGuid");
  a.description = Str(r.value, "description");
  a.created_by = Str(r.value, "createdBy");
  a.created_us = r.created_us;
  a.updated_us = r.updated_us;
  return a;
}

std::string IsoTime(int64_t us) {
  time_t s = static_cast<time_t>(us / 1000000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char buf[96];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<int>(((us % 1000000) + 1000000) % 1000000));
  return buf;
}

Json StrOrNull(const std::string& s) { return s.empty() ? Json::Null() : Json::String(s); }

}  // namespace

std::string RoleAssignment::Id() const {
  return scope.ToString() + std::string(kInfix) + "/" + name;
}

const RoleDefinition& RoleAssignment::Role() const { return *FindRole(role_guid); }

Json RoleAssignment::ToJson() const {
  Json p = Json::MakeObject();
  p.Set("roleDefinitionId", Json::String(Role().IdIn(scope.subscription())));
  p.Set("principalId", Json::String(principal_id));
  p.Set("principalType", Json::String(principal_type));
  p.Set("scope", Json::String(scope.ToString()));
  p.Set("condition", Json::Null());
  p.Set("conditionVersion", Json::Null());
  p.Set("description", StrOrNull(description));
  p.Set("createdOn", Json::String(IsoTime(created_us)));
  p.Set("updatedOn", Json::String(IsoTime(updated_us)));
  p.Set("createdBy", StrOrNull(created_by));
  p.Set("updatedBy", StrOrNull(created_by));
  p.Set("delegatedManagedIdentityResourceId", Json::Null());
  Json out = Json::MakeObject();
  out.Set("id", Json::String(Id()));
  out.Set("name", Json::String(name));
  out.Set("type", Json::String(kRoleAssignmentType));
  out.Set("properties", std::move(p));
  return out;
}

StatusOr<RoleAssignmentRef> ParseRoleAssignmentId(std::string_view id, bool allow_no_name) {
  std::string lower = AsciiToLower(id);
  std::string infix = AsciiToLower(kInfix);
  size_t at = lower.rfind(infix);
  auto fail = [&](const std::string& why) {
    return InvalidArgumentError("not a role assignment ID: " + QuoteForMessage(id) + ": " + why +
                                "; expected {scope}/providers/Microsoft.Authorization/"
                                "roleAssignments/{guid}");
  };
  if (at == std::string::npos) return fail("it has no /providers/Microsoft.Authorization/...");
  std::string_view rest = id.substr(at + infix.size());
  RoleAssignmentRef ref;
  if (rest.empty() || rest == "/") {
    if (!allow_no_name) return fail("the assignment name is missing");
  } else {
    if (rest[0] != '/' || !IsGuid(rest.substr(1))) {
      return fail("the assignment name must be a GUID");
    }
    ref.name = std::string(rest.substr(1));
  }
  auto scope = ResourceId::Parse(id.substr(0, at));
  if (!scope.ok()) return fail("its scope is invalid: " + scope.status().message());
  ref.scope = *scope;
  return ref;
}

bool ScopeCovers(const ResourceId& assignment_scope, const ResourceId& target) {
  std::string a = AsciiToLower(assignment_scope.ToString());
  std::string t = AsciiToLower(target.ToString());
  return t == a || StartsWith(t, a + "/");
}

StatusOr<std::vector<RoleAssignment>> ListRoleAssignments(meta::Transaction& txn) {
  ASSIGN_OR_RETURN(std::vector<meta::Record> records, txn.ListRecords(kCollection));
  std::vector<RoleAssignment> out;
  for (const meta::Record& r : records) {
    ASSIGN_OR_RETURN(RoleAssignment a, FromRecord(r));
    out.push_back(std::move(a));
  }
  return out;
}

StatusOr<RoleAssignment> GetRoleAssignment(meta::Transaction& txn, const std::string& name) {
  auto r = txn.GetRecord(kCollection, name);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("RoleAssignmentNotFound: The role assignment '" + name +
                         "' is not found.");
  }
  if (!r.ok()) return r.status();
  return FromRecord(*r);
}

Status CreateRoleAssignment(meta::Transaction& txn, RoleAssignment& a) {
  if (!IsGuid(a.name)) {
    return InvalidArgumentError("InvalidRoleAssignmentId: The role assignment ID '" + a.name +
                                "' is not valid. The role assignment ID must be a GUID.");
  }
  if (FindRole(a.role_guid) == nullptr) {
    return InvalidArgumentError(
        "RoleDefinitionDoesNotExist: The specified role definition with "
        "ID '" +
        a.role_guid + "' does not exist.");
  }
  ASSIGN_OR_RETURN(std::vector<RoleAssignment> all, ListRoleAssignments(txn));
  for (const RoleAssignment& b : all) {
    bool same = b.scope == a.scope && EqualsIgnoreCase(b.principal_id, a.principal_id) &&
                EqualsIgnoreCase(b.role_guid, a.role_guid);
    if (EqualsIgnoreCase(b.name, a.name)) {
      if (same) {
        a = b;  // an identical PUT: nothing changes
        return Status::Ok();
      }
      return AlreadyExistsError("Conflict: the role assignment " + b.Id() +
                                " already exists with a different principal, role or scope; "
                                "role assignments cannot be updated (delete it first)");
    }
    if (same) {
      return AlreadyExistsError(
          "RoleAssignmentExists: The role assignment already exists. "
          "(the principal " +
          a.principal_id + " already holds " + b.Role().name + " at " + b.scope.ToString() +
          " as " + b.name + ")");
    }
  }
  Json v = Json::MakeObject();
  v.Set("scope", Json::String(a.scope.ToString()));
  v.Set("principalId", Json::String(AsciiToLower(a.principal_id)));
  v.Set("principalType", Json::String(a.principal_type));
  v.Set("roleDefinitionGuid", Json::String(FindRole(a.role_guid)->guid));
  v.Set("description", Json::String(a.description));
  v.Set("createdBy", Json::String(a.created_by));
  RETURN_IF_ERROR(txn.PutRecord(kCollection, a.name, v));
  ASSIGN_OR_RETURN(a, GetRoleAssignment(txn, a.name));
  return Status::Ok();
}

Status DeleteRoleAssignment(meta::Transaction& txn, const std::string& name) {
  RETURN_IF_ERROR(GetRoleAssignment(txn, name).status());
  return txn.DeleteRecord(kCollection, name);
}

StatusOr<int> DeleteRoleAssignmentsUnder(meta::Transaction& txn, const ResourceId& scope) {
  ASSIGN_OR_RETURN(std::vector<RoleAssignment> all, ListRoleAssignments(txn));
  int n = 0;
  for (const RoleAssignment& a : all) {
    if (!ScopeCovers(scope, a.scope)) continue;
    RETURN_IF_ERROR(txn.DeleteRecord(kCollection, a.name));
    ++n;
  }
  return n;
}

StatusOr<std::vector<const RoleDefinition*>> EffectiveRoles(meta::Transaction& txn,
                                                            const std::string& principal_id,
                                                            const ResourceId& scope) {
  std::vector<const RoleDefinition*> out;
  if (principal_id.empty()) return out;
  ASSIGN_OR_RETURN(std::vector<RoleAssignment> all, ListRoleAssignments(txn));
  for (const RoleAssignment& a : all) {
    if (EqualsIgnoreCase(a.principal_id, principal_id) && ScopeCovers(a.scope, scope)) {
      out.push_back(&a.Role());
    }
  }
  return out;
}

StatusOr<bool> HoldsRole(meta::Transaction& txn, const Principal& principal,
                         const std::vector<std::string>& role_names, const ResourceId& scope) {
  if (principal.is_owner) return true;
  ASSIGN_OR_RETURN(std::vector<const RoleDefinition*> roles,
                   EffectiveRoles(txn, principal.object_id, scope));
  for (const RoleDefinition* r : roles) {
    for (const std::string& n : role_names) {
      if (EqualsIgnoreCase(r->name, n)) return true;
    }
  }
  return false;
}

}  // namespace imagesmith::auth
