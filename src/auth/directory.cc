#include "auth/directory.h"

#include "auth/secret.h"
#include "base/random.h"
#include "base/strings.h"

namespace imagesmith::auth {
namespace {

constexpr const char* kDirectory = "directory";
constexpr const char* kTenantKey = "tenant";
constexpr const char* kServicePrincipals = "servicePrincipals";

Status PrincipalNotFound(const std::string& what) {
  return NotFoundError("PrincipalNotFound: Principal " + what +
                       " does not exist in the directory. Create it with 'imagesmith ad sp "
                       "create-for-rbac' or 'imagesmith identity create'.");
}

std::string Str(const Json& o, std::string_view key) {
  const Json* v = o.Find(key);
  return v != nullptr && v->is_string() ? v->string_value() : std::string();
}

ServicePrincipal FromRecord(const meta::Record& r) {
  ServicePrincipal sp;
  sp.app_id = r.key;
  sp.object_id = Str(r.value, "objectId");
  sp.display_name = Str(r.value, "displayName");
  sp.secret_hash = Str(r.value, "secretHash");
  sp.created_us = r.created_us;
  return sp;
}

Status Store(meta::Transaction& txn, const ServicePrincipal& sp) {
  Json v = Json::MakeObject();
  v.Set("objectId", Json::String(sp.object_id));
  v.Set("displayName", Json::String(sp.display_name));
  v.Set("secretHash", Json::String(sp.secret_hash));
  return txn.PutRecord(kServicePrincipals, sp.app_id, v);
}

// Every managed identity in every subscription.
StatusOr<std::vector<meta::Resource>> AllIdentities(meta::Transaction& txn) {
  std::vector<meta::Resource> out;
  ASSIGN_OR_RETURN(std::vector<meta::Resource> subs, txn.ListSubscriptions());
  for (const meta::Resource& sub : subs) {
    ASSIGN_OR_RETURN(std::vector<meta::Resource> ids, txn.ListByType(sub.id, kIdentityType));
    for (meta::Resource& r : ids) out.push_back(std::move(r));
  }
  return out;
}

Principal IdentityPrincipal(const meta::Resource& r) {
  Principal p;
  p.kind = PrincipalKind::kManagedIdentity;
  p.object_id = Str(r.properties, "principalId");
  p.name = r.id.ToString();
  return p;
}

}  // namespace

StatusOr<DirectoryInfo> ReadDirectory(meta::Transaction& txn) {
  ASSIGN_OR_RETURN(meta::Record r, txn.GetRecord(kDirectory, kTenantKey));
  DirectoryInfo d{Str(r.value, "tenantId"), Str(r.value, "ownerObjectId")};
  if (!IsGuid(d.tenant_id) || !IsGuid(d.owner_object_id)) {
    return DataLossError(
        "the directory record in the metadata database is damaged (tenantId or "
        "ownerObjectId is not a GUID)");
  }
  return d;
}

StatusOr<DirectoryInfo> EnsureDirectory(meta::Transaction& txn) {
  auto existing = ReadDirectory(txn);
  if (existing.ok() || existing.status().code() != StatusCode::kNotFound) return existing;
  DirectoryInfo d{NewUuidV4(), NewUuidV4()};
  Json v = Json::MakeObject();
  v.Set("tenantId", Json::String(d.tenant_id));
  v.Set("ownerObjectId", Json::String(d.owner_object_id));
  RETURN_IF_ERROR(txn.PutRecord(kDirectory, kTenantKey, v));
  return d;
}

Principal OwnerPrincipal(const DirectoryInfo& dir) {
  Principal p;
  p.kind = PrincipalKind::kUser;
  p.object_id = dir.owner_object_id;
  p.name = "owner";
  p.is_owner = true;
  return p;
}

Principal ServicePrincipal::ToPrincipal() const {
  Principal p;
  p.kind = PrincipalKind::kServicePrincipal;
  p.object_id = object_id;
  p.name = app_id;
  return p;
}

StatusOr<NewServicePrincipal> CreateServicePrincipal(meta::Transaction& txn,
                                                     const std::string& display_name) {
  if (display_name.empty() || display_name.size() > 120) {
    return InvalidArgumentError(
        "--name: a service principal's display name must be 1-120 "
        "characters long");
  }
  NewServicePrincipal out;
  out.sp.app_id = NewUuidV4();
  out.sp.object_id = NewUuidV4();
  out.sp.display_name = display_name;
  ASSIGN_OR_RETURN(out.secret, NewClientSecret());
  ASSIGN_OR_RETURN(out.sp.secret_hash, HashSecret(out.secret));
  RETURN_IF_ERROR(Store(txn, out.sp));
  return out;
}

StatusOr<std::string> ResetServicePrincipalSecret(meta::Transaction& txn,
                                                  const std::string& app_id) {
  ASSIGN_OR_RETURN(ServicePrincipal sp, GetServicePrincipal(txn, app_id));
  ASSIGN_OR_RETURN(std::string secret, NewClientSecret());
  ASSIGN_OR_RETURN(sp.secret_hash, HashSecret(secret));
  RETURN_IF_ERROR(Store(txn, sp));
  return secret;
}

StatusOr<ServicePrincipal> GetServicePrincipal(meta::Transaction& txn, const std::string& app_id) {
  auto r = txn.GetRecord(kServicePrincipals, app_id);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("service principal with appId " + QuoteForMessage(app_id) +
                         " was not found");
  }
  if (!r.ok()) return r.status();
  return FromRecord(*r);
}

