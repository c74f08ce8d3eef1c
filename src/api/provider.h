// Resource providers: the one implementation of every resource type. A
// provider validates a request, authorizes the caller, and reads or changes
// the metadata database (starting a durable operation for long work). The CLI
// and the REST server are front ends that build a Request, call
// Registry::Dispatch and print or send the Response; neither opens a
// transaction itself.
//
// Requests are ARM-shaped: a verb, a resource ID, a JSON body in Azure's REST
// shape, optional ETag preconditions, and the caller's principal. Responses
// carry ARM's status code (200, 201, 202, 204), the body, the ETag and, for
// long work, the durable operation that does it.
//
// Thread-safety: providers hold no mutable state of their own; Dispatch may
// be called from many threads at once (the MetaStore serialises writes).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/services.h"
#include "base/json.h"
#include "base/resource_id.h"
#include "base/statusor.h"

namespace imagesmith::api {

enum class Verb {
  kPut,     // create or replace the resource at `id`
  kPatch,   // update some properties (tags, ...) of the resource at `id`
  kGet,     // the resource at `id`
  kList,    // every resource of `list_type` directly under `id` (a scope or a parent)
  kDelete,  // the resource at `id`
  kAction,  // POST `id`/`action` ("run", "cancel")
};

enum class ProgressKind { kStatus, kLog, kNotice };

struct Request {
  Verb verb = Verb::kGet;
  // The resource; for kList the scope (subscription or group) or the parent
  // resource the list is under.
  ResourceId id = ResourceId::ForSubscription("");
  std::string list_type;  // kList: the full type listed, "Microsoft.Compute/galleries"
  std::string action;     // kAction: "run", "cancel", ...
  // The request's api-version ("" from front ends that have none); a body
  // that does not say its own apiVersion is read as this version.
  std::string api_version;
  Json body;  // kPut, kPatch, kAction: the request body (may be null)
  // ETag preconditions (If-Match / If-None-Match); "*" matches any existing
  // resource.
  std::optional<std::string> if_match;
  std::optional<std::string> if_none_match;
  // Long work: true runs the operation to its end in this process before
  // returning (the CLI without a server); false returns at once with
  // `operation_id` set (the REST API, --no-wait).
  bool wait = true;
  // wait only: where the work's progress goes for a foreground caller (a
  // terminal): `is_log` lines are the work's log, the others say what it is
  // doing now (`notice` ones always matter). And a flag the caller sets to
  // cancel the work (Ctrl-C). Both optional.
  std::function<void(ProgressKind kind, std::string_view line)> progress;
  const std::atomic<bool>* interrupt = nullptr;
  Caller caller;
  // Query parameters other than api-version, by name as ARM spells them:
  // "$expand" (ReplicationStatus on an image version), "location" (the
  // region of an image version named "latest").
  std::map<std::string, std::string> params;
  // Extension resources (Microsoft.Authorization/roleAssignments) live at
  // any scope and their IDs are not ResourceIds: for GET, PUT and DELETE of
  // one, `id` is the scope (subscription, group or resource) and
  // `extension_type` / `extension_name` the type and the name under it;
  // Dispatch routes by `extension_type`. (kList uses `id` and `list_type`
  // as for any type.) auth::ParseRoleAssignmentId splits an ID text.
  std::string extension_type;
  std::string extension_name;
};

struct Response {
  int http_status = 200;  // 200 OK, 201 Created, 202 Accepted, 204 No Content
  Json body;              // the resource (or list {"value": [...]}) in Azure's shape; null for 204
  std::string etag;       // "" when the resource has none (lists, deletes)
  std::string operation_id;  // set when a durable operation does the work
};

// One resource type. Subclasses implement the verbs their type supports; the
// defaults answer MethodNotAllowed naming the verb and the type.
class Provider {
 public:
  virtual ~Provider() = default;

  // The full type this provider owns, "Microsoft.Compute/galleries/images".
  virtual std::string_view Type() const = 0;
  // Every API version the type accepts (the REST server checks api-version).
  virtual std::vector<std::string> ApiVersions() const = 0;

  virtual StatusOr<Response> Put(Services& services, const Request& request);
  virtual StatusOr<Response> Patch(Services& services, const Request& request);
  virtual StatusOr<Response> Get(Services& services, const Request& request);
  virtual StatusOr<Response> List(Services& services, const Request& request);
  virtual StatusOr<Response> Delete(Services& services, const Request& request);
  virtual StatusOr<Response> Action(Services& services, const Request& request);
};

// Every provider, by type. Built once at start-up, then read-only.
class Registry {
 public:
  // Takes ownership. Requires that no provider for the same type was added.
  void Add(std::unique_ptr<Provider> provider);
  // nullptr when no provider owns `full_type` (case-insensitive).
  Provider* Find(std::string_view full_type) const;

  // Routes `request` to the provider of its type (for kList, `list_type`)
  // and calls the verb. A type nobody provides is NotFound
  // ("InvalidResourceType: ..."). Errors are ARM-coded (arm_error.h).
  StatusOr<Response> Dispatch(Services& services, const Request& request) const;

  std::vector<const Provider*> providers() const;

 private:
  std::map<std::string, std::unique_ptr<Provider>> by_type_;  // key: lower-cased type
};

// A registry with every built-in provider (registry.cc).
std::unique_ptr<Registry> BuiltinRegistry();

}  // namespace imagesmith::api
