#include "cli/api_client.h"

#include "api/arm_error.h"

namespace imagesmith::cli {

StatusOr<ApiClient> ApiClient::Open(Env& env) {
  ASSIGN_OR_RETURN(std::unique_ptr<api::Local> local, api::OpenLocal(env));
  return ApiClient(std::move(local));
}

StatusOr<api::Response> ApiClient::Call(api::Request request) {
  StatusOr<api::Response> r = local_->Call(std::move(request));
  if (!r.ok()) return Status(r.status().code(), api::ToArmError(r.status()).message);
  return r;
}

const std::string& ApiClient::subscription() const { return local_->services.subscription; }

const std::string& ApiClient::data_dir() const { return local_->services.data_dir; }

ResourceId ApiClient::Group(const std::string& name) const {
  return ResourceId::ForResourceGroup(subscription(), name);
}

api::Request MakeRequest(api::Verb verb, ResourceId id, Json body) {
  api::Request r;
  r.verb = verb;
  r.id = std::move(id);
  r.body = std::move(body);
  return r;
}

api::Request MakeListRequest(ResourceId scope, std::string list_type) {
  api::Request r = MakeRequest(api::Verb::kList, std::move(scope));
  r.list_type = std::move(list_type);
  return r;
}

Json Printable(const Json& resource) {
  if (!resource.is_object() || resource.Find("etag") == nullptr) return resource;
  Json out = Json::MakeObject();
  for (const JsonMember& m : resource.object_items()) {
    if (m.key != "etag") out.Set(m.key, m.value);
  }
  return out;
}

std::vector<Json> PrintableItems(const api::Response& response) {
  std::vector<Json> out;
  const Json* value = response.body.is_object() ? response.body.Find("value") : nullptr;
  if (value == nullptr || !value->is_array()) return out;
  for (const Json& item : value->array_items()) out.push_back(Printable(item));
  return out;
}

Status DeleteResource(ApiClient& client, const ResourceId& id, bool force) {
  api::Request req = MakeRequest(api::Verb::kDelete, id);
  if (force) req.params["force"] = "true";
  ASSIGN_OR_RETURN(api::Response r, client.Call(std::move(req)));
  if (r.http_status == 204) return client.Call(MakeRequest(api::Verb::kGet, id)).status();
  return Status::Ok();
}

}  // namespace imagesmith::cli
