// SHA-256 digests (OpenSSL underneath) as a value type.
//
// Sha256Digest is a small copyable value; Sha256Hasher is a streaming hasher
// owned by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/statusor.h"

namespace imagesmith {

class Sha256Digest {
 public:
  Sha256Digest() = default;
  explicit Sha256Digest(const std::array<uint8_t, 32>& bytes) : bytes_(bytes) {}

  // Parses 64 hexadecimal digits (either case). Anything else is
  // InvalidArgument with a message that says what was expected.
  static StatusOr<Sha256Digest> FromHex(std::string_view hex);
  // True when `hex` is exactly 64 hexadecimal digits.
  static bool IsHex(std::string_view hex);

  // Lowercase hex, as sha256sum prints it.
  std::string ToHex() const;
  const std::array<uint8_t, 32>& bytes() const { return bytes_; }

  friend bool operator==(const Sha256Digest&, const Sha256Digest&) = default;
  friend auto operator<=>(const Sha256Digest&, const Sha256Digest&) = default;

 private:
  std::array<uint8_t, 32> bytes_{};
};

class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::string_view data);
  // Returns the digest of everything passed to Update. The hasher must not be
  // used afterwards.
  Sha256Digest Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Sha256Digest Sha256Of(std::string_view data);

}  // namespace imagesmith
