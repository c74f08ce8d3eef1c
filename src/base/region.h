// Region: an Azure region name ("eastus") as a value type.
//
// Parsing accepts the programmatic name or the display name in any case
// ("East US", "EASTUS", "South East Asia") and normalises to the
// programmatic name. Each region is a store root in imagesmith (DESIGN.md).
// Copyable value type.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/statusor.h"

namespace imagesmith {

struct RegionInfo {
  const char* name;          // "eastus"
  const char* display_name;  // "East US"
  // Listed as a supported location for Image Builder templates in the
  // template reference; others are valid replication targets only.
  bool image_builder;
};

class Region {
 public:
  // Parses a region known to imagesmith. Unknown names are InvalidArgument;
  // the message suggests the closest known name when there is one.
  static StatusOr<Region> Parse(std::string_view text);

  // Every region imagesmith knows, in a stable order.
  static const std::vector<RegionInfo>& All();

  const std::string& name() const { return name_; }
  std::string display_name() const;
  // Whether templates may be located here (see RegionInfo::image_builder).
  bool supports_image_builder() const;

  friend bool operator==(const Region&, const Region&) = default;
  friend auto operator<=>(const Region&, const Region&) = default;

 private:
  explicit Region(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

}  // namespace imagesmith
