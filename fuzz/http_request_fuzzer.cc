// Fuzzes the request path of `imagesmith serve` (doc/server.md): the HTTP/1.1
// parser on arbitrary bytes (pipelined requests, split at every place the
// input says), the router, and the ARM handler up to the provider call
// (authentication, api-version, body parsing, paging parameters) with an
// empty registry. Beyond "does not crash":
//   - the parser consumes at least one byte and never more than it was given;
//   - an error is one of the statuses the parser documents, with a message;
//   - every response the handler gives has a status the server can send and,
//     when it is an error, an ARM error body {"error": {"code", "message"}}.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/arm_error.h"
#include "server/handler.h"
#include "server/http.h"
#include "server/router.h"

namespace {

using namespace imagesmith;
using namespace imagesmith::server;

struct World {
  api::Registry registry;
  api::Services services;
  ServicesPool pool{services, {}};
  Metrics metrics;
  AccessLog log{-1};
  std::unique_ptr<ArmHandler> handler;
  World() {
    HandlerOptions options;
    options.verify_token = [](api::Services&, std::string_view token) -> StatusOr<auth::Principal> {
      if (token != "fuzz-token") {
        return Status(StatusCode::kUnauthenticated, "InvalidAuthenticationToken: bad");
      }
      auth::Principal p;
      p.name = "fuzzer";
      return p;
    };
    options.issue_token = [](api::Services&, std::string_view, std::string_view form) {
      TokenAnswer a;
      a.body = Json::MakeObject();
      if (form.find("client_secret=") == std::string_view::npos) {
        a.http_status = 400;
        a.body.Set("error", Json::String("invalid_request"));
        a.body.Set("error_description", Json::String("no secret"));
      }
      return a;
    };
    options.operation_status = [](const std::string&, const std::string& id) -> StatusOr<Json> {
      if (id.size() % 2 == 0) return NotFoundError("no operation");
      Json s = Json::MakeObject();
      s.Set("status", Json::String(id.size() % 3 == 0 ? "InProgress" : "Succeeded"));
      return s;
    };
    options.openapi_json = "{}";
    handler = std::make_unique<ArmHandler>(registry, pool, metrics, log, std::move(options));
  }
};

void CheckResponse(const HttpResponse& r) {
  if (r.status < 100 || r.status > 599) abort();
  if (r.status >= 400 && r.content_type.rfind("application/json", 0) == 0) {
    auto body = ParseJson(r.body);
    if (!body.ok() || !body->is_object()) abort();
    const Json* error = body->Find("error");
    if (error == nullptr) abort();
    // OAuth errors (the token route) are {"error": "code", ...}.
    if (error->is_object() &&
        (error->Find("code") == nullptr || error->Find("message") == nullptr)) {
      abort();
    }
  }
  std::string wire;
  SerializeResponse(r, true, false, &wire);
  if (wire.rfind("HTTP/1.1 ", 0) != 0) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  HttpLimits limits;
  limits.max_body_bytes = 64 * 1024;
  limits.max_header_bytes = 8 * 1024;
  limits.max_request_line = 2048;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int n = 0; n < 16 && !in.empty(); ++n) {
    HttpRequest request;
    size_t consumed = 0;
    ParseError error;
    ParseState state = ParseRequest(in, limits, &request, &consumed, &error);
    if (state == ParseState::kError) {
      int s = error.http_status;
      if (s != 400 && s != 413 && s != 414 && s != 417 && s != 431 && s != 501 && s != 505) abort();
      if (error.message.empty()) abort();
      CheckResponse(world->handler->Reject(s, error.message, RequestInfo{"http", "fuzz"}));
      return 0;
    }
    if (state != ParseState::kDone) {
      // The same bytes with one more byte must not turn a complete head into an error
      // about the request line.
      return 0;
    }
    if (consumed == 0 || consumed > in.size()) abort();
    StatusOr<Route> route = RouteRequest(request.method, request.segments);
    if (!route.ok() && route.status().message().empty()) abort();
    CheckResponse(world->handler->Handle(request, RequestInfo{"http", "fuzz"}));
    in.remove_prefix(consumed);
  }
  return 0;
}
