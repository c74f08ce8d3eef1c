#include "server/handler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <unordered_map>

#include "api/arm_error.h"
#include "auth/crypto.h"
#include "base/strings.h"
#include "server/console_assets.h"
#include "server/router.h"

namespace imagesmith::server {

struct ArmHandler::Outcome {
  std::string route_template = "unmatched";
  std::string principal;
  std::string error_code;
};

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A request ID in GUID form, from a per-thread generator.
std::string NewRequestId() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  uint64_t a = rng(), b = rng();
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

// Methods outside this list are counted as OTHER, so clients cannot add
// metric series at will.
std::string_view MethodLabel(std::string_view method) {
  for (std::string_view known : {"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"}) {
    if (method == known) return known;
  }
  return "OTHER";
}

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  if (!body.is_null()) r.body = body.Dump(-1);
  return r;
}

std::string PathOf(const HttpRequest& request) {
  return request.target.substr(0, request.target.find('?'));
}

std::string BaseUrl(const HttpRequest& request, const RequestInfo& info) {
  const std::string* host = request.Header("host");
  return std::string(info.scheme) + "://" + (host ? *host : std::string("localhost"));
}

// The route template with the provider's spelling of the namespace and types.
std::string CanonicalTemplate(const std::string& tmpl, std::string_view full_type) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= full_type.size()) {
    size_t slash = full_type.find('/', start);
    if (slash == std::string_view::npos) slash = full_type.size();
    parts.emplace_back(full_type.substr(start, slash - start));
    start = slash + 1;
  }
  std::string out;
  size_t pos = 0, next_part = 0;
  bool after_providers = false;
  while (pos < tmpl.size()) {
    size_t slash = tmpl.find('/', pos + 1);
    if (slash == std::string::npos) slash = tmpl.size();
    std::string token = tmpl.substr(pos + 1, slash - pos - 1);
    if (after_providers && token.front() != '{' && next_part < parts.size()) {
      token = parts[next_part++];
    }
    if (token == "providers") after_providers = true;
    out += "/" + token;
    pos = slash;
  }
  return out;
}

Status CheckApiVersion(const HttpRequest& request, const api::Provider& provider) {
  const std::string* version = request.Query("api-version");
  std::vector<std::string> versions = provider.ApiVersions();
  std::string supported;
  for (const std::string& v : versions) supported += (supported.empty() ? "" : ", ") + v;
  if (version == nullptr || version->empty()) {
    return api::ArmStatus(StatusCode::kInvalidArgument, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for "
                          "all requests. The supported api-versions for resource type '" +
                              std::string(provider.Type()) + "' are '" + supported + "'.");
  }
  for (const std::string& v : versions) {
    if (Lower(v) == Lower(*version)) return Status::Ok();
  }
  std::string shown = version->substr(0, 64);
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return api::ArmStatus(StatusCode::kInvalidArgument, "InvalidApiVersionParameter",
                        "The api-version '" + shown +
                            "' is invalid. The supported versions for "
                            "resource type '" +
                            std::string(provider.Type()) + "' are '" + supported + "'.");
}

StatusOr<Json> ParseBody(const HttpRequest& request) {
  if (request.body.empty()) return Json::Null();
  const std::string* type = request.Header("content-type");
  if (type != nullptr) {
    std::string t = Lower(type->substr(0, type->find(';')));
    while (!t.empty() && t.back() == ' ') t.pop_back();
    if (t != "application/json" && t != "text/json" && t.find("+json") == std::string::npos) {
      return api::ArmStatus(
          StatusCode::kInvalidArgument, "UnsupportedMediaType",
          "the request body must be JSON (Content-Type: application/json), not '" +
              type->substr(0, 100) + "'");
    }
  }
  JsonSyntaxError error;
  JsonParseOptions options;
  options.max_depth = 64;
  StatusOr<Json> body = ParseJson(request.body, options, &error);
  if (!body.ok()) {
    return api::ArmStatus(StatusCode::kInvalidArgument, "InvalidRequestContent",
                          "The request content was invalid and could not be deserialized: " +
                              error.message + " at line " + std::to_string(error.pos.line) +
                              ", column " + std::to_string(error.pos.column) + ".");
  }
  return body;
}

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(std::string_view in) {
  std::string out;
  for (char c : in) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out += c;
    } else {
      char esc[4];
      std::snprintf(esc, sizeof(esc), "%%%02X", static_cast<unsigned char>(c));
      out += esc;
    }
  }
  return out;
}

