// Random identifiers from the system's entropy source (std::random_device).
// Thread-safe; not for secrets that need a CSPRNG guarantee beyond what
// random_device gives on Linux (getrandom).
#pragma once

#include <string>

namespace imagesmith {

// `n` random hexadecimal digits, lowercase (or uppercase).
std::string RandomHex(size_t n, bool upper = false);

// A random RFC 4122 version-4 UUID, lowercase 8-4-4-4-12.
std::string NewUuidV4();

}  // namespace imagesmith
