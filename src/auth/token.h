// Bearer tokens: JWT-shaped (RFC 7519), HMAC-SHA256 signed, expiring.
//
//   base64url({"alg":"HS256","typ":"JWT"}) . base64url(claims) . base64url(HMAC-SHA256)
//
// Claims, as Entra ID's access tokens name them: aud
// ("https://management.azure.com/"), iss ("https://sts.imagesmith.local/{tid}/"),
// iat, nbf, exp (seconds since the epoch), oid (the principal's object ID),
// sub (= oid), tid (the tenant), idtyp ("user" or "app"), and upn (users) or
// appid (service principals). The signing key is 32 random bytes in
// {data_dir}/token-signing.key (mode 0600), made at first use; deleting the
// file revokes every token. The format is described in doc/auth.md.
//
// Thread-safe (no shared state; the key is an immutable value).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "auth/principal.h"
#include "base/env.h"
#include "base/statusor.h"
#include "meta/meta_store.h"

namespace imagesmith::auth {

inline constexpr int64_t kDefaultTokenLifetimeSeconds = 3600;

// The HMAC key. Copyable value; never printed.
class SigningKey {
 public:
  // Reads {data_dir}/token-signing.key, creating it (mode 0600, atomically,
  // so concurrent first uses agree on one key) when it does not exist.
  // Errors name the file.
  static StatusOr<SigningKey> LoadOrCreate(const std::string& data_dir);
  // For tests: a key from given bytes.
  static SigningKey FromBytes(std::string bytes) { return SigningKey(std::move(bytes)); }

  const std::string& bytes() const { return bytes_; }

 private:
  explicit SigningKey(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

struct TokenClaims {
  std::string oid;
  std::string tid;
  std::string upn;    // users
  std::string appid;  // service principals
  std::string idtyp;  // "user" or "app"
  int64_t iat = 0;
  int64_t nbf = 0;
  int64_t exp = 0;
};

// The signed token for `claims`.
std::string SignToken(const SigningKey& key, const TokenClaims& claims);

// Checks the shape, the algorithm (only HS256; "none" and anything else are
// rejected), the signature (constant-time), nbf and exp against `now_s`.
// Unauthenticated with the ARM code InvalidAuthenticationToken (malformed,
// wrong algorithm, bad signature, not yet valid) or ExpiredAuthenticationToken
// (exp <= now).
StatusOr<TokenClaims> VerifyTokenClaims(const SigningKey& key, std::string_view token,
                                        int64_t now_s);

// VerifyTokenClaims, then the principal named by oid must still exist in the
// directory (a deleted service principal's tokens stop working) and tid must
// be this directory's tenant; otherwise InvalidAuthenticationToken.
StatusOr<Principal> VerifyToken(meta::Transaction& txn, const SigningKey& key,
                                std::string_view token, int64_t now_s);

// The value of an Authorization header -> the principal. A missing header or
// one that is not "Bearer <token>" is Unauthenticated with the ARM code
// AuthenticationFailed; then VerifyToken.
StatusOr<Principal> AuthenticateBearer(meta::Transaction& txn, const SigningKey& key,
                                       std::string_view authorization_header, int64_t now_s);

struct IssuedToken {
  std::string access_token;
  int64_t expires_on = 0;  // seconds since the epoch
  std::string tenant;
  TokenClaims claims;
};

// A token for `principal` (its object_id set) in this directory's tenant,
// valid from `now_s` for `lifetime_s` seconds.
StatusOr<IssuedToken> IssueToken(meta::Transaction& txn, const SigningKey& key,
                                 const Principal& principal, int64_t now_s,
                                 int64_t lifetime_s = kDefaultTokenLifetimeSeconds);

}  // namespace imagesmith::auth
