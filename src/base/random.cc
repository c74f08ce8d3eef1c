#include "base/random.h"

#include <random>

namespace imagesmith {

std::string RandomHex(size_t n, bool upper) {
  std::random_device rd;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string s;
  s.reserve(n);
  for (size_t i = 0; i < n; ++i) s.push_back(digits[rd() % 16]);
  return s;
}

std::string NewUuidV4() {
  std::string u = RandomHex(32);
  u[12] = '4';                                 // version 4
  u[16] = "89ab"[std::random_device()() % 4];  // RFC 4122 variant
  return u.substr(0, 8) + "-" + u.substr(8, 4) + "-" + u.substr(12, 4) + "-" + u.substr(16, 4) +
         "-" + u.substr(20, 12);
}

}  // namespace imagesmith
