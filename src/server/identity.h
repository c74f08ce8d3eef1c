// Where the server's identity functions come from: the bearer-token check
// every ARM request goes through, and the client-credentials grant of
// POST /{tenant}/oauth2/v2.0/token. These are the only two places the server
// depends on how tokens are made; the auth layer provides them
// (auth/token.h: signed, expiring tokens checked against the directory;
// auth/oauth.h: the Entra-shaped token endpoint). The signing key is
// {data_dir}/token-signing.key, read once when the server starts.
#pragma once

#include "api/local.h"
#include "server/handler.h"

namespace imagesmith::server {

// Both borrow nothing from `local` after they return but its data directory
// name; they run on the Services the handler passes them.
TokenVerifier MakeTokenVerifier(api::Local& local);
TokenIssuer MakeTokenIssuer(api::Local& local);

// The openapi.json document embedded in the binary.
extern const char kOpenApiJson[];

}  // namespace imagesmith::server