// $top and $skipToken over a provider's full list {"value": [...]}: the
// items in case-insensitive ID order, after the ID the token names.
Status Page(const HttpRequest& request, const RequestInfo& info, size_t max_page, Json& body) {
  Json* value = body.is_object() ? body.Find("value") : nullptr;
  if (value == nullptr || !value->is_array()) return Status::Ok();
  size_t top = max_page;
  if (const std::string* t = request.Query("$top")) {
    char* end = nullptr;
    long long n = std::strtoll(t->c_str(), &end, 10);
    if (t->empty() || *end != '\0' || n < 1 || static_cast<size_t>(n) > max_page) {
      return api::ArmStatus(StatusCode::kInvalidArgument, "InvalidParameter",
                            "$top must be a whole number from 1 to " + std::to_string(max_page));
    }
    top = static_cast<size_t>(n);
  }
  std::string after;
  if (const std::string* token = request.Query("$skipToken")) {
    auto decoded = auth::Base64UrlDecode(*token);
    if (decoded.ok()) after = std::move(*decoded);
    if (!decoded.ok() || after.empty()) {
      return api::ArmStatus(StatusCode::kInvalidArgument, "InvalidParameter",
                            "$skipToken is not one this server gave out in a nextLink");
    }
  }
  auto key = [](const Json& item) {
    const Json* id = item.is_object() ? item.Find("id") : nullptr;
    return id != nullptr && id->is_string() ? Lower(id->string_value()) : std::string();
  };
  Json::Array& items = value->array_items();
  // Sort by the lower-cased ID, each key computed once.
  std::vector<std::pair<std::string, size_t>> keys;
  keys.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) keys.emplace_back(key(items[i]), i);
  std::stable_sort(keys.begin(), keys.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t first = 0;
  if (!after.empty()) {
    first = static_cast<size_t>(
        std::upper_bound(keys.begin(), keys.end(), after,
                         [](const std::string& k, const auto& e) { return k < e.first; }) -
        keys.begin());
  }
  size_t last = std::min(keys.size(), first + top);
  Json::Array page;
  page.reserve(last - first);
  for (size_t i = first; i < last; ++i) page.push_back(std::move(items[keys[i].second]));
  bool more = last < keys.size();
  std::string last_key = last > first ? keys[last - 1].first : std::string();
  items = std::move(page);
  if (more) {
    std::string link = BaseUrl(request, info) + PathOf(request) + "?";
    if (const std::string* v = request.Query("api-version")) {
      link += "api-version=" + UrlEncode(*v) + "&";
    }
    if (request.Query("$top") != nullptr) link += "$top=" + std::to_string(top) + "&";
    link += "$skipToken=" + auth::Base64UrlEncode(last_key);
    body.Set("nextLink", Json::String(link));
  }
  return Status::Ok();
}

}  // namespace

HttpResponse ErrorResponse(const Status& status, std::string* code_out) {
  api::ArmError e;
  const std::string& m = status.message();
  if (m.rfind("NotFound: ", 0) == 0) {
    e.http_status = 404;
    e.code = "NotFound";
    e.message = m.substr(10);
  } else {
    e = api::ToArmError(status);
  }
  e.message = SanitizeUtf8(e.message);
  e.target = SanitizeUtf8(e.target);
  if (code_out != nullptr) *code_out = e.code;
  HttpResponse r = JsonResponse(e.http_status, e.ToJson());
  r.headers.emplace_back("x-ms-failure-cause", e.http_status >= 500 ? "service" : "gateway");
  return r;
}

