#include "auth/token.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "auth/crypto.h"
#include "auth/directory.h"
#include "base/json.h"
#include "base/strings.h"

namespace imagesmith::auth {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr const char* kKeyFile = "token-signing.key";
constexpr const char* kAudience = "https://management.azure.com/";

Status Invalid(const std::string& why) {
  return Status(StatusCode::kUnauthenticated,
                "InvalidAuthenticationToken: The access token is invalid: " + why);
}

std::string Str(const Json& o, std::string_view key) {
  const Json* v = o.Find(key);
  return v != nullptr && v->is_string() ? v->string_value() : std::string();
}

std::string IsoUtc(int64_t s) {
  time_t t = static_cast<time_t>(s);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

StatusOr<std::string> ReadKeyFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening the token signing key " + path, errno);
  std::string bytes(kKeyBytes + 1, '\0');
  ssize_t n = read(fd, bytes.data(), bytes.size());
  int err = errno;
  close(fd);
  if (n < 0) return ErrnoError("reading the token signing key " + path, err);
  if (static_cast<size_t>(n) != kKeyBytes) {
    return DataLossError("the token signing key " + path + " is " + std::to_string(n) +
                         " bytes long, not " + std::to_string(kKeyBytes) +
                         "; delete it to make a new one (every issued token stops working)");
  }
  bytes.resize(kKeyBytes);
  return bytes;
}

}  // namespace

// POSIX calls rather than Env: Env has no way to create a file with mode
// 0600 from the start, nor to install a file without replacing an existing
// one (link), and a key file that is briefly world-readable or replaced
// under a running server would be a security bug.
StatusOr<SigningKey> SigningKey::LoadOrCreate(const std::string& data_dir) {
  std::string path = JoinPath(data_dir, kKeyFile);
  auto existing = ReadKeyFile(path);
  if (existing.ok()) return SigningKey(*existing);
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  // Write a new key to a private temporary file, then link it into place:
  // link() fails if another process won the race, and then its key is used.
  ASSIGN_OR_RETURN(std::string key, RandomBytes(kKeyBytes));
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("creating the token signing key " + tmp, errno);
  bool ok = write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok) {
    unlink(tmp.c_str());
    return ErrnoError("writing the token signing key " + tmp, err);
  }
  int linked = link(tmp.c_str(), path.c_str());
  err = errno;
  unlink(tmp.c_str());
  if (linked != 0 && err != EEXIST) {
    return ErrnoError("installing the token signing key " + path, err);
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadKeyFile(path));
  return SigningKey(bytes);
}

std::string SignToken(const SigningKey& key, const TokenClaims& c) {
  Json header = Json::MakeObject();
  header.Set("alg", Json::String("HS256"));
  header.Set("typ", Json::String("JWT"));
  Json body = Json::MakeObject();
  body.Set("aud", Json::String(kAudience));
  body.Set("iss", Json::String("https://sts.imagesmith.local/" + c.tid + "/"));
  body.Set("iat", Json::Int(c.iat));
  body.Set("nbf", Json::Int(c.nbf));
  body.Set("exp", Json::Int(c.exp));
  body.Set("oid", Json::String(c.oid));
  body.Set("sub", Json::String(c.oid));
  body.Set("tid", Json::String(c.tid));
  body.Set("idtyp", Json::String(c.idtyp));
  if (!c.upn.empty()) body.Set("upn", Json::String(c.upn));
  if (!c.appid.empty()) body.Set("appid", Json::String(c.appid));
  body.Set("ver", Json::String("1.0"));
  std::string signing_input =
      Base64UrlEncode(header.Dump(-1)) + "." + Base64UrlEncode(body.Dump(-1));
  return signing_input + "." + Base64UrlEncode(HmacSha256(key.bytes(), signing_input));
}

