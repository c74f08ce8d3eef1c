// Microsoft.Authorization/roleAssignments: records kept by
// auth/role_assignments.h, addressed by scope and name.
#include "api/arm_error.h"
#include "api/auth_providers.h"
#include "api/role_assignment_ops.h"
#include "auth/authorize.h"
#include "auth/directory.h"
#include "auth/role_assignments.h"
#include "base/strings.h"

namespace imagesmith::api {
namespace {

constexpr const char* kType = auth::kRoleAssignmentType;

// The scope and name a request addresses: Request::extension_* or, for a
// group-scope assignment written as an ordinary resource ID, the ID itself.
StatusOr<auth::RoleAssignmentRef> RefOf(const Request& request) {
  auth::RoleAssignmentRef ref;
  if (!request.extension_type.empty()) {
    ref.scope = request.id;
    ref.name = request.extension_name;
  } else if (request.id.IsType(kType)) {
    ref.scope = request.id.Parent();
    ref.name = request.id.name();
  } else {
    return InvalidArgumentError("not a role assignment request: " + request.id.ToString());
  }
  if (!IsGuid(ref.name)) {
    return ArmStatus(StatusCode::kInvalidArgument, "InvalidRoleAssignmentId",
                     "The role assignment ID '" + ref.name +
                         "' is not valid. The role assignment ID must be a GUID.");
  }
  return ref;
}

Response One(int status, const auth::RoleAssignment& a) {
  Response out;
  out.http_status = status;
  out.body = a.ToJson();
  return out;
}

// The assignment named in `ref`, which must be at ref.scope.
StatusOr<auth::RoleAssignment> Find(meta::Transaction& txn, const auth::RoleAssignmentRef& ref) {
  auto a = auth::GetRoleAssignment(txn, ref.name);
  if (a.ok() && !(a->scope == ref.scope)) {
    return NotFoundError("RoleAssignmentNotFound: The role assignment '" + ref.name +
                         "' is not found at scope '" + ref.scope.ToString() + "'.");
  }
  return a;
}

class RoleAssignmentProvider final : public Provider {
 public:
  std::string_view Type() const override { return kType; }
  std::vector<std::string> ApiVersions() const override {
    return {"2015-07-01", "2018-01-01-preview", "2020-04-01-preview", "2020-10-01-preview",
            "2022-04-01"};
  }

  StatusOr<Response> Put(Services& services, const Request& request) override {
    ASSIGN_OR_RETURN(auth::RoleAssignmentRef ref, RefOf(request));
    Response out;
    Status done = services.meta->Update([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(auth::RoleAssignment a,
                       PutRoleAssignment(txn, request.caller, ref, request.body));
      out = One(201, a);
      return Status::Ok();
    });
    if (!done.ok()) return done;
    return out;
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    ASSIGN_OR_RETURN(auth::RoleAssignmentRef ref, RefOf(request));
    Response out;
    Status done = services.meta->Read([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(
          auth::Authorize(txn, request.caller.principal, std::string(kType) + "/read", ref.scope));
      ASSIGN_OR_RETURN(auth::RoleAssignment a, Find(txn, ref));
      out = One(200, a);
      return Status::Ok();
    });
    if (!done.ok()) return done;
    return out;
  }

  StatusOr<Response> List(Services& services, const Request& request) override {
    Response out;
    Status done = services.meta->Read([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(
          auth::Authorize(txn, request.caller.principal, std::string(kType) + "/read", request.id));
      ASSIGN_OR_RETURN(std::vector<auth::RoleAssignment> all, auth::ListRoleAssignments(txn));
      Json value = Json::MakeArray();
      for (const auth::RoleAssignment& a : all) {
        if (auth::ScopeCovers(a.scope, request.id) || auth::ScopeCovers(request.id, a.scope)) {
          value.Append(a.ToJson());
        }
      }
      out.body = Json::MakeObject();
      out.body.Set("value", std::move(value));
      return Status::Ok();
    });
    if (!done.ok()) return done;
    return out;
  }

  StatusOr<Response> Delete(Services& services, const Request& request) override {
    ASSIGN_OR_RETURN(auth::RoleAssignmentRef ref, RefOf(request));
    Response out;
    Status done = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(auth::Authorize(txn, request.caller.principal, std::string(kType) + "/delete",
                                      ref.scope));
      auto a = Find(txn, ref);
      if (a.status().code() == StatusCode::kNotFound) {
        out.http_status = 204;
        return Status::Ok();
      }
      if (!a.ok()) return a.status();
      RETURN_IF_ERROR(auth::DeleteRoleAssignment(txn, ref.name));
      out = One(200, *a);
      return Status::Ok();
    });
    if (!done.ok()) return done;
    return out;
  }
};

}  // namespace

