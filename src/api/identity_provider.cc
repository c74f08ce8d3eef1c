// Microsoft.ManagedIdentity/userAssignedIdentities: resources in a group
// whose properties carry the identity's principal (auth/directory.h).
#include <cctype>

#include "api/arm_error.h"
#include "api/auth_providers.h"
#include "api/etag.h"
#include "auth/authorize.h"
#include "auth/directory.h"
#include "auth/role_assignments.h"
#include "base/random.h"
#include "base/region.h"
#include "base/strings.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

constexpr const char* kType = auth::kIdentityType;

Status ValidateIdentityId(const ResourceId& id) {
  if (id.kind() != ResourceId::Kind::kResource || id.types().size() != 1) {
    return ArmStatus(StatusCode::kInvalidArgument, "InvalidResourceName",
                     id.ToString() +
                         " is not a user-assigned identity ID (expected /subscriptions/"
                         "{sub}/resourceGroups/{group}/providers/" +
                         std::string(kType) + "/{name})");
  }
  const std::string& name = id.name();
  bool ok =
      name.size() >= 3 && name.size() <= 128 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  if (!ok) {
    return ArmStatus(StatusCode::kInvalidArgument, "InvalidResourceName",
                     "the identity name " + QuoteForMessage(name) +
                         " must be 3-128 letters, digits, hyphens and underscores, starting with "
                         "a letter or digit");
  }
  return Status::Ok();
}

Status NotFound(const ResourceId& id) {
  return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                   "The Resource '" + std::string(kType) + "/" + id.name() +
                       "' under resource group '" + id.resource_group() + "' was not found.");
}

// `id`'s resource group (or `id` itself when it is a group) must exist.
Status GroupMustExist(meta::Transaction& txn, const ResourceId& id) {
  ResourceId group = ResourceId::ForResourceGroup(id.subscription(), id.resource_group());
  auto exists = txn.Exists(group);
  if (!exists.ok()) return exists.status();
  if (!*exists) {
    return ArmStatus(StatusCode::kNotFound, "ResourceGroupNotFound",
                     "Resource group '" + id.resource_group() +
                         "' could not be found; create it with 'imagesmith group create -n " +
                         id.resource_group() + " -l <region>'");
  }
  return Status::Ok();
}

Json Body(const meta::Resource& r) {
  Json j = r.ToJson();
  j.Set("etag", Json::String(EtagOf(r)));
  return j;
}

Response One(int status, const meta::Resource& r) {
  Response out;
  out.http_status = status;
  out.body = Body(r);
  out.etag = EtagOf(r);
  return out;
}

// The location and tags of a PUT body, checked member by member.
struct PutBody {
  std::string location;
  Json tags = Json::MakeObject();
};

StatusOr<PutBody> ParseBody(const Json& body) {
  auto bad = [](const std::string& target, const std::string& why) {
    return InvalidArgumentError(target + ": " + why);
  };
  if (!body.is_object())
    return bad("body", "must be a JSON object, not " + std::string(body.KindDescription()));
  PutBody out;
  for (const JsonMember& m : body.object_items()) {
    if (m.key == "location") {
      if (!m.value.is_string()) return bad("location", "must be a string");
      auto region = Region::Parse(m.value.string_value());
      if (!region.ok()) return bad("location", region.status().message());
      out.location = m.value.string_value();
    } else if (m.key == "tags") {
      if (!m.value.is_object()) return bad("tags", "must be an object of strings");
      for (const JsonMember& t : m.value.object_items()) {
        if (!t.value.is_string()) return bad("tags." + t.key, "must be a string");
      }
      out.tags = m.value;
    } else if (m.key == "properties") {
      if (!m.value.is_object()) return bad("properties", "must be an object");
      for (const JsonMember& p : m.value.object_items()) {
        if (p.key != "tenantId" && p.key != "principalId" && p.key != "clientId" &&
            p.key != "isolationScope") {
          return bad("properties." + p.key,
                     "is not a property of a user-assigned identity (tenantId, principalId and "
                     "clientId are read-only)");
        }
      }
    } else if (m.key != "id" && m.key != "name" && m.key != "type" && m.key != "etag" &&
               m.key != "systemData") {
      return bad(m.key,
                 "is not a member of a user-assigned identity (location, tags, "
                 "properties)");
    }
  }
  if (out.location.empty()) return bad("location", "is required");
  return out;
}

class IdentityProvider final : public Provider {
 public:
  std::string_view Type() const override { return kType; }
  std::vector<std::string> ApiVersions() const override {
    return {"2018-11-30", "2023-01-31", "2023-07-31-preview"};
  }

