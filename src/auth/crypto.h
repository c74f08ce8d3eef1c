// The cryptographic pieces auth needs, on OpenSSL: random bytes from the
// kernel's CSPRNG, HMAC-SHA256, PBKDF2-SHA256, base64url (RFC 4648 section 5,
// no padding) and a constant-time comparison. Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/statusor.h"

namespace imagesmith::auth {

// `n` bytes from OpenSSL's CSPRNG. Internal on failure (the entropy source is
// unavailable); callers must not fall back to weaker randomness.
StatusOr<std::string> RandomBytes(size_t n);

// HMAC-SHA256 of `data` under `key`: 32 raw bytes.
std::string HmacSha256(std::string_view key, std::string_view data);

// PBKDF2 with HMAC-SHA256: `length` raw bytes derived from `password` and
// `salt` with `iterations` rounds.
std::string Pbkdf2Sha256(std::string_view password, std::string_view salt, int iterations,
                         size_t length);

// Base64url without padding, and its inverse. Decoding rejects characters
// outside the alphabet, padding and impossible lengths (InvalidArgument).
std::string Base64UrlEncode(std::string_view bytes);
StatusOr<std::string> Base64UrlDecode(std::string_view text);

// True when a == b, in time that depends only on the lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace imagesmith::auth
