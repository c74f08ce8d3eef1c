// Big-endian field access and small arithmetic helpers shared by the format
// code. All functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace imagesmith::disk {

inline uint16_t LoadBe16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
inline uint32_t LoadBe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}
inline uint64_t LoadBe64(const char* p) {
  return (uint64_t{LoadBe32(p)} << 32) | LoadBe32(p + 4);
}
inline void StoreBe16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
}
inline void StoreBe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (24 - 8 * i));
}
inline void StoreBe64(char* p, uint64_t v) {
  StoreBe32(p, static_cast<uint32_t>(v >> 32));
  StoreBe32(p + 4, static_cast<uint32_t>(v));
}

// True when all `len` bytes at `p` are zero. Uses memcmp against itself, which
// glibc vectorizes, so it runs at memory speed.
inline bool IsAllZero(const char* p, size_t len) {
  constexpr size_t kHead = 16;
  if (len <= kHead) {
    for (size_t i = 0; i < len; ++i)
      if (p[i] != 0) return false;
    return true;
  }
  for (size_t i = 0; i < kHead; ++i)
    if (p[i] != 0) return false;
  return std::memcmp(p, p + kHead, len - kHead) == 0;
}

inline uint64_t DivRoundUp(uint64_t a, uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

// "0x1f400" style offsets for error messages.
inline std::string Hex(uint64_t v) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), kDigits[v & 15]);
    v >>= 4;
  } while (v != 0);
  return "0x" + s;
}

}  // namespace imagesmith::disk
