#include "server/router.h"

#include <cctype>

#include "api/arm_error.h"
#include "base/strings.h"
#include "server/http.h"

namespace imagesmith::server {
namespace {

Status NoRoute(const std::vector<std::string>& segments) {
  std::string path;
  for (const std::string& s : segments) {
    path += '/';
    path += s.substr(0, 200);
  }
  if (path.size() > 600) path = path.substr(0, 600) + "...";
  return api::ArmStatus(StatusCode::kNotFound, "NotFound",
                        "no route matches the path '" + path + "'");
}

Status NotAllowed(std::string_view method, const std::string& route, const char* allowed) {
  return api::ArmStatus(StatusCode::kUnimplemented, "MethodNotAllowed",
                        "the method '" + std::string(method.substr(0, 32)) +
                            "' is not allowed on " + route + " (allowed: " + allowed + ")");
}

bool IsResourceVerb(std::string_view m) {
  return m == "PUT" || m == "PATCH" || m == "GET" || m == "DELETE";
}

api::Verb ResourceVerb(std::string_view m) {
  if (m == "PUT") return api::Verb::kPut;
  if (m == "PATCH") return api::Verb::kPatch;
  if (m == "DELETE") return api::Verb::kDelete;
  return api::Verb::kGet;
}

}  // namespace

Status ValidatePathName(std::string_view what, std::string_view name) {
  auto bad = [&](const std::string& why) {
    std::string shown = SanitizeUtf8(name.substr(0, 100));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return api::ArmStatus(StatusCode::kInvalidArgument, "InvalidResourceName",
                          "the " + std::string(what) + " '" + shown + "' " + why);
  };
  if (name.empty()) return bad("is empty");
  if (name == "." || name == "..") return bad("is not a name ('.' and '..' are refused)");
  if (name.size() > 260) return bad("is longer than 260 characters");
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\') return bad("contains '/' or '\\'");
    if (u < 0x20 || u == 0x7f) return bad("contains a control character");
  }
  if (!IsValidUtf8(name)) return bad("is not valid UTF-8");
  return Status::Ok();
}

