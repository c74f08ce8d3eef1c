#include "auth/secret.h"

#include <charconv>

#include "auth/crypto.h"
#include "base/strings.h"

namespace imagesmith::auth {
namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;

}  // namespace

StatusOr<std::string> NewClientSecret() {
  ASSIGN_OR_RETURN(std::string bytes, RandomBytes(30));
  return Base64UrlEncode(bytes);
}

StatusOr<std::string> HashSecret(std::string_view secret, int iterations) {
  ASSIGN_OR_RETURN(std::string salt, RandomBytes(kSaltBytes));
  std::string hash = Pbkdf2Sha256(secret, salt, iterations, kHashBytes);
  return std::string(kScheme) + "$" + std::to_string(iterations) + "$" + Base64UrlEncode(salt) +
         "$" + Base64UrlEncode(hash);
}

StatusOr<bool> VerifySecret(std::string_view secret, std::string_view stored) {
  std::vector<std::string> parts = Split(stored, '$');
  auto damaged = [](const std::string& why) {
    return InvalidArgumentError("the stored secret hash is damaged: " + why);
  };
  if (parts.size() != 4 || parts[0] != kScheme) {
    return damaged("expected pbkdf2-sha256$ITERATIONS$SALT$HASH");
  }
  int iterations = 0;
  auto [p, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), iterations);
  if (ec != std::errc() || p != parts[1].data() + parts[1].size() || iterations < 1 ||
      iterations > 10000000) {
    return damaged("the iteration count " + QuoteForMessage(parts[1]) + " is not 1-10000000");
  }
  auto salt = Base64UrlDecode(parts[2]);
  auto hash = Base64UrlDecode(parts[3]);
  if (!salt.ok() || !hash.ok() || hash->empty())
    return damaged("the salt or hash is not base64url");
  std::string computed = Pbkdf2Sha256(secret, *salt, iterations, hash->size());
  return ConstantTimeEquals(computed, *hash);
}

}  // namespace imagesmith::auth
