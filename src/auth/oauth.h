// The OAuth 2.0 client-credentials token endpoint, shaped like Microsoft
// Entra ID's:
//
//   POST /{tenant}/oauth2/v2.0/token
//   Content-Type: application/x-www-form-urlencoded
//   grant_type=client_credentials&client_id=APPID&client_secret=SECRET
//     &scope=https%3A%2F%2Fmanagement.azure.com%2F.default
//
// answered with {"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,
// "access_token":"..."} or Entra ID's error body {"error","error_description",
// "error_codes","timestamp","trace_id","correlation_id"}. The HTTP server
// (src/server/) owns the route and calls HandleClientCredentials.
//
// Thread-safe: one read transaction per call.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "auth/token.h"
#include "base/env.h"
#include "base/json.h"
#include "meta/meta_store.h"

namespace imagesmith::auth {

struct OAuthResponse {
  int http_status = 200;  // 200, 400 (invalid_request, ...) or 401 (invalid_client)
  Json body;
};

// Handles one token request. `tenant` is the path segment (this directory's
// tenant ID; "organizations" / "common" are refused as Entra ID refuses them
// for client credentials), `form_body` the urlencoded request body. Never
// fails: every problem is an Entra-shaped error body. The secret is checked
// with a slow hash and never appears in any answer.
OAuthResponse HandleClientCredentials(Env& env, meta::MetaStore& meta, const SigningKey& key,
                                      std::string_view tenant, std::string_view form_body);

// Parses application/x-www-form-urlencoded text ('+' is a space, %XX an
// octet). InvalidArgument on a bad % escape. Later duplicates win.
StatusOr<std::map<std::string, std::string>> ParseFormUrlEncoded(std::string_view body);

}  // namespace imagesmith::auth
