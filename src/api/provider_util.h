// Small helpers the built-in providers share: the response for one resource
// (body plus ETag), list responses, authorization of the request's caller,
// and reading a resource that may be absent. Internal to src/api/.
//
// Thread-compatible; the Transaction arguments are the caller's.
#pragma once

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "api/provider.h"
#include "meta/meta_store.h"

namespace imagesmith::api {

// `body` with "etag" set to EtagOf(r).
Json WithEtag(Json body, const meta::Resource& r);

// A response carrying one resource: `body` (with its etag member) and the
// ETag header value.
Response ResourceResponse(int http_status, Json body, const meta::Resource& r);

// {"value": [...]}, 200.
Response ListResponse(std::vector<Json> items);

// 200 (or 204 when nothing was there) for a DELETE.
Response DeleteResponse(bool existed);

// Whether a DELETE asks to go ahead although the resource is in use
// (params["force"] is "true", the CLI's --force): images a Batch pool uses.
bool ForceDelete(const Request& request);

// auth::Authorize for the request's caller.
Status Allow(meta::Transaction& txn, const Request& request, std::string_view action,
             const ResourceId& scope);

// The resource at `id`, or nullopt when there is none.
StatusOr<std::optional<meta::Resource>> FindResource(meta::Transaction& txn, const ResourceId& id);

using ResourceJson = std::function<Json(const meta::Resource&)>;

// The skeletons of GET, LIST and DELETE that every provider shares. Each runs
// one transaction, authorizes `action` for the caller on request.id first,
// and gives errors request.id as their ARM target.
//
// GET: reads the resource with `get` (its NotFound says how to create it)
// and answers 200 with to_json(r), its etag member and ETag.
StatusOr<Response> GetOne(Services& services, const Request& request, std::string_view action,
                          const std::function<StatusOr<meta::Resource>(meta::Transaction&)>& get,
                          const ResourceJson& to_json);
// LIST: request.id is the scope or parent; `list` returns the resources in
// their stable order. 200 with {"value": [to_json(r) + etag, ...]}.
StatusOr<Response> ListAll(
    Services& services, const Request& request, std::string_view action,
    const std::function<StatusOr<std::vector<meta::Resource>>(meta::Transaction&)>& list,
    const ResourceJson& to_json);
// DELETE: `check_parent` (may be empty) fails when the parent is missing;
// the request's preconditions are checked against the resource as it is;
// `remove` deletes it (and refuses, e.g. while it has children). 200, or 204
// when there was no such resource.
StatusOr<Response> DeleteOne(Services& services, const Request& request, std::string_view action,
                             const std::function<Status(meta::Transaction&)>& check_parent,
                             const std::function<Status(meta::Transaction&)>& remove);

}  // namespace imagesmith::api