ArmHandler::ArmHandler(const api::Registry& registry, ServicesPool& services, Metrics& metrics,
                       AccessLog& access_log, HandlerOptions options)
    : registry_(registry),
      services_(services),
      metrics_(metrics),
      access_log_(access_log),
      options_(std::move(options)) {}

HttpResponse ArmHandler::Handle(const HttpRequest& request, const RequestInfo& info) {
  auto start = std::chrono::steady_clock::now();
  Outcome outcome;
  std::string request_id = NewRequestId();
  HttpResponse response;
  try {
    response = Route(request, info, outcome);
  } catch (const std::exception& e) {
    response = ErrorResponse(InternalError(std::string("unexpected error: ") + e.what()),
                             &outcome.error_code);
  }
  if (response.status >= 400 && outcome.error_code.empty()) outcome.error_code = "Error";
  response.headers.emplace_back("x-ms-request-id", request_id);
  // ARM echoes the client's own request ID and correlates on it.
  if (const std::string* client_id = request.Header("x-ms-client-request-id");
      client_id != nullptr && client_id->size() <= 256) {
    response.headers.emplace_back("x-ms-client-request-id", *client_id);
    response.headers.emplace_back("x-ms-correlation-request-id", *client_id);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.RecordRequest(MethodLabel(request.method), outcome.route_template, response.status,
                         seconds);
  std::string path = PathOf(request);
  access_log_.Write(
      {.request_id = request_id,
       .remote = info.remote,
       .method = request.method,
       .route = outcome.route_template,
       .path = path,
       .status = response.status,
       .duration_ms = seconds * 1000,
       .bytes_in = request.body.size(),
       .bytes_out = response.file_body ? response.file_body->length : response.body.size(),
       .principal = outcome.principal,
       .error_code = response.status >= 400 ? outcome.error_code : ""});
  return response;
}

HttpResponse ArmHandler::Reject(int http_status, const std::string& message,
                                const RequestInfo& info) {
  api::ArmError e;
  e.http_status = http_status;
  switch (http_status) {
    case 408:
      e.code = "RequestTimeout";
      break;
    case 413:
      e.code = "RequestEntityTooLarge";
      break;
    case 414:
      e.code = "RequestUriTooLong";
      break;
    case 417:
      e.code = "ExpectationFailed";
      break;
    case 431:
      e.code = "RequestHeaderFieldsTooLarge";
      break;
    case 501:
      e.code = "NotImplemented";
      break;
    case 505:
      e.code = "HttpVersionNotSupported";
      break;
    case 500:
      e.code = "InternalServerError";
      break;
    default:
      e.code = "BadRequest";
      break;
  }
  e.message = SanitizeUtf8(message);
  HttpResponse r = JsonResponse(http_status, e.ToJson());
  r.close = true;
  std::string request_id = NewRequestId();
  r.headers.emplace_back("x-ms-request-id", request_id);
  metrics_.RecordRequest("", "unparsed", http_status, 0);
  access_log_.Write({.request_id = request_id,
                     .remote = info.remote,
                     .method = "",
                     .route = "unparsed",
                     .path = "",
                     .status = http_status,
                     .duration_ms = 0,
                     .bytes_in = 0,
                     .bytes_out = r.body.size(),
                     .principal = "",
                     .error_code = e.code});
  return r;
}

HttpResponse ArmHandler::Route(const HttpRequest& request, const RequestInfo& info,
                               Outcome& outcome) {
  StatusOr<struct Route> route = RouteRequest(request.method, request.segments);
  if (!route.ok()) return ErrorResponse(route.status(), &outcome.error_code);
  // ARM routes hold the types the client sent; they become a label only
  // once a provider owns the type (Arm below).
  if (route->kind != RouteKind::kArm) outcome.route_template = route->route_template;
  switch (route->kind) {
    case RouteKind::kHealth: {
      Json body = Json::MakeObject();
      body.Set("status", Json::String("ok"));
      return JsonResponse(200, body);
    }
    case RouteKind::kMetrics: {
      HttpResponse r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = metrics_.Render();
      return r;
    }
    case RouteKind::kOpenApi: {
      HttpResponse r;
      r.body = options_.openapi_json;
      return r;
    }
    case RouteKind::kConsole:
      return Console(request, route->asset, outcome);
    case RouteKind::kToken:
      return Token(request, route->tenant, outcome);
    case RouteKind::kOperationStatus:
    case RouteKind::kOperationResult:
    case RouteKind::kArm:
    case RouteKind::kDownload:
      break;
  }
  StatusOr<auth::Principal> principal = Authenticate(request, route->kind == RouteKind::kDownload);
  if (!principal.ok()) {
    HttpResponse r = ErrorResponse(principal.status(), &outcome.error_code);
    r.headers.emplace_back("WWW-Authenticate",
                           "Bearer authorization_uri=\"" + BaseUrl(request, info) +
                               "/common/oauth2/v2.0/token\", error=\"invalid_token\"");
    return r;
  }
  outcome.principal = principal->object_id.empty() ? principal->name : principal->object_id;
  route->request.caller.principal = *principal;
  if (route->kind == RouteKind::kDownload) return Download(request, *route, outcome);
  if (route->kind != RouteKind::kArm) return Operation(request, info, *route, outcome);
  return Arm(request, info, *route, outcome);
}

StatusOr<auth::Principal> ArmHandler::Authenticate(const HttpRequest& request, bool query_token) {
  const std::string* header = request.Header("authorization");
  std::string from_query;
  if (header == nullptr && query_token) {
    if (const std::string* t = request.Query("access_token"); t != nullptr) {
      from_query = "Bearer " + *t;
      header = &from_query;
    }
  }
  if (header == nullptr) {
    return api::ArmStatus(StatusCode::kUnauthenticated, "AuthenticationFailed",
                          "Authentication failed. The 'Authorization' header is missing.");
  }
  if (header->size() < 8 || Lower(header->substr(0, 7)) != "bearer ") {
    return api::ArmStatus(StatusCode::kUnauthenticated, "AuthenticationFailed",
                          "Authentication failed. The 'Authorization' header is provided in an "
                          "invalid format; expected 'Bearer <token>'.");
  }
  std::string_view token = std::string_view(*header).substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (token.empty()) {
    return api::ArmStatus(StatusCode::kUnauthenticated, "AuthenticationFailed",
                          "Authentication failed. The bearer token is empty.");
  }
  // Per-thread cache of verified tokens (HandlerOptions::token_cache_seconds).
  struct Cached {
    auth::Principal principal;
    std::chrono::steady_clock::time_point until;
  };
  thread_local std::unordered_map<std::string, Cached> cache;
  thread_local const ArmHandler* cache_owner = nullptr;
  auto now = std::chrono::steady_clock::now();
  if (cache_owner != this) {
    cache.clear();
    cache_owner = this;
  }
  if (options_.token_cache_seconds > 0) {
    auto hit = cache.find(std::string(token));
    if (hit != cache.end() && now < hit->second.until) return hit->second.principal;
  }
  StatusOr<auth::Principal> p = options_.verify_token(services_.ForThisThread(), token);
  if (p.ok() && options_.token_cache_seconds > 0) {
    if (cache.size() >= 1024) cache.clear();
    cache[std::string(token)] = {*p, now + std::chrono::seconds(options_.token_cache_seconds)};
  }
  if (!p.ok() && p.status().code() != StatusCode::kUnauthenticated) {
    // A verifier that fails for another reason (the database) is not the
    // client's fault, but the client is still not authenticated.
    if (p.status().code() == StatusCode::kUnavailable ||
        p.status().code() == StatusCode::kInternal) {
      return p.status();
    }
    return Status(StatusCode::kUnauthenticated, p.status().message());
  }
  return p;
}

HttpResponse ArmHandler::Arm(const HttpRequest& request, const RequestInfo& info,
                             struct Route& route, Outcome& outcome) {
  api::Request& req = route.request;
  std::string type = req.verb == api::Verb::kList  ? req.list_type
                     : !req.extension_type.empty() ? req.extension_type
                                                   : req.id.FullType();
  const api::Provider* provider = registry_.Find(type);
  if (provider == nullptr) {
    outcome.route_template = "unmatched";
    return ErrorResponse(
        api::ArmStatus(StatusCode::kNotFound, "InvalidResourceType",
                       "The resource type '" + type.substr(0, 200) +
                           "' could not be found in the namespace; imagesmith provides " +
                           std::to_string(registry_.providers().size()) + " types."),
        &outcome.error_code);
  }
  outcome.route_template = CanonicalTemplate(route.route_template, provider->Type());
  if (Status s = CheckApiVersion(request, *provider); !s.ok()) {
    return ErrorResponse(s, &outcome.error_code);
  }
  if (req.verb == api::Verb::kPut || req.verb == api::Verb::kPatch ||
      req.verb == api::Verb::kAction) {
    StatusOr<Json> body = ParseBody(request);
    if (!body.ok()) return ErrorResponse(body.status(), &outcome.error_code);
    req.body = std::move(*body);
  }
  if (const std::string* v = request.Query("api-version")) req.api_version = *v;
  for (const auto& [name, value] : request.query) {
    std::string lower = Lower(name);
    if (lower == "api-version" || lower == "$top" || lower == "$skiptoken") continue;
    req.params.emplace(name, value);
  }
  if (const std::string* h = request.Header("if-match")) req.if_match = *h;
  if (const std::string* h = request.Header("if-none-match")) req.if_none_match = *h;
  req.wait = false;
  api::Services& services = services_.ForThisThread();
  // The read cache (HandlerOptions::cache_reads).
  struct CachedRead {
    int64_t change_counter;
    HttpResponse response;
  };
  thread_local std::unordered_map<std::string, CachedRead> reads;
  thread_local const ArmHandler* reads_owner = nullptr;
  std::string read_key;
  std::optional<int64_t> counter;
  if (options_.cache_reads && services.meta != nullptr &&
      (req.verb == api::Verb::kGet || req.verb == api::Verb::kList) &&
      !EqualsIgnoreCase(type.substr(0, type.find('/')), "Microsoft.VirtualMachineImages")) {
    if (reads_owner != this) {
      reads.clear();
      reads_owner = this;
    }
    StatusOr<int64_t> c = services.meta->ChangeCounter();
    if (c.ok()) {
      counter = *c;
      const std::string* host = request.Header("host");
      read_key = req.caller.principal.object_id + '\n' + req.caller.principal.name + '\n' +
                 (host != nullptr ? *host : std::string()) + '\n' + request.target;
      auto hit = reads.find(read_key);
      if (hit != reads.end() && hit->second.change_counter == *counter) {
        return hit->second.response;
      }
    }
  }
  StatusOr<api::Response> result = registry_.Dispatch(services, req);
  if (!result.ok()) {
    if (req.verb == api::Verb::kAction) {
      int code = api::ToArmError(result.status()).http_status;
      if (code == 404 || code == 405 || code == 400) {
        outcome.route_template =
            outcome.route_template.substr(0, outcome.route_template.rfind('/')) + "/{action}";
      }
    }
    return ErrorResponse(result.status(), &outcome.error_code);
  }
  api::Response& r = *result;
  if (req.verb == api::Verb::kList) {
    if (Status s = Page(request, info, options_.max_page_size, r.body); !s.ok()) {
      return ErrorResponse(s, &outcome.error_code);
    }
  }
  HttpResponse out = JsonResponse(r.http_status, r.body);
  if (!r.etag.empty()) out.headers.emplace_back("ETag", r.etag);
  if (!r.operation_id.empty()) {
    std::string location = "global";
    const Json* loc = r.body.is_object() ? r.body.Find("location") : nullptr;
    if (loc == nullptr && req.body.is_object()) loc = req.body.Find("location");
    if (loc != nullptr && loc->is_string() && ValidatePathName("l", loc->string_value()).ok()) {
      location = loc->string_value();
    }
    std::string version;
    if (const std::string* v = request.Query("api-version")) version = *v;
    // The namespace of the operation's ID (Operation::ArmId): a version's
    // replication is Microsoft.Compute's, a template run
    // Microsoft.VirtualMachineImages'.
    std::string ns = req.id.kind() == ResourceId::Kind::kResource &&
                             EqualsIgnoreCase(req.id.provider_namespace(), "Microsoft.Compute")
                         ? "Microsoft.Compute"
                         : "Microsoft.VirtualMachineImages";
    std::string base = BaseUrl(request, info) + "/subscriptions/" + req.id.subscription() +
                       "/providers/" + ns + "/locations/" + location;
    std::string query = "?api-version=" + UrlEncode(version);
    out.headers.emplace_back("Azure-AsyncOperation",
                             base + "/operations/" + r.operation_id + query);
    out.headers.emplace_back("Location", base + "/operationResults/" + r.operation_id + query);
    out.headers.emplace_back("Retry-After", "1");
  }
  if (counter.has_value() && out.status == 200) {
    if (reads.size() >= 512) reads.clear();
    reads[read_key] = CachedRead{*counter, out};
  }
  return out;
}

HttpResponse ArmHandler::Operation(const HttpRequest& request, const RequestInfo& info,
                                   const struct Route& route, Outcome& outcome) {
  if (!options_.operation_status) {
    return ErrorResponse(api::ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                                        "this server runs no durable operations"),
                         &outcome.error_code);
  }
  StatusOr<Json> status = options_.operation_status(route.subscription, route.operation_id);
  if (!status.ok()) return ErrorResponse(status.status(), &outcome.error_code);
  const Json* state = status->is_object() ? status->Find("status") : nullptr;
  bool running = state == nullptr || !state->is_string() || state->string_value() == "InProgress" ||
                 state->string_value() == "Running";
  if (route.kind == RouteKind::kOperationResult && running) {
    HttpResponse r;
    r.status = 202;
    r.headers.emplace_back("Location", BaseUrl(request, info) + request.target);
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  return JsonResponse(200, *status);
}

namespace {

// A single byte range of a file of `size` bytes from a Range header
// ("bytes=A-B", "bytes=A-", "bytes=-N"). nullopt: serve the whole file (no
// header, another unit, or several ranges, which RFC 9110 lets a server
// ignore). {size, 0} marks an unsatisfiable range (416).
std::optional<std::pair<uint64_t, uint64_t>> ParseRange(const std::string* header, uint64_t size) {
  if (header == nullptr) return std::nullopt;
  std::string h = *header;
  if (h.rfind("bytes=", 0) != 0 || h.find(',') != std::string::npos) return std::nullopt;
  std::string spec = h.substr(6);
  size_t dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  auto number = [](const std::string& t, uint64_t* out) {
    if (t.empty() || t.size() > 19) return false;
    for (char c : t) {
      if (c < '0' || c > '9') return false;
    }
    *out = std::stoull(t);
    return true;
  };
  uint64_t first = 0, last = 0;
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  if (a.empty()) {
    uint64_t suffix = 0;
    if (!number(b, &suffix)) return std::nullopt;
    if (suffix == 0 || size == 0) return std::make_pair(size, uint64_t{0});
    first = suffix >= size ? 0 : size - suffix;
    return std::make_pair(first, size - first);
  }
  if (!number(a, &first)) return std::nullopt;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!number(b, &last) || last < first) {
    return std::nullopt;
  }
  if (first >= size) return std::make_pair(size, uint64_t{0});
  if (last >= size) last = size - 1;
  return std::make_pair(first, last - first + 1);
}

}  // namespace

