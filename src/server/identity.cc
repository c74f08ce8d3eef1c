#include "server/identity.h"

#include <cstdlib>
#include <string>

#include "api/arm_error.h"

namespace imagesmith::server {

TokenVerifier MakeTokenVerifier(api::Local& local) {
  const char* dev = std::getenv("IMAGESMITH_SERVE_DEV_TOKEN");
  std::string expected = dev != nullptr && std::string(dev).size() >= 32 ? dev : "";
  auth::Principal owner = local.owner.principal;
  return [expected, owner](api::Services&, std::string_view token) -> StatusOr<auth::Principal> {
    // Constant-time comparison, so the token cannot be guessed byte by byte.
    if (!expected.empty() && token.size() == expected.size()) {
      unsigned char diff = 0;
      for (size_t i = 0; i < token.size(); ++i) {
        diff |= static_cast<unsigned char>(token[i] ^ expected[i]);
      }
      if (diff == 0) return owner;
    }
    return api::ArmStatus(StatusCode::kUnauthenticated, "InvalidAuthenticationToken",
                          "The access token is invalid.");
  };
}

TokenIssuer MakeTokenIssuer(api::Local&) { return nullptr; }

}  // namespace imagesmith::server
