// Versions of the platform base images imagesmith builds itself.
//
// They are shaped like the versions of Azure's Debian marketplace images:
// "0.YYYYMMDD.N" -- a zero major, the UTC build date, and a build number that
// starts at 1 each day and grows with every further build that day. Versions
// order numerically, field by field, so "latest" is simply the largest.
//
// BaseVersion is a small copyable value type.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imagesmith::catalog {

class BaseVersion {
 public:
  BaseVersion() = default;
  BaseVersion(uint32_t major, uint32_t date, uint32_t build)
      : major_(major), date_(date), build_(build) {}

  // Parses "M.YYYYMMDD.N": three decimal fields without signs or leading
  // zeros (a lone "0" is fine), each fitting in 32 bits, the middle one a
  // date with eight digits. nullopt for anything else.
  static std::optional<BaseVersion> Parse(std::string_view text);

  // The version a new build made at `now_micros` (Unix epoch, UTC) gets,
  // given the versions that already exist: today's date and one more than
  // the largest build number already used today (1 if none).
  static BaseVersion Next(const std::vector<BaseVersion>& existing, int64_t now_micros);

  uint32_t major() const { return major_; }
  uint32_t date() const { return date_; }
  uint32_t build() const { return build_; }
  std::string ToString() const;

  friend auto operator<=>(const BaseVersion&, const BaseVersion&) = default;
  friend bool operator==(const BaseVersion&, const BaseVersion&) = default;

 private:
  uint32_t major_ = 0;
  uint32_t date_ = 0;   // YYYYMMDD
  uint32_t build_ = 0;  // >= 1
};

// "YYYYMMDD" for a Unix time in microseconds, in UTC.
uint32_t UtcDateOf(int64_t micros);

}  // namespace imagesmith::catalog