HttpResponse ArmHandler::Download(const HttpRequest& request, const struct Route& route,
                                  Outcome& outcome) {
  const ResourceId& id = route.request.id;
  const api::Provider* provider = registry_.Find(id.FullType());
  if (provider == nullptr) {
    return ErrorResponse(api::ArmStatus(StatusCode::kNotFound, "InvalidResourceType",
                                        "The resource type '" + id.FullType().substr(0, 200) +
                                            "' could not be found in the namespace"),
                         &outcome.error_code);
  }
  outcome.route_template = CanonicalTemplate(route.route_template, provider->Type());
  if (Status s = CheckApiVersion(request, *provider); !s.ok()) {
    return ErrorResponse(s, &outcome.error_code);
  }
  if (!options_.download) {
    return ErrorResponse(
        api::ArmStatus(StatusCode::kNotFound, "NotFound", "this server serves no downloads"),
        &outcome.error_code);
  }
  std::map<std::string, std::string> params;
  for (const auto& [name, value] : request.query) {
    std::string lower = Lower(name);
    if (lower == "api-version" || lower == "access_token") continue;
    params.emplace(name, value);
  }
  StatusOr<DownloadTarget> target =
      options_.download(services_.ForThisThread(), route.request.caller, id, params);
  if (!target.ok()) return ErrorResponse(target.status(), &outcome.error_code);
  int fd = ::open(target->path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    return ErrorResponse(api::ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                                        "the file to download is gone from the server"),
                         &outcome.error_code);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.headers.emplace_back("Accept-Ranges", "bytes");
  std::string name;
  for (char c : target->file_name) {
    name +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  }
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + name + "\"");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  uint64_t first = 0, length = size;
  if (auto range = ParseRange(request.Header("range"), size); range.has_value()) {
    if (range->first >= size) {
      ::close(fd);
      HttpResponse bad = ErrorResponse(
          api::ArmStatus(StatusCode::kInvalidArgument, "InvalidRange",
                         "the range is outside the file (" + std::to_string(size) + " bytes)"),
          &outcome.error_code);
      bad.status = 416;
      bad.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
      return bad;
    }
    first = range->first;
    length = range->second;
    r.status = 206;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" +
                                                std::to_string(first + length - 1) + "/" +
                                                std::to_string(size));
  }
  r.file_body = std::make_shared<FileBody>(fd, first, length);
  return r;
}