StatusOr<TokenClaims> VerifyTokenClaims(const SigningKey& key, std::string_view token,
                                        int64_t now_s) {
  if (token.size() > 8192) return Invalid("it is longer than 8192 characters");
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Invalid("it is not three base64url parts separated by '.' (header.payload.signature)");
  }
  std::string_view header_part = token.substr(0, dot1);
  std::string_view body_part = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view sig_part = token.substr(dot2 + 1);
  auto header_text = Base64UrlDecode(header_part);
  if (!header_text.ok()) return Invalid("the header is " + header_text.status().message());
  auto header = ParseJson(*header_text, JsonParseOptions{.allow_comments = false, .max_depth = 4});
  if (!header.ok() || !header->is_object()) return Invalid("the header is not a JSON object");
  // Only HS256: a token that names "none" or another algorithm is never
  // accepted, whatever its signature part holds.
  if (Str(*header, "alg") != "HS256") {
    return Invalid("the signing algorithm " + QuoteForMessage(Str(*header, "alg")) +
                   " is not accepted (only HS256)");
  }
  auto sig = Base64UrlDecode(sig_part);
  if (!sig.ok()) return Invalid("the signature is " + sig.status().message());
  std::string signing_input(token.substr(0, dot2));
  if (!ConstantTimeEquals(*sig, HmacSha256(key.bytes(), signing_input))) {
    return Invalid(
        "the signature does not match (the token was changed, or was not issued by "
        "this data directory)");
  }
  auto body_text = Base64UrlDecode(body_part);
  if (!body_text.ok()) return Invalid("the payload is " + body_text.status().message());
  auto body = ParseJson(*body_text, JsonParseOptions{.allow_comments = false, .max_depth = 4});
  if (!body.ok() || !body->is_object()) return Invalid("the payload is not a JSON object");
  TokenClaims c;
  c.oid = Str(*body, "oid");
  c.tid = Str(*body, "tid");
  c.upn = Str(*body, "upn");
  c.appid = Str(*body, "appid");
  c.idtyp = Str(*body, "idtyp");
  auto num = [&](const char* k) -> std::optional<int64_t> {
    const Json* v = body->Find(k);
    return v == nullptr ? std::nullopt : v->AsInt64();
  };
  auto iat = num("iat"), nbf = num("nbf"), exp = num("exp");
  if (!iat || !nbf || !exp || c.oid.empty() || c.tid.empty()) {
    return Invalid("a claim is missing (iat, nbf, exp, oid and tid are required)");
  }
  if (Str(*body, "aud") != kAudience)
    return Invalid("the audience (aud) is not " + std::string(kAudience));
  c.iat = *iat;
  c.nbf = *nbf;
  c.exp = *exp;
  if (now_s < c.nbf) {
    return Invalid("it is not valid before " + IsoUtc(c.nbf) + " (now " + IsoUtc(now_s) + ")");
  }
  if (now_s >= c.exp) {
    return Status(StatusCode::kUnauthenticated,
                  "ExpiredAuthenticationToken: The access token expiry UTC time '" + IsoUtc(c.exp) +
                      "' is earlier than current UTC time '" + IsoUtc(now_s) +
                      "'. Get a new one with 'imagesmith account get-access-token'.");
  }
  return c;
}

StatusOr<Principal> VerifyToken(meta::Transaction& txn, const SigningKey& key,
                                std::string_view token, int64_t now_s) {
  ASSIGN_OR_RETURN(TokenClaims c, VerifyTokenClaims(key, token, now_s));
  auto dir = ReadDirectory(txn);
  if (!dir.ok() || !EqualsIgnoreCase(dir->tenant_id, c.tid)) {
    return Invalid("it was issued for the tenant '" + c.tid + "', not this one");
  }
  auto p = FindPrincipal(txn, c.oid);
  if (p.status().code() == StatusCode::kNotFound) {
    return Invalid("its principal '" + c.oid + "' no longer exists");
  }
  return p;
}

StatusOr<Principal> AuthenticateBearer(meta::Transaction& txn, const SigningKey& key,
                                       std::string_view header, int64_t now_s) {
  header = TrimWhitespace(header);
  if (header.empty()) {
    return Status(StatusCode::kUnauthenticated,
                  "AuthenticationFailed: Authentication failed. The 'Authorization' header is "
                  "missing. Get a token with 'imagesmith account get-access-token'.");
  }
  if (!StartsWithIgnoreCase(header, "Bearer ")) {
    size_t sp = header.find(' ');
    return Status(StatusCode::kUnauthenticated,
                  "AuthenticationFailed: Authentication failed. The authentication scheme of " +
                      std::string(header.substr(0, std::min<size_t>(sp, 20))) +
                      " is not supported; use 'Bearer <token>'.");
  }
  return VerifyToken(txn, key, TrimWhitespace(header.substr(7)), now_s);
}

StatusOr<IssuedToken> IssueToken(meta::Transaction& txn, const SigningKey& key,
                                 const Principal& principal, int64_t now_s, int64_t lifetime_s) {
  if (principal.object_id.empty()) {
    return InternalError("a token needs the principal's object ID");
  }
  ASSIGN_OR_RETURN(DirectoryInfo dir, ReadDirectory(txn));
  IssuedToken t;
  t.claims.oid = principal.object_id;
  t.claims.tid = dir.tenant_id;
  t.claims.iat = t.claims.nbf = now_s;
  t.claims.exp = now_s + lifetime_s;
  if (principal.kind == PrincipalKind::kUser) {
    t.claims.idtyp = "user";
    t.claims.upn = principal.name;
  } else {
    t.claims.idtyp = "app";
    t.claims.appid = principal.name;
  }
  t.access_token = SignToken(key, t.claims);
  t.expires_on = t.claims.exp;
  t.tenant = dir.tenant_id;
  return t;
}

}  // namespace imagesmith::auth
