#include "catalog/base_version.h"

#include <ctime>

#include "base/strings.h"

namespace imagesmith::catalog {
namespace {

std::optional<uint32_t> ParseField(std::string_view s) {
  if (s.empty() || s.size() > 10 || !IsAsciiDigits(s)) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<uint64_t>(c - '0');
  if (v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

}  // namespace

std::optional<BaseVersion> BaseVersion::Parse(std::string_view text) {
  std::vector<std::string> parts = Split(text, '.');
  if (parts.size() != 3 || parts[1].size() != 8) return std::nullopt;
  auto major = ParseField(parts[0]);
  auto date = ParseField(parts[1]);
  auto build = ParseField(parts[2]);
  if (!major || !date || !build || *build == 0) return std::nullopt;
  const uint32_t month = *date / 100 % 100;
  const uint32_t day = *date % 100;
  if (month < 1 || month > 12 || day < 1 || day > 31) return std::nullopt;
  return BaseVersion(*major, *date, *build);
}

BaseVersion BaseVersion::Next(const std::vector<BaseVersion>& existing, int64_t now_micros) {
  const uint32_t today = UtcDateOf(now_micros);
  uint32_t build = 0;
  for (const BaseVersion& v : existing) {
    if (v.major() == 0 && v.date() == today && v.build() > build) build = v.build();
  }
  return BaseVersion(0, today, build + 1);
}

std::string BaseVersion::ToString() const {
  return std::to_string(major_) + "." + std::to_string(date_) + "." + std::to_string(build_);
}

uint32_t UtcDateOf(int64_t micros) {
  const std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return static_cast<uint32_t>((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}

}  // namespace imagesmith::catalog