HttpResponse ArmHandler::Console(const HttpRequest& request, const std::string& name,
                                 Outcome& outcome) {
  const ConsoleAsset* asset = options_.serve_console ? FindConsoleAsset(name) : nullptr;
  if (asset == nullptr) {
    return ErrorResponse(
        api::ArmStatus(StatusCode::kNotFound, "NotFound",
                       options_.serve_console
                           ? "the console has no file '" + SanitizeUtf8(name.substr(0, 100)) + "'"
                           : "this server does not serve the web console"),
        &outcome.error_code);
  }
  HttpResponse r;
  r.content_type = std::string(asset->content_type);
  const std::string* accept = request.Header("accept-encoding");
  if (accept != nullptr && Lower(*accept).find("gzip") != std::string::npos) {
    r.body = std::string(asset->gzip);
    r.headers.emplace_back("Content-Encoding", "gzip");
  } else {
    r.body = std::string(asset->data);
  }
  r.headers.emplace_back("Vary", "Accept-Encoding");
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // Only its own files: no inline script, nothing from elsewhere.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                         "form-action 'none'; frame-ancestors 'none'");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

HttpResponse ArmHandler::Token(const HttpRequest& request, const std::string& tenant,
                               Outcome& outcome) {
  auto oauth_error = [&](int status, const std::string& error, const std::string& description) {
    Json body = Json::MakeObject();
    body.Set("error", Json::String(error));
    body.Set("error_description", Json::String(description));
    outcome.error_code = error;
    return JsonResponse(status, body);
  };
  if (!options_.issue_token) {
    return oauth_error(501, "temporarily_unavailable",
                       "this server does not issue tokens (no identity provider configured)");
  }
  TokenAnswer answer = options_.issue_token(services_.ForThisThread(), tenant, request.body);
  if (answer.http_status >= 400) {
    const Json* error = answer.body.is_object() ? answer.body.Find("error") : nullptr;
    outcome.error_code = error != nullptr && error->is_string() ? error->string_value() : "Error";
  }
  HttpResponse r = JsonResponse(answer.http_status, answer.body);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Pragma", "no-cache");
  return r;
}

}  // namespace imagesmith::server