StatusOr<std::vector<ServicePrincipal>> ListServicePrincipals(meta::Transaction& txn) {
  ASSIGN_OR_RETURN(std::vector<meta::Record> records, txn.ListRecords(kServicePrincipals));
  std::vector<ServicePrincipal> out;
  for (const meta::Record& r : records) out.push_back(FromRecord(r));
  return out;
}

Status DeleteServicePrincipal(meta::Transaction& txn, const std::string& app_id) {
  RETURN_IF_ERROR(GetServicePrincipal(txn, app_id).status());
  return txn.DeleteRecord(kServicePrincipals, app_id);
}

StatusOr<Principal> AuthenticateServicePrincipal(meta::Transaction& txn, const std::string& app_id,
                                                 const std::string& secret) {
  auto sp = txn.GetRecord(kServicePrincipals, app_id);
  if (sp.status().code() == StatusCode::kNotFound) {
    auto dir = ReadDirectory(txn);
    return Status(StatusCode::kUnauthenticated, "AADSTS700016: Application with identifier " +
                                                    QuoteForMessage(app_id) +
                                                    " was not found in the directory '" +
                                                    (dir.ok() ? dir->tenant_id : "") + "'.");
  }
  if (!sp.ok()) return sp.status();
  ServicePrincipal s = FromRecord(*sp);
  ASSIGN_OR_RETURN(bool match, VerifySecret(secret, s.secret_hash));
  if (!match) {
    return Status(StatusCode::kUnauthenticated,
                  "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                  "in the request is the client secret value, not the client secret ID, for a "
                  "secret added to app '" +
                      s.app_id + "'.");
  }
  return s.ToPrincipal();
}

const std::vector<ServicePrincipal>& FirstPartyServicePrincipals() {
  static const std::vector<ServicePrincipal> kApps = [] {
    ServicePrincipal sf;
    sf.app_id = kServiceFabricRpAppId;
    sf.object_id = kServiceFabricRpObjectId;
    sf.display_name = kServiceFabricRpName;
    return std::vector<ServicePrincipal>{sf};
  }();
  return kApps;
}

StatusOr<Principal> FindPrincipal(meta::Transaction& txn, const std::string& object_id) {
  auto dir = ReadDirectory(txn);
  if (dir.ok() && EqualsIgnoreCase(dir->owner_object_id, object_id)) return OwnerPrincipal(*dir);
  for (const ServicePrincipal& sp : FirstPartyServicePrincipals()) {
    if (EqualsIgnoreCase(sp.object_id, object_id)) return sp.ToPrincipal();
  }
  ASSIGN_OR_RETURN(std::vector<ServicePrincipal> sps, ListServicePrincipals(txn));
  for (const ServicePrincipal& sp : sps) {
    if (EqualsIgnoreCase(sp.object_id, object_id)) return sp.ToPrincipal();
  }
  ASSIGN_OR_RETURN(std::vector<meta::Resource> ids, AllIdentities(txn));
  for (const meta::Resource& r : ids) {
    if (EqualsIgnoreCase(Str(r.properties, "principalId"), object_id)) return IdentityPrincipal(r);
  }
  return PrincipalNotFound("'" + object_id + "'");
}

StatusOr<Principal> ResolveAssignee(meta::Transaction& txn, const std::string& assignee) {
  if (assignee.empty()) return InvalidArgumentError("--assignee must not be empty");
  auto dir = ReadDirectory(txn);
  if (dir.ok() && EqualsIgnoreCase(assignee, "owner")) return OwnerPrincipal(*dir);
  if (StartsWith(assignee, "/")) {
    auto id = ResourceId::Parse(assignee);
    if (!id.ok()) return id.status().WithContext("--assignee");
    return PrincipalForIdentity(txn, *id);
  }
  if (IsGuid(assignee)) {
    auto by_oid = FindPrincipal(txn, assignee);
    if (by_oid.ok() || by_oid.status().code() != StatusCode::kNotFound) return by_oid;
  }
  ASSIGN_OR_RETURN(std::vector<ServicePrincipal> sps, ListServicePrincipals(txn));
  for (const ServicePrincipal& sp : FirstPartyServicePrincipals()) sps.push_back(sp);
  std::vector<const ServicePrincipal*> named;
  for (const ServicePrincipal& sp : sps) {
    if (EqualsIgnoreCase(sp.app_id, assignee)) return sp.ToPrincipal();
    if (sp.display_name == assignee) named.push_back(&sp);
  }
  if (named.size() == 1) return named[0]->ToPrincipal();
  if (named.size() > 1) {
    return InvalidArgumentError("--assignee: " + std::to_string(named.size()) +
                                " service principals are named " + QuoteForMessage(assignee) +
                                "; give the appId or object ID instead");
  }
  return PrincipalNotFound(QuoteForMessage(assignee));
}

StatusOr<Principal> PrincipalForIdentity(meta::Transaction& txn, const ResourceId& identity) {
  if (!identity.IsType(kIdentityType)) {
    return InvalidArgumentError(identity.ToString() + " is not a " + kIdentityType +
                                " resource ID");
  }
  auto r = txn.Get(identity);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("PrincipalNotFound: the managed identity " + identity.ToString() +
                         " does not exist; create it with 'imagesmith identity create'");
  }
  if (!r.ok()) return r.status();
  return IdentityPrincipal(*r);
}

std::string PrincipalTypeName(PrincipalKind kind) {
  return kind == PrincipalKind::kUser ? "User" : "ServicePrincipal";
}

}  // namespace imagesmith::auth
