#include "base/sha256.h"

#include <openssl/evp.h>

#include <cassert>

namespace imagesmith {

struct Sha256Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256Hasher::Sha256Hasher() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  // Allocation failure of a few hundred bytes is not recoverable here.
  assert(impl_->ctx != nullptr);
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256Hasher::Update(std::string_view data) {
  EVP_DigestUpdate(impl_->ctx, data.data(), data.size());
}

Sha256Digest Sha256Hasher::Finish() {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out.data(), &len);
  return Sha256Digest(out);
}

Sha256Digest Sha256Of(std::string_view data) {
  Sha256Hasher h;
  h.Update(data);
  return h.Finish();
}

bool Sha256Digest::IsHex(std::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!ok) return false;
  }
  return true;
}

StatusOr<Sha256Digest> Sha256Digest::FromHex(std::string_view hex) {
  if (!IsHex(hex)) {
    return InvalidArgumentError("expected a SHA-256 digest of 64 hexadecimal digits, got " +
                                std::to_string(hex.size()) + " characters");
  }
  auto nibble = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    return static_cast<uint8_t>(c - 'A' + 10);
  };
  std::array<uint8_t, 32> bytes{};
  for (size_t i = 0; i < 32; ++i) {
    bytes[i] = static_cast<uint8_t>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
  }
  return Sha256Digest(bytes);
}

std::string Sha256Digest::ToHex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : bytes_) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace imagesmith
