// ImageVersion: a Compute Gallery image version name, Major.Minor.Patch, each
// part a non-negative 32-bit signed integer (0..2147483647) written without
// leading zeros. Copyable value type, ordered numerically.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/statusor.h"

namespace imagesmith::tmpl {

class ImageVersion {
 public:
  ImageVersion() = default;
  ImageVersion(uint32_t major, uint32_t minor, uint32_t patch)
      : major_(major), minor_(minor), patch_(patch) {}

  // Parses "1.2.3". InvalidArgument states the rule that was broken.
  static StatusOr<ImageVersion> Parse(std::string_view text);

  uint32_t major() const { return major_; }
  uint32_t minor() const { return minor_; }
  uint32_t patch() const { return patch_; }
  std::string ToString() const;

  friend auto operator<=>(const ImageVersion&, const ImageVersion&) = default;
  friend bool operator==(const ImageVersion&, const ImageVersion&) = default;

  static constexpr uint32_t kMaxPart = 2147483647;

 private:
  uint32_t major_ = 0;
  uint32_t minor_ = 0;
  uint32_t patch_ = 0;
};

}  // namespace imagesmith::tmpl
