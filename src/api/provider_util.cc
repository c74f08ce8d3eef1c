#include "api/provider_util.h"

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

}  // namespace imagesmith::api
