#include "api/provider_util.h"

#include "api/arm_error.h"
#include "api/etag.h"
#include "auth/authorize.h"

namespace imagesmith::api {

Json WithEtag(Json body, const meta::Resource& r) {
  body.Set("etag", Json::String(EtagOf(r)));
  return body;
}

Response ResourceResponse(int http_status, Json body, const meta::Resource& r) {
  Response out;
  out.http_status = http_status;
  out.body = WithEtag(std::move(body), r);
  out.etag = EtagOf(r);
  return out;
}

Response ListResponse(std::vector<Json> items) {
  Json value = Json::MakeArray();
  for (Json& j : items) value.Append(std::move(j));
  Response out;
  out.http_status = 200;
  out.body = Json::MakeObject();
  out.body.Set("value", std::move(value));
  return out;
}

Response DeleteResponse(bool existed) {
  Response out;
  out.http_status = existed ? 200 : 204;
  return out;
}

bool ForceDelete(const Request& request) {
  auto it = request.params.find("force");
  return it != request.params.end() && (it->second == "true" || it->second == "1");
}

Status Allow(meta::Transaction& txn, const Request& request, std::string_view action,
             const ResourceId& scope) {
  return auth::Authorize(txn, request.caller.principal, action, scope);
}

StatusOr<std::optional<meta::Resource>> FindResource(meta::Transaction& txn, const ResourceId& id) {
  ASSIGN_OR_RETURN(bool exists, txn.Exists(id));
  if (!exists) return std::optional<meta::Resource>();
  ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
  return std::optional<meta::Resource>(std::move(r));
}

StatusOr<Response> GetOne(Services& services, const Request& request, std::string_view action,
                          const std::function<StatusOr<meta::Resource>(meta::Transaction&)>& get,
                          const ResourceJson& to_json) {
  Response out;
  Status s = services.meta->Read([&](meta::Transaction& txn) -> Status {
    RETURN_IF_ERROR(Allow(txn, request, action, request.id));
    ASSIGN_OR_RETURN(meta::Resource r, get(txn));
    out = ResourceResponse(200, to_json(r), r);
    return Status::Ok();
  });
  if (!s.ok()) return WithTarget(s, request.id.ToString());
  return out;
}

StatusOr<Response> ListAll(
    Services& services, const Request& request, std::string_view action,
    const std::function<StatusOr<std::vector<meta::Resource>>(meta::Transaction&)>& list,
    const ResourceJson& to_json) {
  std::vector<Json> items;
  Status s = services.meta->Read([&](meta::Transaction& txn) -> Status {
    RETURN_IF_ERROR(Allow(txn, request, action, request.id));
    ASSIGN_OR_RETURN(std::vector<meta::Resource> found, list(txn));
    for (const meta::Resource& r : found) items.push_back(WithEtag(to_json(r), r));
    return Status::Ok();
  });
  if (!s.ok()) return WithTarget(s, request.id.ToString());
  return ListResponse(std::move(items));
}

StatusOr<Response> DeleteOne(Services& services, const Request& request, std::string_view action,
                             const std::function<Status(meta::Transaction&)>& check_parent,
                             const std::function<Status(meta::Transaction&)>& remove) {
  bool existed = false;
  Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
    RETURN_IF_ERROR(Allow(txn, request, action, request.id));
    if (check_parent) RETURN_IF_ERROR(check_parent(txn));
    ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, request.id));
    RETURN_IF_ERROR(CheckPreconditions(request, current ? &*current : nullptr));
    if (!current.has_value()) return Status::Ok();
    existed = true;
    return remove(txn);
  });
  if (!s.ok()) return WithTarget(s, request.id.ToString());
  return DeleteResponse(existed);
}

}  // namespace imagesmith::api
