// Fuzzes what an unauthenticated client controls in auth: the bearer token
// (auth::VerifyTokenClaims), the token endpoint's form body
// (auth::ParseFormUrlEncoded), role assignment IDs
// (auth::ParseRoleAssignmentId) and base64url. Any input must give an answer,
// never a crash or a hang, and:
//   - a token that verifies has nbf <= now < exp and non-empty oid and tid;
//   - base64url that decodes encodes back to the same text (one encoding per
//     byte string, so signatures cannot be malleated);
//   - a role assignment ID that parses prints back as
//     {scope}/providers/Microsoft.Authorization/roleAssignments/{name}.
// The input is split at the first NUL byte into a token and a second string
// used as form body, ID and action pattern.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/crypto.h"
#include "auth/oauth.h"
#include "auth/role_assignments.h"
#include "auth/roles.h"
#include "auth/token.h"
#include "base/strings.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imagesmith;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view token = in.substr(0, nul);
  std::string_view rest = nul == std::string_view::npos ? "" : in.substr(nul + 1);

  // The key the corpus's valid tokens are signed with.
  static const auth::SigningKey key = auth::SigningKey::FromBytes(std::string(32, 'k'));
  constexpr int64_t kNow = 1800000000;
  auto claims = auth::VerifyTokenClaims(key, token, kNow);
  if (claims.ok()) {
    if (!(claims->nbf <= kNow && kNow < claims->exp) || claims->oid.empty() ||
        claims->tid.empty()) {
      abort();
    }
  } else if (claims.status().code() != StatusCode::kUnauthenticated) {
    abort();
  }

  auto decoded = auth::Base64UrlDecode(token);
  if (decoded.ok() && auth::Base64UrlEncode(*decoded) != token) abort();

  (void)auth::ParseFormUrlEncoded(rest);
  auto ref = auth::ParseRoleAssignmentId(rest, /*allow_no_name=*/true);
  if (ref.ok()) {
    std::string printed =
        ref->scope.ToString() + "/providers/Microsoft.Authorization/roleAssignments";
    if (!ref->name.empty()) printed += "/" + ref->name;
    if (!EqualsIgnoreCase(printed, rest) && !EqualsIgnoreCase(printed + "/", rest)) abort();
  }
  (void)auth::ActionMatches(rest.substr(0, 256), token.substr(0, 256));
  return 0;
}