  StatusOr<Response> Put(Services& services, const Request& request) override {
    RETURN_IF_ERROR(ValidateIdentityId(request.id));
    ASSIGN_OR_RETURN(PutBody body, ParseBody(request.body));
    Response out;
    Status done = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(auth::Authorize(txn, request.caller.principal, std::string(kType) + "/write",
                                      request.id));
      RETURN_IF_ERROR(GroupMustExist(txn, request.id));
      auto current = txn.Get(request.id);
      if (!current.ok() && current.status().code() != StatusCode::kNotFound)
        return current.status();
      RETURN_IF_ERROR(CheckPreconditions(request, current.ok() ? &*current : nullptr));
      if (current.ok()) {
        if (!EqualsIgnoreCase(current->location, body.location)) {
          return ArmStatus(StatusCode::kFailedPrecondition, "Conflict",
                           "the identity " + request.id.ToString() + " is in " + current->location +
                               "; its location cannot change to " + body.location);
        }
        current->tags = body.tags;
        RETURN_IF_ERROR(txn.Replace(*current, current->generation));
        out = One(200, *current);
        return Status::Ok();
      }
      ASSIGN_OR_RETURN(auth::DirectoryInfo dir, auth::EnsureDirectory(txn));
      meta::Resource r{request.id, body.location, body.tags, Json::MakeObject(), 0, 0, 0};
      r.properties.Set("tenantId", Json::String(dir.tenant_id));
      r.properties.Set("principalId", Json::String(NewUuidV4()));
      r.properties.Set("clientId", Json::String(NewUuidV4()));
      RETURN_IF_ERROR(txn.Create(r));
      out = One(201, r);
      return Status::Ok();
    });
    if (!done.ok()) return done;
    return out;
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    RETURN_IF_ERROR(ValidateIdentityId(request.id));
    Response out;
    Status done = services.meta->Read([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(
          auth::Authorize(txn, request.caller.principal, std::string(kType) + "/read", request.id));
      auto r = txn.Get(request.id);
      if (r.status().code() == StatusCode::kNotFound) return NotFound(request.id);
      if (!r.ok()) return r.status();
      out = One(200, *r);
      return Status::Ok();
    });
    if (!done.ok()) return done;
    return out;
  }

  StatusOr<Response> List(Services& services, const Request& request) override {
    if (request.id.kind() == ResourceId::Kind::kResource) {
      return InvalidArgumentError(
          "identities are listed in a resource group or a subscription, "
          "not under " +
          request.id.ToString());
    }
    Response out;
    Status done = services.meta->Read([&](meta::Transaction& txn) -> Status {
      std::string action = std::string(kType) + "/read";
      Status at_scope = auth::Authorize(txn, request.caller.principal, action, request.id);
      if (request.id.kind() == ResourceId::Kind::kResourceGroup) {
        RETURN_IF_ERROR(GroupMustExist(txn, request.id));
      }
      ASSIGN_OR_RETURN(std::vector<meta::Resource> all, txn.ListByType(request.id, kType));
      // As ARM does: a caller who may not read the whole scope sees the
      // identities it may read, and is refused only when that is none.
      Json value = Json::MakeArray();
      for (const meta::Resource& r : all) {
        if (at_scope.ok() || auth::Authorize(txn, request.caller.principal, action, r.id).ok()) {
          value.Append(Body(r));
        }
      }
      if (!at_scope.ok() && value.array_items().empty()) return at_scope;
      out.body = Json::MakeObject();
      out.body.Set("value", std::move(value));
      return Status::Ok();
    });
    if (!done.ok()) return done;
    return out;
  }

  StatusOr<Response> Delete(Services& services, const Request& request) override {
    RETURN_IF_ERROR(ValidateIdentityId(request.id));
    Response out;
    Status done = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(auth::Authorize(txn, request.caller.principal, std::string(kType) + "/delete",
                                      request.id));
      auto current = txn.Get(request.id);
      if (!current.ok() && current.status().code() != StatusCode::kNotFound)
        return current.status();
      RETURN_IF_ERROR(CheckPreconditions(request, current.ok() ? &*current : nullptr));
      out.http_status = current.ok() ? 200 : 204;
      if (current.ok()) {
        RETURN_IF_ERROR(txn.Delete(request.id));
        // Grants on the identity itself go with it (not those it holds).
        RETURN_IF_ERROR(auth::DeleteRoleAssignmentsUnder(txn, request.id).status());
      }
      return Status::Ok();
    });
    if (!done.ok()) return done;
    return out;
  }
};

}  // namespace

std::unique_ptr<Provider> NewIdentityProvider() { return std::make_unique<IdentityProvider>(); }

}  // namespace imagesmith::api
