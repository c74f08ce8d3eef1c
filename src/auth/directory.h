// The directory: who exists. One tenant per data directory, its owner (a
// user), service principals (applications with a client secret, created by
// `ad sp create-for-rbac`) and user-assigned managed identities
// (Microsoft.ManagedIdentity/userAssignedIdentities resources, whose
// principalId is their object ID).
//
// The tenant and owner are the record "directory"/"tenant"; service
// principals are records in the collection "servicePrincipals" keyed by
// appId, holding only a salted PBKDF2 hash of the secret (secret.h). Managed
// identities are ordinary resources (their provider is api/identity_provider).
//
// Functions run inside the caller's transaction; thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "auth/principal.h"
#include "base/resource_id.h"
#include "base/statusor.h"
#include "meta/meta_store.h"

namespace imagesmith::auth {

inline constexpr const char* kIdentityType = "Microsoft.ManagedIdentity/userAssignedIdentities";

struct DirectoryInfo {
  std::string tenant_id;        // GUID
  std::string owner_object_id;  // GUID of the data directory's owner
};

// Creates the tenant and the owner on first use (requires a write
// transaction then) and returns them.
StatusOr<DirectoryInfo> EnsureDirectory(meta::Transaction& txn);
// The directory, or NotFound when EnsureDirectory never ran.
StatusOr<DirectoryInfo> ReadDirectory(meta::Transaction& txn);

// The owner as a principal (is_owner set).
Principal OwnerPrincipal(const DirectoryInfo& dir);

struct ServicePrincipal {
  std::string app_id;     // GUID; the client_id / --username
  std::string object_id;  // GUID; role assignments name it as principalId
  std::string display_name;
  std::string secret_hash;  // secret.h's stored form; never the secret
  int64_t created_us = 0;

  Principal ToPrincipal() const;
};

// A new service principal with a new client secret. Returns it and the
// secret in clear text; the caller shows the secret once and forgets it.
// InvalidArgument when `display_name` is empty or longer than 120
// characters.
struct NewServicePrincipal {
  ServicePrincipal sp;
  std::string secret;
};
StatusOr<NewServicePrincipal> CreateServicePrincipal(meta::Transaction& txn,
                                                     const std::string& display_name);
// Replaces the secret of an existing service principal; returns the new one.
StatusOr<std::string> ResetServicePrincipalSecret(meta::Transaction& txn,
                                                  const std::string& app_id);
// NotFound naming the appId.
StatusOr<ServicePrincipal> GetServicePrincipal(meta::Transaction& txn, const std::string& app_id);
StatusOr<std::vector<ServicePrincipal>> ListServicePrincipals(meta::Transaction& txn);
Status DeleteServicePrincipal(meta::Transaction& txn, const std::string& app_id);

// Checks an application's client secret. Unauthenticated, with Entra ID's
// AADSTS code in the message, when the application does not exist
// ("AADSTS700016: Application with identifier '...' was not found") or the
// secret is wrong ("AADSTS7000215: Invalid client secret provided..."). The
// secret never appears in a message.
StatusOr<Principal> AuthenticateServicePrincipal(meta::Transaction& txn, const std::string& app_id,
                                                 const std::string& secret);

// First-party applications: service principals every directory has, with
// fixed IDs and no client secret (nobody signs in as them). imagesmith acts
// as one of them when it does work for a resource provider, as Azure's
// first-party apps do; role assignments name them like any principal.
//
// The Service Fabric managed cluster resource provider ("SFMC First Party
// AAD App"): it reads the image a node type boots (seed 000), so it needs
// Reader on that image. appId is Azure's "Azure Service Fabric Resource
// Provider"; the object ID is the seed's example SFMC SPID.
inline constexpr const char* kServiceFabricRpAppId = "74cb6831-0dbc-4be1-8206-fcf6d5c0a6fc";
inline constexpr const char* kServiceFabricRpObjectId = "fbc587f2-66f5-4459-a027-bcd908b9d278";
inline constexpr const char* kServiceFabricRpName = "Azure Service Fabric Resource Provider";
// Every first-party service principal (no secret_hash).
const std::vector<ServicePrincipal>& FirstPartyServicePrincipals();

// The principal whose object ID is `object_id`: the owner, a service
// principal (first-party ones included) or a managed identity. NotFound with the ARM code
// PrincipalNotFound otherwise.
StatusOr<Principal> FindPrincipal(meta::Transaction& txn, const std::string& object_id);

// What `az role assignment create --assignee` accepts: an object ID, a
// service principal's appId or display name, a managed identity's resource
// ID, or "owner". NotFound (PrincipalNotFound) naming `assignee` otherwise;
// InvalidArgument when a display name is shared by several principals.
StatusOr<Principal> ResolveAssignee(meta::Transaction& txn, const std::string& assignee);

// The principal a template's `identity` names (the build acts as it).
// NotFound naming the ID when the identity resource does not exist.
StatusOr<Principal> PrincipalForIdentity(meta::Transaction& txn, const ResourceId& identity);

// "User" or "ServicePrincipal" (managed identities are service principals),
// as role assignments report principalType.
std::string PrincipalTypeName(PrincipalKind kind);

}  // namespace imagesmith::auth
