#include "gallery/store_refs.h"

#include <limits>

namespace imagesmith::gallery {

StatusOr<std::vector<StoreRef>> CollectStoreRefs(meta::MetaStore& meta) {
  std::vector<StoreRef> out;
  Status s = meta.Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(std::vector<meta::Resource> subs, txn.ListSubscriptions());
    std::vector<meta::Resource> all = subs;
    for (const meta::Resource& sub : subs) {
      ASSIGN_OR_RETURN(auto below,
                       txn.ListDescendants(sub.id, std::numeric_limits<int64_t>::max()));
      all.insert(all.end(), below.begin(), below.end());
    }
    for (const meta::Resource& r : all) {
      const Json* im = r.properties.is_object() ? r.properties.Find("imagesmith") : nullptr;
      const Json* refs = im != nullptr && im->is_object() ? im->Find("storeRefs") : nullptr;
      if (refs == nullptr) continue;
      auto bad = [&](const std::string& why) {
        return FailedPreconditionError("resource " + r.id.ToString() +
                                       ": properties.imagesmith.storeRefs " + why);
      };
      if (!refs->is_array()) return bad("is not an array");
      for (const Json& ref : refs->array_items()) {
        const Json* region = ref.is_object() ? ref.Find("region") : nullptr;
        const Json* image = ref.is_object() ? ref.Find("image") : nullptr;
        if (region == nullptr || image == nullptr || !region->is_string() || !image->is_string()) {
          return bad("has an entry without string \"region\" and \"image\"");
        }
        auto reg = Region::Parse(region->string_value());
        if (!reg.ok()) return bad("names an unknown region: " + reg.status().message());
        auto dig = Sha256Digest::FromHex(image->string_value());
        if (!dig.ok()) return bad("has an image that is not a SHA-256 digest");
        out.push_back(StoreRef{*reg, *dig, r.id});
      }
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace imagesmith::gallery
