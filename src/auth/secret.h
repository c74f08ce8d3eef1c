// Client secrets: generated, shown once, and stored only as a salted slow
// hash. The stored form is one string,
//   pbkdf2-sha256$<iterations>$<salt, base64url>$<hash, base64url>
// (16-byte random salt, 32-byte PBKDF2-HMAC-SHA256 output), so the iteration
// count can be raised later without breaking existing secrets.
// Stateless and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "base/statusor.h"

namespace imagesmith::auth {

// Iterations for new hashes: ~40 ms per check on this machine, which makes
// guessing from a stolen database expensive and a login still quick.
inline constexpr int kSecretIterations = 100000;

// A new client secret: 40 characters of base64url from 30 random bytes
// (240 bits), the length Entra ID's secrets have.
StatusOr<std::string> NewClientSecret();

// The stored form of `secret` with a fresh random salt.
StatusOr<std::string> HashSecret(std::string_view secret, int iterations = kSecretIterations);

// True when `secret` matches `stored` (a HashSecret result). A damaged
// `stored` string is InvalidArgument; the comparison is constant-time.
StatusOr<bool> VerifySecret(std::string_view secret, std::string_view stored);

}  // namespace imagesmith::auth
