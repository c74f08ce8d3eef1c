// The ARM front end: turns one parsed HTTP request into a call on the
// resource providers (api::Registry::Dispatch) and the provider's Response
// or error into an HTTP response in Azure Resource Manager's shape. It also
// answers the server's own routes (/healthz, /metrics, /openapi.json, the
// token endpoint, operation status), counts every request in Metrics and
// writes one access-log line for it.
//
// What it checks, in order: the route (404 NotFound / 405), the bearer token
// (401 AuthenticationFailed), the resource type (404 InvalidResourceType),
// the api-version against Provider::ApiVersions (400
// MissingApiVersionParameter / InvalidApiVersionParameter), the body (415,
// 400 InvalidRequestContent with the line and column), $top / $skipToken
// (400 InvalidParameter). The provider does the rest.
//
// No provider logic lives here: validation, authorization and storage are
// the providers' (src/api/).
//
// Thread-safe as the Registry and Services are: Handle runs on every server
// thread at once.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "api/provider.h"
#include "auth/principal.h"
#include "base/json.h"
#include "base/statusor.h"
#include "server/access_log.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/services_pool.h"

namespace imagesmith::server {

// Verifies a bearer token (the text after "Bearer ") with the calling
// thread's Services. OK: who it belongs to. Errors are Unauthenticated,
// optionally with an ARM code prefix ("ExpiredAuthenticationToken: ...").
using TokenVerifier =
    std::function<StatusOr<auth::Principal>(api::Services& services, std::string_view token)>;

// The client-credentials grant: POST /{tenant}/oauth2/v2.0/token with its
// application/x-www-form-urlencoded body -> the status and body to send, as
// Microsoft Entra ID shapes them ({"token_type": "Bearer", "expires_in": ...,
// "access_token": ...}, or {"error": "invalid_client", ...} with 400 / 401).
struct TokenAnswer {
  int http_status = 200;
  Json body;
};
using TokenIssuer = std::function<TokenAnswer(api::Services& services, std::string_view tenant,
                                              std::string_view form_body)>;

// The status resource of a durable operation, in ARM's shape:
//   {"id", "name", "status": InProgress|Succeeded|Failed|Canceled, "startTime",
//    "endTime", "percentComplete", "error": {"code", "message"}}.
// NotFound when there is no such operation in `subscription`.
using OperationLookup =
    std::function<StatusOr<Json>(const std::string& subscription, const std::string& id)>;

// A file to send for GET {resource}/download (api/download.h decides which
// and authorizes): an existing regular file and the name to save it as.
struct DownloadTarget {
  std::string path;
  std::string file_name;
};
using DownloadResolver = std::function<StatusOr<DownloadTarget>(
    api::Services& services, const api::Caller& caller, const ResourceId& id,
    const std::map<std::string, std::string>& params)>;

struct HandlerOptions {
  TokenVerifier verify_token;        // required
  TokenIssuer issue_token;           // empty: the token route answers 501
  OperationLookup operation_status;  // empty: operation routes answer 404
  DownloadResolver download;         // empty: download routes answer 404
  std::string openapi_json;          // served at /openapi.json
  bool serve_console = false;        // GET / and /console/{asset}: the web console
  size_t max_page_size = 1000;       // list pages without $top; the largest $top
  // A token verified on a server thread is trusted for this long again on
  // that thread without asking the verifier (a read transaction): so a
  // deleted principal's or an expiring token stays good for at most this
  // long. 0 verifies every request.
  int token_cache_seconds = 5;
  // GET answers (200) are kept per server thread, keyed by the caller, the
  // Host and the request target, and given again while the thread's
  // database connection says nothing changed (MetaStore::ChangeCounter):
  // the same bytes the provider would make, authorization included (role
  // assignments live in the same database). Image templates are never
  // cached (a template's GET depends on whether its worker process lives).
  bool cache_reads = true;
};

class ArmHandler : public RequestHandler {
 public:
  // Borrows everything; they must outlive the handler.
  ArmHandler(const api::Registry& registry, ServicesPool& services, Metrics& metrics,
             AccessLog& access_log, HandlerOptions options);

  HttpResponse Handle(const HttpRequest& request, const RequestInfo& info) override;
  HttpResponse Reject(int http_status, const std::string& message,
                      const RequestInfo& info) override;

 private:
  struct Outcome;  // what the access log and the metrics need
  HttpResponse Route(const HttpRequest& request, const RequestInfo& info, Outcome& outcome);
  HttpResponse Arm(const HttpRequest& request, const RequestInfo& info, struct Route& route,
                   Outcome& outcome);
  HttpResponse Token(const HttpRequest& request, const std::string& tenant, Outcome& outcome);
  HttpResponse Console(const HttpRequest& request, const std::string& name, Outcome& outcome);
  HttpResponse Operation(const HttpRequest& request, const RequestInfo& info,
                         const struct Route& route, Outcome& outcome);
  HttpResponse Download(const HttpRequest& request, const struct Route& route, Outcome& outcome);
  // The bearer token of the Authorization header; with `query_token`, also
  // RFC 6750's access_token query parameter (download links).
  StatusOr<auth::Principal> Authenticate(const HttpRequest& request, bool query_token = false);

  const api::Registry& registry_;
  ServicesPool& services_;
  Metrics& metrics_;
  AccessLog& access_log_;
  HandlerOptions options_;
};

// The ARM error response for `status`: ToArmError's code and HTTP status, and
// the server's own codes ("NotFound").
HttpResponse ErrorResponse(const Status& status, std::string* code_out = nullptr);

}  // namespace imagesmith::server
