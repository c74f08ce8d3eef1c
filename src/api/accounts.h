// Sign-in and the directory for front ends: access tokens (`account
// get-access-token`), service principals with role assignments (`ad sp
// create-for-rbac`) and resolving an --assignee. The REST server's token
// endpoint is auth::HandleClientCredentials (auth/oauth.h).
//
// Each call runs its own transaction; thread-safe as Services is.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/services.h"
#include "auth/role_assignments.h"
#include "auth/token.h"
#include "base/statusor.h"

namespace imagesmith::api {

// A token for `caller` (the data directory's owner for local CLI use), valid
// for `lifetime_s` seconds. The signing key is made on first use.
StatusOr<auth::IssuedToken> AccessTokenFor(Services& services, const Caller& caller,
                                           int64_t lifetime_s = auth::kDefaultTokenLifetimeSeconds);

// A token for the service principal `app_id` after checking `secret`.
// Unauthenticated (AADSTS700016 unknown application, AADSTS7000215 wrong
// secret) otherwise; the secret is never part of a message.
StatusOr<auth::IssuedToken> ServicePrincipalToken(
    Services& services, const std::string& app_id, const std::string& secret,
    int64_t lifetime_s = auth::kDefaultTokenLifetimeSeconds);

// The caller an HTTP request's Authorization header names, for the REST
// server: auth::AuthenticateBearer in a read transaction, with the clock of
// services.env. Unauthenticated with AuthenticationFailed,
// InvalidAuthenticationToken or ExpiredAuthenticationToken (HTTP 401 through
// ToArmError). Load `key` once with auth::SigningKey::LoadOrCreate.
StatusOr<Caller> AuthenticateRequest(Services& services, const auth::SigningKey& key,
                                     std::string_view authorization_header);

struct CreatedServicePrincipal {
  std::string app_id;
  std::string display_name;
  std::string password;  // shown once; only its hash is stored
  std::string tenant;
  bool existed = false;  // an SP with that display name existed; its secret was reset
  std::vector<auth::RoleAssignment> assignments;
};

// `ad sp create-for-rbac`: a service principal named `display_name` (or the
// existing one of that name, whose secret is then replaced, as az does) and,
// when `role` is not empty, an assignment of `role` at each of `scopes`
// (an assignment that already exists is kept). All in one transaction:
// nothing is created when any part fails. Only the owner may create service
// principals (PermissionDenied otherwise); each assignment is authorized as
// the roleAssignments provider authorizes a PUT. InvalidArgument naming
// --role or --scopes for an unknown role, a bad scope or a role without
// scopes.
StatusOr<CreatedServicePrincipal> CreateForRbac(Services& services, const Caller& caller,
                                                const std::string& display_name,
                                                const std::string& role,
                                                const std::vector<std::string>& scopes);

// Service principals without their secrets (`ad sp list`): appId,
// displayName, id (the object ID), servicePrincipalType "Application".
StatusOr<Json> ListServicePrincipals(Services& services);
// `ad sp delete --id`: by appId or object ID. Its role assignments go with
// it. Only the owner may delete; NotFound naming `id`.
Status DeleteServicePrincipal(Services& services, const Caller& caller, const std::string& id);

// What `--assignee` names (auth::ResolveAssignee), in a read transaction.
StatusOr<auth::Principal> ResolveAssignee(Services& services, const std::string& assignee);

// The display name for a principal ID in lists: the owner "owner", a service
// principal's display name, an identity's name; "" when unknown.
StatusOr<std::string> PrincipalDisplayName(Services& services, const std::string& object_id);

}  // namespace imagesmith::api