StatusOr<Route> RouteRequest(std::string_view method, const std::vector<std::string>& segs) {
  Route route;
  const size_t n = segs.size();
  // The server's own paths.
  if (n == 1 && (segs[0] == "healthz" || segs[0] == "metrics" || segs[0] == "openapi.json")) {
    route.route_template = "/" + segs[0];
    if (method != "GET" && method != "HEAD") {
      return NotAllowed(method, route.route_template, "GET, HEAD");
    }
    route.kind = segs[0] == "healthz"   ? RouteKind::kHealth
                 : segs[0] == "metrics" ? RouteKind::kMetrics
                                        : RouteKind::kOpenApi;
    return route;
  }
  // The web console: its page at "/" and its files under /console/. Its
  // routes are the part after '#', so no ARM path is shadowed.
  if (n == 0 || (n == 2 && segs[0] == "console")) {
    route.route_template = n == 0 ? "/" : "/console/{asset}";
    if (method != "GET" && method != "HEAD") {
      return NotAllowed(method, route.route_template, "GET, HEAD");
    }
    route.kind = RouteKind::kConsole;
    route.asset = n == 0 ? "index.html" : segs[1];
    return route;
  }
  if (n == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token") {
    route.route_template = "/{tenant}/oauth2/v2.0/token";
    if (method != "POST") return NotAllowed(method, route.route_template, "POST");
    RETURN_IF_ERROR(ValidatePathName("tenant", segs[0]));
    route.kind = RouteKind::kToken;
    route.tenant = segs[0];
    return route;
  }
  if (n == 1 && EqualsIgnoreCase(segs[0], "subscriptions")) {
    // The subscriptions the caller may read (ARM's Subscriptions - List).
    route.kind = RouteKind::kArm;
    route.route_template = "/subscriptions";
    if (method != "GET") return NotAllowed(method, route.route_template, "GET");
    route.request.verb = api::Verb::kList;
    route.request.list_type = "Microsoft.Resources/subscriptions";
    return route;
  }
  if (n < 2 || !EqualsIgnoreCase(segs[0], "subscriptions")) return NoRoute(segs);
  const std::string& sub = segs[1];
  RETURN_IF_ERROR(ValidatePathName("subscription", sub));
  route.kind = RouteKind::kArm;
  // Extension resources at any scope:
  //   {scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]
  for (size_t j = 2; j + 2 < n; ++j) {
    if (!EqualsIgnoreCase(segs[j], "providers") ||
        !EqualsIgnoreCase(segs[j + 1], "Microsoft.Authorization")) {
      continue;
    }
    bool permissions = EqualsIgnoreCase(segs[j + 2], "permissions") && n == j + 3;
    if (!permissions && (!EqualsIgnoreCase(segs[j + 2], "roleAssignments") || n > j + 4)) {
      continue;
    }
    std::string scope_text;
    for (size_t i = 0; i < j; ++i) {
      RETURN_IF_ERROR(ValidatePathName("scope segment", segs[i]));
      scope_text += "/" + segs[i];
    }
    StatusOr<ResourceId> scope = ResourceId::Parse(scope_text);
    if (!scope.ok()) {
      return api::ArmStatus(StatusCode::kInvalidArgument, "InvalidResourceName",
                            "the scope of the role assignment: " + scope.status().message());
    }
    route.request.id = *scope;
    if (permissions) {
      // The caller's own permissions at the scope (Azure's Permissions API).
      route.route_template = "/{scope}/providers/Microsoft.Authorization/permissions";
      if (method != "GET") return NotAllowed(method, route.route_template, "GET");
      route.request.verb = api::Verb::kList;
      route.request.list_type = "Microsoft.Authorization/permissions";
      return route;
    }
    route.route_template = "/{scope}/providers/Microsoft.Authorization/roleAssignments";
    if (n == j + 3) {
      if (method != "GET") return NotAllowed(method, route.route_template, "GET");
      route.request.verb = api::Verb::kList;
      route.request.list_type = "Microsoft.Authorization/roleAssignments";
      return route;
    }
    RETURN_IF_ERROR(ValidatePathName("role assignment name", segs[j + 3]));
    route.route_template += "/{roleAssignmentName}";
    if (method != "PUT" && method != "GET" && method != "DELETE") {
      return NotAllowed(method, route.route_template, "PUT, GET, DELETE");
    }
    route.request.verb = ResourceVerb(method);
    route.request.extension_type = "Microsoft.Authorization/roleAssignments";
    route.request.extension_name = segs[j + 3];
    return route;
  }
  std::string tmpl = "/subscriptions/{subscriptionId}";
  if (n == 2) {
    route.route_template = tmpl;
    if (method != "GET") return NotAllowed(method, tmpl, "GET");
    route.request.verb = api::Verb::kGet;
    route.request.id = ResourceId::ForSubscription(sub);
    return route;
  }
  // Subscription scope: resource groups, lists, operations.
  if (EqualsIgnoreCase(segs[2], "resourceGroups")) {
    if (n == 3) {
      route.route_template = tmpl + "/resourceGroups";
      if (method != "GET") return NotAllowed(method, route.route_template, "GET");
      route.request.verb = api::Verb::kList;
      route.request.id = ResourceId::ForSubscription(sub);
      route.request.list_type = "Microsoft.Resources/resourceGroups";
      return route;
    }
  } else if (EqualsIgnoreCase(segs[2], "providers")) {
    // Durable operations: a template run's are under
    // Microsoft.VirtualMachineImages, a version replication's under
    // Microsoft.Compute (Operation::ArmId); the ID alone finds either.
    const bool compute = EqualsIgnoreCase(segs[3], "Microsoft.Compute");
    if (n == 8 && (EqualsIgnoreCase(segs[3], "Microsoft.VirtualMachineImages") || compute) &&
        EqualsIgnoreCase(segs[4], "locations") &&
        (EqualsIgnoreCase(segs[6], "operations") ||
         EqualsIgnoreCase(segs[6], "operationResults"))) {
      bool status = EqualsIgnoreCase(segs[6], "operations");
      route.route_template = tmpl + "/providers/" +
                             (compute ? "Microsoft.Compute" : "Microsoft.VirtualMachineImages") +
                             "/locations/{location}/" +
                             (status ? "operations" : "operationResults") + "/{operationId}";
      if (method != "GET") return NotAllowed(method, route.route_template, "GET");
      RETURN_IF_ERROR(ValidatePathName("location", segs[5]));
      RETURN_IF_ERROR(ValidatePathName("operation ID", segs[7]));
      route.kind = status ? RouteKind::kOperationStatus : RouteKind::kOperationResult;
      route.subscription = sub;
      route.location = segs[5];
      route.operation_id = segs[7];
      return route;
    }
    if (n == 5) {
      RETURN_IF_ERROR(ValidatePathName("resource provider namespace", segs[3]));
      RETURN_IF_ERROR(ValidatePathName("resource type", segs[4]));
      route.route_template = tmpl + "/providers/" + segs[3] + "/" + segs[4];
      if (method != "GET") return NotAllowed(method, route.route_template, "GET");
      route.request.verb = api::Verb::kList;
      route.request.id = ResourceId::ForSubscription(sub);
      route.request.list_type = segs[3] + "/" + segs[4];
      return route;
    }
    return NoRoute(segs);
  } else {
    return NoRoute(segs);
  }
  // /subscriptions/{s}/resourceGroups/{g}...
  const std::string& group = segs[3];
  {
    Status valid = ValidatePathName("resource group name", group);
    if (valid.ok()) valid = ValidateResourceGroupName(group);
    if (!valid.ok()) {
      if (valid.message().rfind("InvalidResourceName: ", 0) == 0) return valid;
      return api::ArmStatus(StatusCode::kInvalidArgument, "InvalidResourceName", valid.message());
    }
  }
  tmpl += "/resourceGroups/{resourceGroupName}";
  if (n == 4) {
    route.route_template = tmpl;
    if (!IsResourceVerb(method)) return NotAllowed(method, tmpl, "PUT, PATCH, GET, DELETE");
    route.request.verb = ResourceVerb(method);
    route.request.id = ResourceId::ForResourceGroup(sub, group);
    return route;
  }
  if (n < 7 || !EqualsIgnoreCase(segs[4], "providers")) return NoRoute(segs);
  const std::string& ns = segs[5];
  RETURN_IF_ERROR(ValidatePathName("resource provider namespace", ns));
  tmpl += "/providers/" + ns;
  // segs[6..]: type, name, type, name, ... and maybe one trailing word.
  const size_t k = n - 6;
  std::string full_type = ns;
  for (size_t i = 0; i < k; ++i) {
    bool is_type = i % 2 == 0;
    RETURN_IF_ERROR(ValidatePathName(is_type ? "resource type" : "resource name", segs[6 + i]));
  }
  // The resource (k even) or the resource the trailing word belongs to.
  size_t pairs = k / 2;
  ResourceId id = ResourceId::ForResourceGroup(sub, group);
  for (size_t p = 0; p < pairs; ++p) {
    const std::string& type = segs[6 + 2 * p];
    const std::string& name = segs[7 + 2 * p];
    id = p == 0 ? ResourceId::ForResource(sub, group, ns, type, name) : id.Child(type, name);
    full_type += "/" + type;
    tmpl +=
        "/" + type + "/{" + (p == 0 ? std::string("name") : "name" + std::to_string(p + 1)) + "}";
  }
  if (k % 2 == 0) {
    route.route_template = tmpl;
    if (!IsResourceVerb(method)) return NotAllowed(method, tmpl, "PUT, PATCH, GET, DELETE");
    route.request.verb = ResourceVerb(method);
    route.request.id = id;
    return route;
  }
  const std::string& word = segs[n - 1];
  if (pairs > 0 && EqualsIgnoreCase(word, "download")) {
    // imagesmith's own: a file of the resource (a run's disk, an image's).
    route.kind = RouteKind::kDownload;
    route.route_template = tmpl + "/download";
    if (method != "GET" && method != "HEAD") {
      return NotAllowed(method, route.route_template, "GET, HEAD");
    }
    route.request.verb = api::Verb::kGet;
    route.request.id = id;
    return route;
  }
  if (pairs == 0) {
    // A list in a group: .../providers/{ns}/{type}.
    route.route_template = tmpl + "/" + word;
    if (method != "GET") return NotAllowed(method, route.route_template, "GET");
    route.request.verb = api::Verb::kList;
    route.request.id = ResourceId::ForResourceGroup(sub, group);
    route.request.list_type = full_type + "/" + word;
    return route;
  }
  if (method == "GET") {
    route.route_template = tmpl + "/" + word;
    route.request.verb = api::Verb::kList;
    route.request.id = id;
    route.request.list_type = full_type + "/" + word;
    return route;
  }
  if (method == "POST") {
    route.route_template = tmpl + "/" + word;
    route.request.verb = api::Verb::kAction;
    route.request.id = id;
    route.request.action = word;
    return route;
  }
  return NotAllowed(method, tmpl + "/" + word, "GET (a child list), POST (an action)");
}

}  // namespace imagesmith::server
