#include "meta/scopes.h"

#include "base/random.h"
#include "base/strings.h"

namespace imagesmith::meta {

StatusOr<Resource> EnsureDefaultSubscription(Transaction& txn, Env& env) {
  (void)env;
  ASSIGN_OR_RETURN(std::vector<Resource> subs, txn.ListSubscriptions());
  for (const Resource& s : subs) {
    const Json* d = s.properties.Find("isDefault");
    if (d != nullptr && d->is_bool() && d->bool_value()) return s;
  }
  Resource sub{ResourceId::ForSubscription(NewUuidV4()),
               "",
               Json::MakeObject(),
               Json::MakeObject(),
               0,
               0,
               0};
  sub.properties.Set("displayName", Json::String("imagesmith default"));
  sub.properties.Set("isDefault", Json::Bool(true));
  sub.properties.Set("state", Json::String("Enabled"));
  RETURN_IF_ERROR(txn.Create(sub));
  return sub;
}

StatusOr<Resource> CreateGroup(Transaction& txn, const std::string& subscription,
                               const std::string& name, const Region& location, const Json& tags) {
  RETURN_IF_ERROR(ValidateResourceGroupName(name));
  ResourceId id = ResourceId::ForResourceGroup(subscription, name);
  ASSIGN_OR_RETURN(bool exists, txn.Exists(id));
  if (exists) return AlreadyExistsError("resource group '" + name + "' already exists");
  Resource r{id, location.name(), tags, Json::MakeObject(), 0, 0, 0};
  r.properties.Set("provisioningState", Json::String("Succeeded"));
  RETURN_IF_ERROR(txn.Create(r));
  return r;
}

StatusOr<Resource> GetGroup(Transaction& txn, const ResourceId& group_id) {
  auto r = txn.Get(group_id);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("resource group '" + group_id.resource_group() +
                         "' could not be found; create it with 'imagesmith group create -n " +
                         group_id.resource_group() + " -l <region>'");
  }
  return r;
}

Status DeleteGroup(Transaction& txn, const ResourceId& group_id) {
  RETURN_IF_ERROR(GetGroup(txn, group_id).status());
  ASSIGN_OR_RETURN(int64_t n, txn.CountDescendants(group_id));
  if (n > 0) {
    ASSIGN_OR_RETURN(std::vector<Resource> inside, txn.ListDescendants(group_id, 5));
    std::string list;
    for (const Resource& r : inside) list += "\n  " + r.id.ToString();
    if (n > 5) list += "\n  ... and " + std::to_string(n - 5) + " more";
    return FailedPreconditionError("resource group '" + group_id.resource_group() +
                                   "' still holds " + std::to_string(n) +
                                   " resource(s); delete them first:" + list);
  }
  return txn.Delete(group_id);
}

}  // namespace imagesmith::meta