StatusOr<auth::RoleAssignment> PutRoleAssignment(meta::Transaction& txn, const Caller& caller,
                                                 const auth::RoleAssignmentRef& ref,
                                                 const Json& body) {
  // The scope must exist, as ARM checks it.
  auto exists = txn.Exists(ref.scope);
  if (!exists.ok()) return exists.status();
  if (!*exists) {
    if (ref.scope.kind() == ResourceId::Kind::kResourceGroup) {
      return ArmStatus(StatusCode::kNotFound, "ResourceGroupNotFound",
                       "Resource group '" + ref.scope.resource_group() + "' could not be found.");
    }
    return ArmStatus(
        StatusCode::kNotFound, "ResourceNotFound",
        "the scope " + ref.scope.ToString() + " of the role assignment does not exist");
  }
  RETURN_IF_ERROR(auth::Authorize(txn, caller.principal, std::string(kType) + "/write", ref.scope));
  const Json* props = body.is_object() ? body.Find("properties") : nullptr;
  if (props == nullptr || !props->is_object()) {
    return InvalidArgumentError(
        "properties: is required and must be an object with "
        "roleDefinitionId and principalId");
  }
  auth::RoleAssignment a;
  a.name = ref.name;
  a.scope = ref.scope;
  std::string role_id;
  for (const JsonMember& m : props->object_items()) {
    auto str = [&]() -> StatusOr<std::string> {
      if (!m.value.is_string()) {
        return InvalidArgumentError("properties." + m.key + ": must be a string");
      }
      return m.value.string_value();
    };
    if (m.key == "roleDefinitionId") {
      ASSIGN_OR_RETURN(role_id, str());
    } else if (m.key == "principalId") {
      ASSIGN_OR_RETURN(a.principal_id, str());
    } else if (m.key == "description") {
      if (!m.value.is_null()) {
        ASSIGN_OR_RETURN(a.description, str());
      }
    } else if (m.key == "principalType" || m.key == "scope" || m.key == "condition" ||
               m.key == "conditionVersion" || m.key == "delegatedManagedIdentityResourceId" ||
               m.key == "createdOn" || m.key == "updatedOn" || m.key == "createdBy" ||
               m.key == "updatedBy" || m.key == "canDelegate") {
      if (m.key == "condition" && !m.value.is_null()) {
        return InvalidArgumentError("properties.condition: conditions (ABAC) are not supported");
      }
    } else {
      return InvalidArgumentError("properties." + m.key +
                                  ": is not a property of a role assignment (roleDefinitionId, "
                                  "principalId, principalType, description)");
    }
  }
  if (role_id.empty()) return InvalidArgumentError("properties.roleDefinitionId: is required");
  if (a.principal_id.empty()) return InvalidArgumentError("properties.principalId: is required");
  const auth::RoleDefinition* role = auth::FindRole(role_id);
  if (role == nullptr) {
    return ArmStatus(StatusCode::kInvalidArgument, "RoleDefinitionDoesNotExist",
                     "The specified role definition with ID '" + role_id +
                         "' does not exist (built-in roles: Owner, Contributor, Reader).");
  }
  a.role_guid = role->guid;
  auto principal = auth::FindPrincipal(txn, a.principal_id);
  if (!principal.ok()) {
    if (principal.status().code() == StatusCode::kNotFound) {
      return ArmStatus(StatusCode::kInvalidArgument, "PrincipalNotFound",
                       "Principal " + a.principal_id + " does not exist in the directory " +
                           "(create it with 'imagesmith ad sp create-for-rbac' or 'imagesmith "
                           "identity create').");
    }
    return principal.status();
  }
  a.principal_id = AsciiToLower(principal->object_id);
  a.principal_type = auth::PrincipalTypeName(principal->kind);
  a.created_by = caller.principal.object_id;
  RETURN_IF_ERROR(auth::CreateRoleAssignment(txn, a));
  return a;
}

std::unique_ptr<Provider> NewRoleAssignmentProvider() {
  return std::make_unique<RoleAssignmentProvider>();
}

namespace {

// Microsoft.Authorization/permissions at a scope: what the caller may do
// there, as Azure's "Permissions - List For Resource" answers it: one entry
// per role the caller holds at the scope or above.
class PermissionsProvider final : public Provider {
 public:
  std::string_view Type() const override { return "Microsoft.Authorization/permissions"; }
  std::vector<std::string> ApiVersions() const override {
    return {"2015-07-01", "2018-01-01-preview", "2022-04-01"};
  }

  StatusOr<Response> List(Services& s, const Request& req) override {
    auto entry = [](const std::vector<std::string>& actions,
                    const std::vector<std::string>& not_actions) {
      Json e = Json::MakeObject();
      Json a = Json::MakeArray(), n = Json::MakeArray();
      for (const std::string& x : actions) a.Append(Json::String(x));
      for (const std::string& x : not_actions) n.Append(Json::String(x));
      e.Set("actions", std::move(a));
      e.Set("notActions", std::move(n));
      e.Set("dataActions", Json::MakeArray());
      e.Set("notDataActions", Json::MakeArray());
      return e;
    };
    Json value = Json::MakeArray();
    const auth::Principal& p = req.caller.principal;
    if (p.is_owner) {
      value.Append(entry({"*"}, {}));
    } else {
      RETURN_IF_ERROR(s.meta->Read([&](meta::Transaction& txn) {
        ASSIGN_OR_RETURN(auto roles, auth::EffectiveRoles(txn, p.object_id, req.id));
        for (const auth::RoleDefinition* role : roles) {
          value.Append(entry(role->actions, role->not_actions));
        }
        return Status::Ok();
      }));
    }
    Response out;
    out.body = Json::MakeObject();
    out.body.Set("value", std::move(value));
    return out;
  }
};

}  // namespace

std::unique_ptr<Provider> NewPermissionsProvider() {
  return std::make_unique<PermissionsProvider>();
}

}  // namespace imagesmith::api
