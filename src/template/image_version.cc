#include "template/image_version.h"

#include "base/strings.h"

namespace imagesmith::tmpl {

StatusOr<ImageVersion> ImageVersion::Parse(std::string_view text) {
  auto fail = [&](const std::string& why) {
    return InvalidArgumentError("image version " + QuoteForMessage(text) + " " + why +
                                "; expected Major.Minor.Patch, e.g. 1.0.0, each part an integer "
                                "from 0 to 2147483647");
  };
  std::vector<std::string> parts = Split(text, '.');
  if (parts.size() != 3) return fail("has " + std::to_string(parts.size()) + " part(s), not 3");
  uint32_t v[3] = {0, 0, 0};
  for (size_t i = 0; i < 3; ++i) {
    const std::string& p = parts[i];
    if (!IsAsciiDigits(p)) return fail("has a part that is not a non-negative integer");
    if (p.size() > 1 && p[0] == '0') return fail("has a part with a leading zero");
    if (p.size() > 10) return fail("has a part larger than 2147483647");
    uint64_t n = std::stoull(p);
    if (n > kMaxPart) return fail("has a part larger than 2147483647");
    v[i] = static_cast<uint32_t>(n);
  }
  return ImageVersion(v[0], v[1], v[2]);
}

std::string ImageVersion::ToString() const {
  return std::to_string(major_) + "." + std::to_string(minor_) + "." + std::to_string(patch_);
}

}  // namespace imagesmith::tmpl
