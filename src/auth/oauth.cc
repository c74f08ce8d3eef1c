#include "auth/oauth.h"

#include <ctime>

#include "auth/directory.h"
#include "base/random.h"
#include "base/strings.h"

namespace imagesmith::auth {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

StatusOr<std::string> Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return InvalidArgumentError("a '%' in the form body is not followed by two hex digits");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string IsoUtc(int64_t us) {
  time_t t = static_cast<time_t>(us / 1000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

// Entra ID's error body.
OAuthResponse Error(Env& env, int http_status, const std::string& error, int code,
                    const std::string& description) {
  std::string trace = NewUuidV4();
  std::string correlation = NewUuidV4();
  std::string stamp = IsoUtc(env.NowMicros());
  Json body = Json::MakeObject();
  body.Set("error", Json::String(error));
  body.Set("error_description",
           Json::String(description + "\r\nTrace ID: " + trace +
                        "\r\nCorrelation ID: " + correlation + "\r\nTimestamp: " + stamp));
  Json codes = Json::MakeArray();
  codes.Append(Json::Int(code));
  body.Set("error_codes", std::move(codes));
  body.Set("timestamp", Json::String(stamp));
  body.Set("trace_id", Json::String(trace));
  body.Set("correlation_id", Json::String(correlation));
  return {http_status, std::move(body)};
}

OAuthResponse Missing(Env& env, const std::string& param) {
  return Error(
      env, 400, "invalid_request", 900144,
      "AADSTS900144: The request body must contain the following parameter: '" + param + "'.");
}

}  // namespace

StatusOr<std::map<std::string, std::string>> ParseFormUrlEncoded(std::string_view body) {
  std::map<std::string, std::string> out;
  for (const std::string& pair : Split(body, '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    ASSIGN_OR_RETURN(std::string k, Unescape(std::string_view(pair).substr(0, eq)));
    std::string v;
    if (eq != std::string::npos) {
      ASSIGN_OR_RETURN(v, Unescape(std::string_view(pair).substr(eq + 1)));
    }
    out[k] = v;
  }
  return out;
}

OAuthResponse HandleClientCredentials(Env& env, meta::MetaStore& meta, const SigningKey& key,
                                      std::string_view tenant, std::string_view form_body) {
  if (form_body.size() > 64 * 1024) {
    return Error(env, 400, "invalid_request", 90020, "AADSTS90020: The request body is too large.");
  }
  auto form = ParseFormUrlEncoded(form_body);
  if (!form.ok()) {
    return Error(
        env, 400, "invalid_request", 900144,
        "AADSTS900144: The request body is not valid form data: " + form.status().message());
  }
  auto get = [&](const char* k) -> const std::string* {
    auto it = form->find(k);
    return it == form->end() || it->second.empty() ? nullptr : &it->second;
  };
  const std::string* grant = get("grant_type");
  if (grant == nullptr) return Missing(env, "grant_type");
  if (*grant != "client_credentials") {
    return Error(env, 400, "unsupported_grant_type", 70003,
                 "AADSTS70003: The app requested an unsupported grant type '" + *grant +
                     "'. Only client_credentials is supported.");
  }
  const std::string* client_id = get("client_id");
  if (client_id == nullptr) return Missing(env, "client_id");
  const std::string* secret = get("client_secret");
  if (secret == nullptr) {
    return Error(env, 401, "invalid_client", 7000218,
                 "AADSTS7000218: The request body must contain the following parameter: "
                 "'client_assertion' or 'client_secret'.");
  }
  const std::string* scope = get("scope");
  if (scope == nullptr) return Missing(env, "scope");
  if (!EndsWith(*scope, "/.default")) {
    return Error(env, 400, "invalid_scope", 1002012,
                 "AADSTS1002012: The provided value for scope " + *scope +
                     " is not valid. Client credential flows must have a scope value with "
                     "/.default suffixed to the resource identifier (application ID URI).");
  }
  OAuthResponse out;
  Status s = meta.Read([&](meta::Transaction& txn) -> Status {
    auto dir = ReadDirectory(txn);
    if (!dir.ok() || !EqualsIgnoreCase(dir->tenant_id, tenant)) {
      out = Error(env, 400, "invalid_request", 90002,
                  "AADSTS90002: Tenant '" + std::string(tenant.substr(0, 64)) +
                      "' not found. Check to make sure you have the correct tenant ID "
                      "('imagesmith account get-access-token' prints it as 'tenant').");
      return Status::Ok();
    }
    auto principal = AuthenticateServicePrincipal(txn, *client_id, *secret);
    if (!principal.ok()) {
      if (principal.status().code() != StatusCode::kUnauthenticated) return principal.status();
      bool unknown_app = StartsWith(principal.status().message(), "AADSTS700016");
      out = unknown_app
                ? Error(env, 400, "unauthorized_client", 700016, principal.status().message())
                : Error(env, 401, "invalid_client", 7000215, principal.status().message());
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(IssuedToken t, IssueToken(txn, key, *principal, env.NowMicros() / 1000000));
    Json body = Json::MakeObject();
    body.Set("token_type", Json::String("Bearer"));
    body.Set("expires_in", Json::Int(t.expires_on - t.claims.iat - 1));
    body.Set("ext_expires_in", Json::Int(t.expires_on - t.claims.iat - 1));
    body.Set("access_token", Json::String(t.access_token));
    out = {200, std::move(body)};
    return Status::Ok();
  });
  if (!s.ok()) {
    return Error(env, 500, "temporarily_unavailable", 50000,
                 "AADSTS50000: There was an error issuing a token: " + s.message());
  }
  return out;
}

}  // namespace imagesmith::auth
