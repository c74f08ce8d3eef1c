#include "api/accounts.h"

#include "api/role_assignment_ops.h"
#include "auth/directory.h"
#include "base/random.h"
#include "base/strings.h"

namespace imagesmith::api {

StatusOr<auth::IssuedToken> AccessTokenFor(Services& services, const Caller& caller,
                                           int64_t lifetime_s) {
  ASSIGN_OR_RETURN(auth::SigningKey key, auth::SigningKey::LoadOrCreate(services.data_dir));
  auth::IssuedToken out;
  Status done = services.meta->Update([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(auth::DirectoryInfo dir, auth::EnsureDirectory(txn));
    auth::Principal p = caller.principal;
    if (p.is_owner && p.object_id.empty()) p = auth::OwnerPrincipal(dir);
    ASSIGN_OR_RETURN(
        out, auth::IssueToken(txn, key, p, services.env->NowMicros() / 1000000, lifetime_s));
    return Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

StatusOr<auth::IssuedToken> ServicePrincipalToken(Services& services, const std::string& app_id,
                                                  const std::string& secret, int64_t lifetime_s) {
  ASSIGN_OR_RETURN(auth::SigningKey key, auth::SigningKey::LoadOrCreate(services.data_dir));
  auth::IssuedToken out;
  Status done = services.meta->Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(auth::Principal p, auth::AuthenticateServicePrincipal(txn, app_id, secret));
    ASSIGN_OR_RETURN(
        out, auth::IssueToken(txn, key, p, services.env->NowMicros() / 1000000, lifetime_s));
    return Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

StatusOr<Caller> AuthenticateRequest(Services& services, const auth::SigningKey& key,
                                     std::string_view authorization_header) {
  Caller out;
  Status done = services.meta->Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(out.principal, auth::AuthenticateBearer(txn, key, authorization_header,
                                                             services.env->NowMicros() / 1000000));
    return Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

StatusOr<CreatedServicePrincipal> CreateForRbac(Services& services, const Caller& caller,
                                                const std::string& display_name,
                                                const std::string& role,
                                                const std::vector<std::string>& scopes) {
  if (!caller.principal.is_owner) {
    return PermissionDeniedError(
        "AuthorizationFailed: only the data directory's owner may "
        "create service principals");
  }
  const auth::RoleDefinition* def = nullptr;
  if (!role.empty()) {
    def = auth::FindRole(role);
    if (def == nullptr) {
      return InvalidArgumentError("--role: " + QuoteForMessage(role) +
                                  " is not a role (built-in roles: Owner, Contributor, Reader)");
    }
    if (scopes.empty()) {
      return InvalidArgumentError(
          "--scopes: is required with --role (the resource IDs the role "
          "applies to)");
    }
  } else if (!scopes.empty()) {
    return InvalidArgumentError("--role: is required with --scopes");
  }
  std::vector<ResourceId> scope_ids;
  for (const std::string& s : scopes) {
    auto id = ResourceId::Parse(s);
    if (!id.ok()) return id.status().WithContext("--scopes " + QuoteForMessage(s));
    scope_ids.push_back(*id);
  }
  CreatedServicePrincipal out;
  Status done = services.meta->Update([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(auth::DirectoryInfo dir, auth::EnsureDirectory(txn));
    out.tenant = dir.tenant_id;
    ASSIGN_OR_RETURN(std::vector<auth::ServicePrincipal> sps, auth::ListServicePrincipals(txn));
    auth::ServicePrincipal sp;
    for (const auth::ServicePrincipal& s : sps) {
      if (s.display_name == display_name) {
        sp = s;
        out.existed = true;
      }
    }
    if (out.existed) {
      ASSIGN_OR_RETURN(out.password, auth::ResetServicePrincipalSecret(txn, sp.app_id));
    } else {
      ASSIGN_OR_RETURN(auth::NewServicePrincipal created,
                       auth::CreateServicePrincipal(txn, display_name));
      sp = created.sp;
      out.password = created.secret;
    }
    out.app_id = sp.app_id;
    out.display_name = sp.display_name;
    for (const ResourceId& scope : scope_ids) {
      Json props = Json::MakeObject();
      props.Set("roleDefinitionId", Json::String(def->IdIn(scope.subscription())));
      props.Set("principalId", Json::String(sp.object_id));
      Json body = Json::MakeObject();
      body.Set("properties", std::move(props));
      auth::RoleAssignmentRef ref{scope, NewUuidV4()};
      auto a = PutRoleAssignment(txn, caller, ref, body);
      if (a.status().code() == StatusCode::kAlreadyExists &&
          StartsWith(a.status().message(), "RoleAssignmentExists")) {
        continue;  // az keeps an assignment that is already there
      }
      if (!a.ok()) return a.status().WithContext("--scopes " + scope.ToString());
      out.assignments.push_back(*a);
    }
    return Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

StatusOr<Json> ListServicePrincipals(Services& services) {
  Json out = Json::MakeArray();
  Status done = services.meta->Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(std::vector<auth::ServicePrincipal> sps, auth::ListServicePrincipals(txn));
    for (const auth::ServicePrincipal& sp : sps) {
      Json j = Json::MakeObject();
      j.Set("appId", Json::String(sp.app_id));
      j.Set("displayName", Json::String(sp.display_name));
      j.Set("id", Json::String(sp.object_id));
      j.Set("servicePrincipalType", Json::String("Application"));
      out.Append(std::move(j));
    }
    return Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

Status DeleteServicePrincipal(Services& services, const Caller& caller, const std::string& id) {
  if (!caller.principal.is_owner) {
    return PermissionDeniedError(
        "AuthorizationFailed: only the data directory's owner may "
        "delete service principals");
  }
  return services.meta->Update([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(std::vector<auth::ServicePrincipal> sps, auth::ListServicePrincipals(txn));
    for (const auth::ServicePrincipal& sp : sps) {
      if (!EqualsIgnoreCase(sp.app_id, id) && !EqualsIgnoreCase(sp.object_id, id)) continue;
      ASSIGN_OR_RETURN(std::vector<auth::RoleAssignment> all, auth::ListRoleAssignments(txn));
      for (const auth::RoleAssignment& a : all) {
        if (EqualsIgnoreCase(a.principal_id, sp.object_id)) {
          RETURN_IF_ERROR(auth::DeleteRoleAssignment(txn, a.name));
        }
      }
      return auth::DeleteServicePrincipal(txn, sp.app_id);
    }
    return NotFoundError("--id: no service principal has the appId or object ID " +
                         QuoteForMessage(id));
  });
}

StatusOr<auth::Principal> ResolveAssignee(Services& services, const std::string& assignee) {
  auth::Principal out;
  Status done = services.meta->Update([&](meta::Transaction& txn) -> Status {
    RETURN_IF_ERROR(auth::EnsureDirectory(txn).status());
    ASSIGN_OR_RETURN(out, auth::ResolveAssignee(txn, assignee));
    return Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

StatusOr<std::string> PrincipalDisplayName(Services& services, const std::string& object_id) {
  std::string out;
  Status done = services.meta->Read([&](meta::Transaction& txn) -> Status {
    auto p = auth::FindPrincipal(txn, object_id);
    if (!p.ok()) return p.status().code() == StatusCode::kNotFound ? Status::Ok() : p.status();
    if (p->kind == auth::PrincipalKind::kServicePrincipal) {
      ASSIGN_OR_RETURN(auth::ServicePrincipal sp, auth::GetServicePrincipal(txn, p->name));
      out = sp.display_name;
    } else if (p->kind == auth::PrincipalKind::kManagedIdentity) {
      out = Basename(p->name);
    } else {
      out = p->name;
    }
    return Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

}  // namespace imagesmith::api
