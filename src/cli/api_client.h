// Calling the resource providers from a command (DESIGN.md, "Control
// plane"): a command parses its flags, builds an ARM request, calls the api
// layer through ApiClient and prints the response. ApiClient opens the local
// data directory once (api::OpenLocal) and dispatches as its owner; errors
// come back as the Status a command reports, with the ARM code prefix
// dropped, so messages and exit codes are what they always were.
//
// Not thread-safe; one per command run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/local.h"
#include "api/provider.h"
#include "base/env.h"
#include "base/json.h"
#include "base/statusor.h"

namespace imagesmith::cli {

class ApiClient {
 public:
  // Fails with a message naming the data directory when it cannot be opened.
  static StatusOr<ApiClient> Open(Env& env);

  // Dispatches `request` as the data directory's owner. The error's message
  // is the provider's without its ARM code (api::ToArmError), its code the
  // provider's StatusCode.
  StatusOr<api::Response> Call(api::Request request);

  // The default subscription's GUID and IDs in it.
  const std::string& subscription() const;
  // The data directory it opened.
  const std::string& data_dir() const;
  ResourceId Subscription() const { return ResourceId::ForSubscription(subscription()); }
  ResourceId Group(const std::string& name) const;

 private:
  explicit ApiClient(std::unique_ptr<api::Local> local) : local_(std::move(local)) {}
  std::unique_ptr<api::Local> local_;
};

// A request for `verb` on `id` (for kList: the scope or parent, and
// `list_type`).
api::Request MakeRequest(api::Verb verb, ResourceId id, Json body = Json());
api::Request MakeListRequest(ResourceId scope, std::string list_type);

// The resource a response carries, as the CLI prints it: without the
// "etag" member (the CLI's output predates ETags).
Json Printable(const Json& resource);
// The items of a list response ({"value": [...]}), each Printable.
std::vector<Json> PrintableItems(const api::Response& response);

// DELETE of `id`; the CLI reports deleting something that does not exist
// as the NotFound error a GET of it gives (the API answers 204).
// With `force`, params["force"] = "true": delete although a Batch pool
// uses the image.
Status DeleteResource(ApiClient& client, const ResourceId& id, bool force = false);

}  // namespace imagesmith::cli
