// Small helpers the built-in providers share: the response for one resource
// (body plus ETag), list responses, authorization of the request's caller,
// and reading a resource that may be absent. Internal to src/api/.
//
// Thread-compatible; the Transaction arguments are the caller's.
#pragma once

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

// auth::Authorize for the request's caller.
Status Allow(meta::Transaction& txn, const Request& request, std::string_view action,
             const ResourceId& scope);

// The resource at `id`, or nullopt when there is none.
StatusOr<std::optional<meta::Resource>> FindResource(meta::Transaction& txn, const ResourceId& id);

}  // namespace imagesmith::api
