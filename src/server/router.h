// Routing: from an HTTP method and decoded path segments to what the server
// does with the request. ARM paths become an api::Request (verb, resource ID,
// listed type, action); the server's own paths (/healthz, /metrics,
// /openapi.json, the token endpoint, operation status) get their own kinds.
//
// The router looks only at the shape of the path. It does not know which
// resource types exist (the handler asks the Registry) and does not read the
// query or the body.
//
// Route shapes (keywords are case-insensitive, as in ARM):
//   GET                 /subscriptions/{s}
//   GET                 /subscriptions/{s}/resourceGroups                   list groups
//   PUT|PATCH|GET|DELETE /subscriptions/{s}/resourceGroups/{g}
//   GET                 /subscriptions/{s}/providers/{ns}/{type}            list in a subscription
//   GET                 /subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}   list in a
//   group PUT|PATCH|GET|DELETE .../providers/{ns}/{type}/{name}[/{type}/{name}...] GET
//   .../providers/{ns}/{type}/{name}/{childType}        list children POST
//   .../providers/{ns}/{type}/{name}/{action}           action GET
//   /subscriptions/{s}/providers/Microsoft.VirtualMachineImages/locations/{l}/operations/{id} GET
//   /subscriptions/{s}/providers/Microsoft.VirtualMachineImages/locations/{l}/operationResults/{id}
//   GET|HEAD .../providers/{ns}/{type}/{name}[/{type}/{name}...]/download   a file
//   POST /{tenant}/oauth2/v2.0/token
//   GET  /healthz, /metrics, /openapi.json
//
// Thread-compatible: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/provider.h"
#include "base/statusor.h"

namespace imagesmith::server {

enum class RouteKind {
  kHealth,
  kMetrics,
  kOpenApi,
  kToken,            // client credentials; `tenant`
  kOperationStatus,  // Azure-AsyncOperation target; `subscription`, `location`, `operation_id`
  kOperationResult,  // Location target; same fields
  kArm,              // a resource request; `request`
  kConsole,          // the web console: GET / (index.html) or /console/{asset}; `asset`
  kDownload,         // GET|HEAD {resource}/download: a file; `request.id` is the resource
};

struct Route {
  RouteKind kind = RouteKind::kHealth;
  // The route with names replaced by placeholders, for metrics and the access
  // log: "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/
  // providers/Microsoft.Compute/galleries/{name}". Types keep the case they
  // were sent in; the handler replaces them with the provider's spelling.
  std::string route_template;
  // kArm: verb, id, list_type and action are set; body, preconditions and the
  // caller are the handler's to fill.
  api::Request request;
  std::string tenant;
  std::string subscription;
  std::string location;
  std::string operation_id;
  std::string asset;  // kConsole: "index.html", "app.js", ...
};

// The route for `method` and `segments` (HttpRequest::segments).
//   NotFound "NotFound: ..." (404)            no route has this path shape
//   Unimplemented "MethodNotAllowed: ..." (405)  the path exists, the method does not
//   InvalidArgument "InvalidResourceName: ..." (400)  a name is empty, "." or "..",
//       or has '/', '\' or a control character; or a group name breaks Azure's rule
StatusOr<Route> RouteRequest(std::string_view method, const std::vector<std::string>& segments);

// Checks one name from a path: the InvalidResourceName errors above.
Status ValidatePathName(std::string_view what, std::string_view name);

}  // namespace imagesmith::server
