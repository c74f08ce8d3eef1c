// Where the server's identity functions come from: the bearer-token check
// every ARM request goes through, and the client-credentials grant of
// POST /{tenant}/oauth2/v2.0/token. These are the only two places the server
// depends on how tokens are made; the auth layer (src/auth/) provides them.
//
// Until the auth layer's token functions are merged, the verifier accepts
// exactly one token, the value of the environment variable
// IMAGESMITH_SERVE_DEV_TOKEN (at least 32 characters), as the data
// directory's owner, and nothing else; without it every request is 401. The
// issuer is empty (the token route answers 501).
#pragma once

#include "api/local.h"
#include "server/handler.h"

namespace imagesmith::server {

// Both borrow `local`, which must outlive them.
TokenVerifier MakeTokenVerifier(api::Local& local);
TokenIssuer MakeTokenIssuer(api::Local& local);

// The openapi.json document embedded in the binary.
extern const char kOpenApiJson[];

}  // namespace imagesmith::server
