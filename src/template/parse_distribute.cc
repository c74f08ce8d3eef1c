// properties.source and properties.distribute[].
#include <algorithm>
#include <regex>

#include "base/strings.h"
#include "template/reader.h"

namespace imagesmith::tmpl {

const char* StorageAccountTypeName(StorageAccountType t) {
  switch (t) {
    case StorageAccountType::kStandardLRS:
      return "Standard_LRS";
    case StorageAccountType::kStandardZRS:
      return "Standard_ZRS";
    case StorageAccountType::kPremiumLRS:
      return "Premium_LRS";
  }
  return "?";
}

namespace internal {
namespace {

const char kImageShape[] =
    "a managed image ID: /subscriptions/{subscriptionId}/resourceGroups/{group}/providers/"
    "Microsoft.Compute/images/{image}";
const char kVersionShape[] =
    "a gallery image version ID: /subscriptions/{subscriptionId}/resourceGroups/{group}/"
    "providers/Microsoft.Compute/galleries/{gallery}/images/{definition}/versions/"
    "{version or latest}";
const char kDefinitionShape[] =
    "a gallery image definition ID: /subscriptions/{subscriptionId}/resourceGroups/{group}/"
    "providers/Microsoft.Compute/galleries/{gallery}/images/{definition}, optionally followed "
    "by /versions/{Major.Minor.Patch}";

#define PLATFORM_PROPS "type", "publisher", "offer", "sku", "version", "planInfo"
#define MANAGED_SOURCE_PROPS "type", "imageId"
#define SIG_SOURCE_PROPS "type", "imageVersionId"

const std::vector<std::string> kStorageTypes = {"Standard_LRS", "Standard_ZRS", "Premium_LRS"};

// Marketplace names: letters, digits, '.', '-', '_' (Azure's URN parts).
bool CheckUrnPart(ObjectView& v, std::string_view name, const std::string& s) {
  static const std::regex kPart("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");
  if (std::regex_match(s, kPart)) return true;
  v.ctx().Error(v.Get(name)->pos, v.PathOf(name),
                "expected a marketplace name of letters, digits, '.', '-' and '_', found " +
                    QuoteForMessage(s));
  return false;
}

}  // namespace

std::optional<Source> ParseSource(Context& ctx, const Json& value, const std::string& path) {
  ObjectView v(ctx, value, path, "the source", {"type"});
  if (!v.ok()) return std::nullopt;
  if (const Json* type = v.Get("type");
      type != nullptr && type->is_string() && EqualsIgnoreCase(type->string_value(), "ISO")) {
    // Recognised, so the user is told why rather than "unknown type".
    ctx.Error(type->pos, v.PathOf("type"),
              "source type ISO (a RHEL installer ISO, apiVersion 2019-05-01-preview only) is not "
              "supported: imagesmith builds its base images from Debian's packages and cannot "
              "install from an ISO, and Azure removed ISO sources in apiVersion 2020-02-14; use a "
              "PlatformImage, ManagedImage or SharedImageVersion source");
    return std::nullopt;
  }
  std::optional<size_t> type =
      ReadEnum(v, "type", true, {"PlatformImage", "ManagedImage", "SharedImageVersion"});
  if (!type) return std::nullopt;
  int before = ctx.error_count();
  std::optional<Source> out;
  switch (*type) {
    case 0: {
      v.SetSchema("a PlatformImage source", {PLATFORM_PROPS});
      v.AddSibling("ManagedImage sources", {MANAGED_SOURCE_PROPS});
      v.AddSibling("SharedImageVersion sources", {SIG_SOURCE_PROPS});
      v.AddReadOnly({"exactVersion"});
      PlatformImageSource p;
      auto read_part = [&](const char* name, std::string& field) {
        if (auto s = ReadString(v, name, true)) {
          if (CheckUrnPart(v, name, *s)) field = *s;
        }
      };
      read_part("publisher", p.publisher);
      read_part("offer", p.offer);
      read_part("sku", p.sku);
      if (auto s = ReadString(v, "version", true)) {
        if (EqualsIgnoreCase(*s, "latest")) {
          p.version = "latest";
        } else if (CheckUrnPart(v, "version", *s)) {
          p.version = *s;
        }
      }
      if (const Json* plan = v.Get("planInfo")) {
        ObjectView pv(ctx, *plan, v.PathOf("planInfo"), "planInfo",
                      {"planName", "planProduct", "planPublisher"});
        if (pv.ok()) {
          PlanInfo info;
          info.plan_name = ReadString(pv, "planName", true).value_or("");
          info.plan_product = ReadString(pv, "planProduct", true).value_or("");
          info.plan_publisher = ReadString(pv, "planPublisher", true).value_or("");
          p.plan_info = info;
          pv.Finish();
        }
      }
      out = p;
      break;
    }
    case 1: {
      v.SetSchema("a ManagedImage source", {MANAGED_SOURCE_PROPS});
      v.AddSibling("PlatformImage sources", {PLATFORM_PROPS});
      v.AddSibling("SharedImageVersion sources", {SIG_SOURCE_PROPS});
      if (auto id = ReadResourceId(v, "imageId", true, {"Microsoft.Compute/images"}, kImageShape)) {
        out = ManagedImageSource{*id};
      }
      break;
    }
    case 2: {
      v.SetSchema("a SharedImageVersion source", {SIG_SOURCE_PROPS});
      v.AddSibling("PlatformImage sources", {PLATFORM_PROPS});
      v.AddSibling("ManagedImage sources", {MANAGED_SOURCE_PROPS});
      v.AddReadOnly({"exactVersion"});
      if (auto id =
              ReadResourceId(v, "imageVersionId", true,
                             {"Microsoft.Compute/galleries/images/versions"}, kVersionShape)) {
        if (!EqualsIgnoreCase(id->name(), "latest")) {
          auto ver = ImageVersion::Parse(id->name());
          if (!ver.ok()) {
            ctx.Error(v.Get("imageVersionId")->pos, v.PathOf("imageVersionId"),
                      ver.status().message() + ", or \"latest\"");
            break;
          }
          out = SharedImageVersionSource{*id};
        } else {
          // Normalise the spelling of "latest".
          out = SharedImageVersionSource{id->Parent().Child(id->types().back().type, "latest")};
        }
      }
      break;
    }
    default:
      break;
  }
  v.Finish();
  if (ctx.error_count() != before) return std::nullopt;
  return out;
}

namespace {

#define COMMON_DIST_PROPS "type", "runOutputName", "artifactTags"
#define MANAGED_DIST_PROPS COMMON_DIST_PROPS, "imageId", "location"
#define SIG_DIST_PROPS                                                                             \
  COMMON_DIST_PROPS, "galleryImageId", "replicationRegions", "targetRegions", "excludeFromLatest", \
      "storageAccountType", "versioning"
#define VHD_DIST_PROPS COMMON_DIST_PROPS, "uri"

std::optional<SharedImageTarget> ReadSharedImageTarget(ObjectView& v) {
  Context& ctx = v.ctx();
  // Filled field by field; the target is assembled once its ID is known.
  struct {
    std::optional<ResourceId> gallery_image_id;
    std::optional<ImageVersion> explicit_version;
    std::vector<TargetRegion> target_regions;
    bool exclude_from_latest = false;
    std::optional<StorageAccountType> storage_account_type;
    std::optional<Versioning> versioning;
  } t;
  bool ok = true;
  if (const Json* gid = v.Get("galleryImageId")) {
    auto id = ParseResourceIdValue(
        ctx, *gid, v.PathOf("galleryImageId"),
        {"Microsoft.Compute/galleries/images", "Microsoft.Compute/galleries/images/versions"},
        kDefinitionShape);
    if (!id) {
      ok = false;
    } else if (id->IsType("Microsoft.Compute/galleries/images/versions")) {
      if (EqualsIgnoreCase(id->name(), "latest")) {
        ctx.Error(gid->pos, v.PathOf("galleryImageId"),
                  "a distribution creates a new version, so it cannot be \"latest\"; name an "
                  "explicit version (e.g. 1.0.0) or leave /versions/... out for automatic "
                  "versioning");
        ok = false;
      } else if (auto ver = ImageVersion::Parse(id->name()); !ver.ok()) {
        ctx.Error(gid->pos, v.PathOf("galleryImageId"), ver.status().message());
        ok = false;
      } else {
        t.explicit_version = *ver;
        t.gallery_image_id = id->Parent();
      }
    } else {
      t.gallery_image_id = *id;
    }
  } else {
    ctx.Error(v.pos(), v.PathOf("galleryImageId"),
              std::string("required property is missing; expected ") + kDefinitionShape);
    ok = false;
  }

  const Json* replication = v.Get("replicationRegions");
  const Json* target_regions = v.Get("targetRegions");
  if (replication != nullptr && target_regions != nullptr) {
    ctx.Error(replication->pos, v.PathOf("replicationRegions"),
              "replicationRegions and targetRegions exclude each other; replicationRegions is "
              "deprecated, so keep targetRegions");
    ok = false;
  } else if (replication != nullptr) {
    // Only where targetRegions exists: older apiVersions have nothing else.
    if (ApiAtLeast(ctx, "2022-07-01")) {
      ctx.Warning(replication->pos, v.PathOf("replicationRegions"),
                  "deprecated since API version 2022-07-01; use targetRegions "
                  "([{\"name\": \"eastus\", \"replicaCount\": 1}])");
    }
    if (replication->is_string()) {
      ctx.Warning(replication->pos, v.PathOf("replicationRegions"),
                  "expected an array of region names; a single string is read as a one-element "
                  "array");
    }
    if (auto names = ReadStringList(v, "replicationRegions", false, TextKind::kStructured, false)) {
      for (size_t i = 0; i < names->size(); ++i) {
        auto r = Region::Parse((*names)[i]);
        if (!r.ok()) {
          // A single string stands for the whole list (ReadStringList allows it).
          bool list = replication->is_array();
          ctx.Error(
              list ? replication->array_items()[i].pos : replication->pos,
              list ? IndexPath(v.PathOf("replicationRegions"), i) : v.PathOf("replicationRegions"),
              r.status().message());
          ok = false;
          continue;
        }
        t.target_regions.push_back(TargetRegion{*r, 1, std::nullopt});
      }
    } else {
      ok = false;
    }
  } else if (target_regions != nullptr) {
    std::string tpath = v.PathOf("targetRegions");
    if (!ApiAtLeast(ctx, "2022-07-01")) {
      ctx.Error(target_regions->pos, tpath,
                "targetRegions needs apiVersion 2022-07-01 or newer (this template uses " +
                    ctx.api_version + ")");
      ok = false;
    }
    if (!target_regions->is_array()) {
      ctx.Error(target_regions->pos, tpath,
                "expected an array of {name, replicaCount, storageAccountType} objects");
      ok = false;
    } else {
      const auto& items = target_regions->array_items();
      std::vector<Region> seen_regions;
      if (items.empty()) {
        ctx.Error(target_regions->pos, tpath, "must list at least one region");
        ok = false;
      }
      for (size_t i = 0; i < items.size(); ++i) {
        ObjectView rv(ctx, items[i], IndexPath(tpath, i), "a target region",
                      {"name", "replicaCount", "storageAccountType"});
        if (!rv.ok()) {
          ok = false;
          continue;
        }
        int before = ctx.error_count();
        auto region = ReadRegion(rv, "name", true, false);
        auto count = ReadInt(rv, "replicaCount", false, 1, 100);
        auto storage = ReadEnum(rv, "storageAccountType", false, kStorageTypes);
        rv.Finish();
        if (region) {
          // Checked even when the entry has other errors, so every problem shows.
          if (std::find(seen_regions.begin(), seen_regions.end(), *region) != seen_regions.end()) {
            ctx.Error(rv.Get("name")->pos, rv.PathOf("name"),
                      "region \"" + region->name() + "\" is listed twice in targetRegions");
          }
          seen_regions.push_back(*region);
        }
        if (ctx.error_count() != before || !region) {
          ok = false;
          continue;
        }
        TargetRegion tr{*region, count.value_or(1), std::nullopt};
        if (storage) tr.storage_account_type = static_cast<StorageAccountType>(*storage);
        t.target_regions.push_back(tr);
      }
    }
  }

  t.exclude_from_latest = ReadBool(v, "excludeFromLatest", false).value_or(false);
  if (v.Get("storageAccountType") != nullptr) {
    if (auto s = ReadEnum(v, "storageAccountType", false, kStorageTypes)) {
      t.storage_account_type = static_cast<StorageAccountType>(*s);
    } else {
      ok = false;
    }
  }
  if (const Json* vj = v.Get("versioning")) {
    ObjectView vv(ctx, *vj, v.PathOf("versioning"), "versioning", {"scheme", "major"});
    if (!vv.ok()) {
      ok = false;
    } else {
      int before = ctx.error_count();
      auto scheme = ReadEnum(vv, "scheme", true, {"Latest", "Source"});
      auto major = ReadInt(vv, "major", false, -1, ImageVersion::kMaxPart);
      vv.Finish();
      if (scheme && *scheme == 1 && vv.Get("major") != nullptr) {
        ctx.Error(vv.Get("major")->pos, vv.PathOf("major"),
                  "major applies only to the Latest scheme; the Source scheme takes its version "
                  "from the source image");
      }
      if (t.explicit_version) {
        ctx.Error(vj->pos, v.PathOf("versioning"),
                  "galleryImageId already names version " + t.explicit_version->ToString() +
                      "; remove versioning or the /versions/... part of galleryImageId");
      }
      if (ctx.error_count() != before) {
        ok = false;
      } else if (scheme) {
        Versioning ver;
        ver.scheme = *scheme == 0 ? VersioningScheme::kLatest : VersioningScheme::kSource;
        // Azure documents major = -1 as "not set".
        if (major && *major >= 0) ver.major = static_cast<uint32_t>(*major);
        t.versioning = ver;
      }
    }
  }
  if (!ok || !t.gallery_image_id) return std::nullopt;
  return SharedImageTarget{*t.gallery_image_id,         t.explicit_version,
                           std::move(t.target_regions), t.exclude_from_latest,
                           t.storage_account_type,      t.versioning};
}

}  // namespace

std::optional<Distribution> ParseDistribution(Context& ctx, const Json& value,
                                              const std::string& path) {
  ObjectView v(ctx, value, path, "a distribution target", {"type"});
  if (!v.ok()) return std::nullopt;
  auto type = ReadEnum(v, "type", true, {"ManagedImage", "SharedImage", "VHD"});
  if (!type) return std::nullopt;
  int before = ctx.error_count();
  std::string run_output_name;
  Tags artifact_tags;
  std::optional<decltype(Distribution::target)> target;
  switch (*type) {
    case 0:
      v.SetSchema("a ManagedImage target", {MANAGED_DIST_PROPS});
      v.AddSibling("SharedImage targets", {SIG_DIST_PROPS});
      v.AddSibling("VHD targets", {VHD_DIST_PROPS});
      break;
    case 1:
      v.SetSchema("a SharedImage target", {SIG_DIST_PROPS});
      v.AddSibling("ManagedImage targets", {MANAGED_DIST_PROPS});
      v.AddSibling("VHD targets", {VHD_DIST_PROPS});
      break;
    default:
      v.SetSchema("a VHD target", {VHD_DIST_PROPS});
      v.AddSibling("ManagedImage targets", {MANAGED_DIST_PROPS});
      v.AddSibling("SharedImage targets", {SIG_DIST_PROPS});
      break;
  }
  if (auto name = ReadString(v, "runOutputName", true)) {
    static const std::regex kRunOutputName("^[A-Za-z0-9._-]{1,64}$");
    if (std::regex_match(*name, kRunOutputName)) {
      run_output_name = *name;
    } else {
      ctx.Error(v.Get("runOutputName")->pos, v.PathOf("runOutputName"),
                "expected 1-64 letters, digits, '.', '_' or '-', found " + QuoteForMessage(*name));
    }
  }
  if (auto tags = ReadTags(v, "artifactTags")) artifact_tags = std::move(*tags);
  switch (*type) {
    case 0: {
      auto id = ReadResourceId(v, "imageId", true, {"Microsoft.Compute/images"}, kImageShape);
      auto loc = ReadRegion(v, "location", true, false);
      if (id && loc) target = ManagedImageTarget{*id, *loc};
      break;
    }
    case 1: {
      if (auto t = ReadSharedImageTarget(v)) target = std::move(*t);
      break;
    }
    default: {
      VhdTarget t;
      if (auto uri = ReadString(v, "uri", false, TextKind::kStructured, true)) {
        std::string lower = AsciiToLower(*uri);
        if (!uri->empty() && !StartsWith(lower, "file://") && !StartsWith(lower, "https://") &&
            !StartsWith(lower, "http://") && (*uri)[0] != '/' && !StartsWith(*uri, "./") &&
            !StartsWith(*uri, "../")) {
          ctx.Error(v.Get("uri")->pos, v.PathOf("uri"),
                    "expected a file path, a file:// URI or an https:// URI for the VHD, found " +
                        QuoteForMessage(*uri));
        } else if (!uri->empty() && !EndsWith(lower, ".vhd")) {
          ctx.Warning(v.Get("uri")->pos, v.PathOf("uri"),
                      "the VHD's name does not end in .vhd; Azure expects page blobs named *.vhd");
        }
        t.uri = *uri;
      }
      target = t;
      break;
    }
  }
  v.Finish();
  if (ctx.error_count() != before || !target) return std::nullopt;
  return Distribution{std::move(run_output_name), std::move(artifact_tags), value.pos,
                      std::move(*target)};
}

}  // namespace internal
}  // namespace imagesmith::tmpl
