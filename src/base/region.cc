#include "base/region.h"

#include "base/strings.h"

namespace imagesmith {

const std::vector<RegionInfo>& Region::All() {
  // The first block is the template reference's list of Image Builder
  // locations; the second holds other public regions that galleries can
  // replicate to.
  static const std::vector<RegionInfo> kRegions = {
      {"eastus", "East US", true},
      {"eastus2", "East US 2", true},
      {"westcentralus", "West Central US", true},
      {"westus", "West US", true},
      {"westus2", "West US 2", true},
      {"westus3", "West US 3", true},
      {"southcentralus", "South Central US", true},
      {"northeurope", "North Europe", true},
      {"westeurope", "West Europe", true},
      {"southeastasia", "Southeast Asia", true},
      {"australiasoutheast", "Australia Southeast", true},
      {"australiaeast", "Australia East", true},
      {"uksouth", "UK South", true},
      {"ukwest", "UK West", true},
      {"brazilsouth", "Brazil South", true},
      {"canadacentral", "Canada Central", true},
      {"centralindia", "Central India", true},
      {"centralus", "Central US", true},
      {"francecentral", "France Central", true},
      {"germanywestcentral", "Germany West Central", true},
      {"japaneast", "Japan East", true},
      {"northcentralus", "North Central US", true},
      {"norwayeast", "Norway East", true},
      {"switzerlandnorth", "Switzerland North", true},
      {"jioindiawest", "Jio India West", true},
      {"uaenorth", "UAE North", true},
      {"eastasia", "East Asia", true},
      {"koreacentral", "Korea Central", true},
      {"southafricanorth", "South Africa North", true},
      {"qatarcentral", "Qatar Central", true},
      {"usgovarizona", "USGov Arizona", true},
      {"usgovvirginia", "USGov Virginia", true},
      {"chinanorth3", "China North 3", true},
      {"swedencentral", "Sweden Central", true},
      {"polandcentral", "Poland Central", true},
      {"australiacentral", "Australia Central", false},
      {"australiacentral2", "Australia Central 2", false},
      {"brazilsoutheast", "Brazil Southeast", false},
      {"canadaeast", "Canada East", false},
      {"francesouth", "France South", false},
      {"germanynorth", "Germany North", false},
      {"israelcentral", "Israel Central", false},
      {"italynorth", "Italy North", false},
      {"japanwest", "Japan West", false},
      {"koreasouth", "Korea South", false},
      {"mexicocentral", "Mexico Central", false},
      {"newzealandnorth", "New Zealand North", false},
      {"norwaywest", "Norway West", false},
      {"southafricawest", "South Africa West", false},
      {"southindia", "South India", false},
      {"spaincentral", "Spain Central", false},
      {"swedensouth", "Sweden South", false},
      {"switzerlandwest", "Switzerland West", false},
      {"uaecentral", "UAE Central", false},
      {"westindia", "West India", false},
  };
  return kRegions;
}

StatusOr<Region> Region::Parse(std::string_view text) {
  // Display names differ from programmatic names only by case, spaces and an
  // optional "(Public Preview)" suffix, as the reference writes some of them.
  std::string key;
  std::string_view t = TrimWhitespace(text);
  constexpr std::string_view kPreview = "(public preview)";
  std::string lower = AsciiToLower(t);
  if (EndsWith(lower, kPreview)) lower = lower.substr(0, lower.size() - kPreview.size());
  for (char c : lower) {
    if (c != ' ') key.push_back(c);
  }
  std::vector<std::string> names;
  for (const RegionInfo& r : All()) {
    if (key == r.name) return Region(r.name);
    names.emplace_back(r.name);
  }
  std::string message = "unknown region " + QuoteForMessage(text);
  std::string guess = ClosestMatch(key, names);
  if (!guess.empty()) message += "; did you mean \"" + guess + "\"?";
  message += " Run 'imagesmith account list-locations' for the list";
  return InvalidArgumentError(message);
}

std::string Region::display_name() const {
  for (const RegionInfo& r : All()) {
    if (name_ == r.name) return r.display_name;
  }
  return name_;
}

bool Region::supports_image_builder() const {
  for (const RegionInfo& r : All()) {
    if (name_ == r.name) return r.image_builder;
  }
  return false;
}

}  // namespace imagesmith
