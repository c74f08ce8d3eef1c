// Subscriptions (read-only) and resource groups.
#include "api/arm_error.h"
#include "api/body.h"
#include "api/etag.h"
#include "api/provider_util.h"
#include "api/resource_providers.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

constexpr const char* kSubscriptionType = "Microsoft.Resources/subscriptions";
constexpr const char* kSubscriptionRead = "Microsoft.Resources/subscriptions/read";
constexpr const char* kGroupRead = "Microsoft.Resources/subscriptions/resourceGroups/read";
constexpr const char* kGroupWrite = "Microsoft.Resources/subscriptions/resourceGroups/write";
constexpr const char* kGroupDelete = "Microsoft.Resources/subscriptions/resourceGroups/delete";

Status SubscriptionNotFound(const ResourceId& sub) {
  return ArmStatus(StatusCode::kNotFound, "SubscriptionNotFound",
                   "the subscription '" + sub.subscription() + "' could not be found",
                   sub.ToString());
}

Status CheckSubscription(meta::Transaction& txn, const ResourceId& id) {
  ResourceId sub = ResourceId::ForSubscription(id.subscription());
  ASSIGN_OR_RETURN(bool exists, txn.Exists(sub));
  return exists ? Status::Ok() : SubscriptionNotFound(sub);
}

// ---- subscriptions ------------------------------------------------------------

// ARM's subscription shape (GET /subscriptions/{id}).
Json SubscriptionJson(const meta::Resource& r) {
  const Json* name = r.properties.Find("displayName");
  const Json* state = r.properties.Find("state");
  Json j = Json::MakeObject();
  j.Set("id", Json::String(r.id.ToString()));
  j.Set("subscriptionId", Json::String(r.id.subscription()));
  j.Set("displayName", name != nullptr ? *name : Json::String(""));
  j.Set("state", state != nullptr ? *state : Json::String("Enabled"));
  return j;
}

class SubscriptionProvider final : public Provider {
 public:
  std::string_view Type() const override { return kSubscriptionType; }
  std::vector<std::string> ApiVersions() const override { return {"2020-01-01", "2022-12-01"}; }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    if (request.id.kind() != ResourceId::Kind::kSubscription) {
      return InvalidArgumentError("expected a subscription ID, got " + request.id.ToString());
    }
    Response out;
    Status s = services.meta->Read([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kSubscriptionRead, request.id));
      ASSIGN_OR_RETURN(std::optional<meta::Resource> r, FindResource(txn, request.id));
      if (!r.has_value()) return SubscriptionNotFound(request.id);
      out = ResourceResponse(200, SubscriptionJson(*r), *r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, request.id.ToString());
    return out;
  }

  // Every subscription the caller may read.
  StatusOr<Response> List(Services& services, const Request& request) override {
    std::vector<Json> items;
    Status s = services.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(std::vector<meta::Resource> subs, txn.ListSubscriptions());
      for (const meta::Resource& r : subs) {
        if (!Allow(txn, request, kSubscriptionRead, r.id).ok()) continue;
        items.push_back(WithEtag(SubscriptionJson(r), r));
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return ListResponse(std::move(items));
  }
};

// ---- resource groups --------------------------------------------------------------

// The order of members is what `imagesmith group show` has always printed.
Json GroupJson(const meta::Resource& r) {
  Json j = Json::MakeObject();
  j.Set("id", Json::String(r.id.ToString()));
  j.Set("location", Json::String(r.location));
  j.Set("name", Json::String(r.id.name()));
  j.Set("properties", r.properties);
  j.Set("tags", r.tags);
  j.Set("type", Json::String(meta::kGroupType));
  return j;
}

Status CheckGroupId(const ResourceId& id) {
  if (id.kind() != ResourceId::Kind::kResourceGroup) {
    return InvalidArgumentError("expected a resource group ID, got " + id.ToString());
  }
  return ValidateResourceGroupName(id.resource_group());
}

struct GroupBody {
  std::optional<Region> location;
  std::optional<Json> tags;
};

