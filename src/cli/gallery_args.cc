#include "cli/gallery_args.h"

#include "base/strings.h"
#include "gallery/names.h"

namespace imagesmith::cli {

StatusOr<std::vector<tmpl::TargetRegion>> ParseTargetRegionArgs(
    const std::vector<std::string>& items, int64_t default_count) {
  std::vector<tmpl::TargetRegion> out;
  for (const std::string& words : items) {
    for (const std::string& item : Split(words, ' ')) {
      if (item.empty()) continue;
      auto fail = [&](const std::string& why) {
        return InvalidArgumentError("--target-regions: " + QuoteForMessage(item) + ": " + why +
                                    "; use REGION[=REPLICA_COUNT][=STORAGE_ACCOUNT_TYPE], e.g. "
                                    "eastus=2=Standard_LRS westus2");
      };
      std::vector<std::string> parts = Split(item, '=');
      if (parts.size() > 3) return fail("too many '=' parts");
      auto region = Region::Parse(parts[0]);
      if (!region.ok()) return fail(region.status().message());
      tmpl::TargetRegion t{*region, default_count, std::nullopt};
      if (parts.size() >= 2) {
        auto count = ParseCountArg("--target-regions " + parts[0], parts[1]);
        if (!count.ok()) return fail("the replica count must be an integer from 1 to 100");
        t.replica_count = *count;
      }
      if (parts.size() == 3) {
        auto type = gallery::ParseStorageAccountType("storage account type", parts[2]);
        if (!type.ok()) return fail(type.status().message());
        for (auto k :
             {tmpl::StorageAccountType::kStandardLRS, tmpl::StorageAccountType::kStandardZRS,
              tmpl::StorageAccountType::kPremiumLRS}) {
          if (*type == tmpl::StorageAccountTypeName(k)) t.storage_account_type = k;
        }
      }
      out.push_back(t);
    }
  }
  if (out.empty()) return InvalidArgumentError("--target-regions: no region given");
  return out;
}

StatusOr<bool> ParseBoolArg(const std::string& flag, const std::string& text) {
  std::string t = AsciiToLower(text);
  if (t == "true" || t == "yes" || t == "1") return true;
  if (t == "false" || t == "no" || t == "0") return false;
  return InvalidArgumentError(flag + ": " + QuoteForMessage(text) +
                              " is not a boolean; use true or "
                              "false");
}

StatusOr<int64_t> ParseCountArg(const std::string& flag, const std::string& text) {
  if (!IsAsciiDigits(text) || text.size() > 9 || std::stoll(text) < 1) {
    return InvalidArgumentError(flag + ": " + QuoteForMessage(text) +
                                " is not a count; use an integer from 1 to 100");
  }
  return std::stoll(text);
}

StatusOr<GalleryData> OpenGalleryData(Env& env) {
  GalleryData g;
  ASSIGN_OR_RETURN(g.data, OpenData(env));
  ASSIGN_OR_RETURN(g.store, store::Store::Open(env, g.data.dir + "/store"));
  return g;
}

}  // namespace imagesmith::cli