StatusOr<GroupBody> ParseGroupBody(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly(
      {"id", "name", "type", "location", "tags", "properties", "managedBy", "etag", "systemData"}));
  ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
  RETURN_IF_ERROR(props.AllowOnly({"provisioningState"}));
  GroupBody out;
  ASSIGN_OR_RETURN(out.location, top.Location());
  ASSIGN_OR_RETURN(out.tags, top.Tags());
  return out;
}

class ResourceGroupProvider final : public Provider {
 public:
  std::string_view Type() const override { return meta::kGroupType; }
  std::vector<std::string> ApiVersions() const override {
    return {"2021-04-01", "2022-09-01", "2023-07-01"};
  }

  // Creates the group (201) or replaces its tags (200). A group's location
  // cannot change.
  StatusOr<Response> Put(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckGroupId(id), target));
    ASSIGN_OR_RETURN(GroupBody body, ParseGroupBody(request.body));
    Response out;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kGroupWrite, id));
      RETURN_IF_ERROR(CheckSubscription(txn, id));
      ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, id));
      RETURN_IF_ERROR(CheckPreconditions(request, current ? &*current : nullptr));
      if (current.has_value()) {
        meta::Resource r = std::move(*current);
        if (body.location.has_value() && body.location->name() != r.location) {
          return ArmStatus(StatusCode::kFailedPrecondition, "InvalidResourceGroupLocation",
                           "resource group '" + r.id.name() + "' already exists in location '" +
                               r.location + "'; a group's location cannot be changed to '" +
                               body.location->name() + "'",
                           "location");
        }
        if (body.tags.has_value()) r.tags = *body.tags;
        RETURN_IF_ERROR(txn.Replace(r, r.generation));
        out = ResourceResponse(200, GroupJson(r), r);
        return Status::Ok();
      }
      if (!body.location.has_value()) return BodyError("location", "is required");
      ASSIGN_OR_RETURN(meta::Resource r,
                       meta::CreateGroup(txn, id.subscription(), id.resource_group(),
                                         *body.location, body.tags.value_or(Json::MakeObject())));
      out = ResourceResponse(201, GroupJson(r), r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return out;
  }

  // Tags only.
  StatusOr<Response> Patch(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckGroupId(id), target));
    ASSIGN_OR_RETURN(GroupBody body, ParseGroupBody(request.body));
    Response out;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kGroupWrite, id));
      ASSIGN_OR_RETURN(meta::Resource r, meta::GetGroup(txn, id));
      RETURN_IF_ERROR(CheckPreconditions(request, &r));
      if (body.location.has_value() && body.location->name() != r.location) {
        return ArmStatus(StatusCode::kFailedPrecondition, "InvalidResourceGroupLocation",
                         "a resource group's location cannot be changed", "location");
      }
      if (body.tags.has_value()) r.tags = *body.tags;
      RETURN_IF_ERROR(txn.Replace(r, r.generation));
      out = ResourceResponse(200, GroupJson(r), r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return out;
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckGroupId(request.id), request.id.ToString()));
    return GetOne(
        services, request, kGroupRead,
        [&](meta::Transaction& txn) { return meta::GetGroup(txn, request.id); }, GroupJson);
  }

  // The groups of the subscription `request.id`, by name.
  StatusOr<Response> List(Services& services, const Request& request) override {
    ResourceId sub = ResourceId::ForSubscription(request.id.subscription());
    return ListAll(
        services, request, kGroupRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          RETURN_IF_ERROR(CheckSubscription(txn, sub));
          return txn.ListChildren(sub, meta::kGroupType);
        },
        GroupJson);
  }

  // An empty group: 200; no such group: 204; a group with resources: 409
  // listing them.
  StatusOr<Response> Delete(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckGroupId(request.id), request.id.ToString()));
    return DeleteOne(services, request, kGroupDelete, {},
                     [&](meta::Transaction& txn) { return meta::DeleteGroup(txn, request.id); });
  }
};

}  // namespace

std::unique_ptr<Provider> NewSubscriptionProvider() {
  return std::make_unique<SubscriptionProvider>();
}
std::unique_ptr<Provider> NewResourceGroupProvider() {
  return std::make_unique<ResourceGroupProvider>();
}

}  // namespace imagesmith::api
