#include "cyclecloud/image_resolution.h"

#include <optional>

#include "base/resource_id.h"
#include "base/strings.h"

namespace imagesmith::cyclecloud {

const std::vector<std::pair<std::string, std::string>>& BuiltinImageNames() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"cycle.image.debian12", "Debian:debian-12:12:latest"},
      {"cycle.image.debian12-gen2", "Debian:debian-12:12-gen2:latest"},
      {"debian12", "Debian:debian-12:12:latest"},
      {"debian-12", "Debian:debian-12:12:latest"},
  };
  return names;
}

namespace {

// CycleCloud's own built-in names (and the family prefixes of ones we do
// not list): they name distributions imagesmith does not build.
bool IsCycleCloudBuiltin(const std::string& lower) {
  static const char* kPrefixes[] = {"cycle.image.", "almalinux", "centos",  "ubuntu", "sles",
                                    "rhel",         "win",       "windows", "rocky"};
  for (const char* p : kPrefixes) {
    if (StartsWith(lower, p)) return true;
  }
  return false;
}

std::string NamesThatResolve(const ImageCatalogView& catalog) {
  std::vector<std::string> names;
  for (const auto& [name, urn] : BuiltinImageNames()) names.push_back(name);
  for (const std::string& offer : catalog.offers) names.push_back(offer + ":latest");
  return Join(names, ", ") + ", or the resource ID of a managed image or gallery image version";
}

// The attribute as text: a string, or a number or boolean as written
// (`Azure.Sku = 12` reads as the integer 12; `Azure.ImageVersion = 7.4` as
// a double). Null when unset or not a scalar.
std::optional<std::string> Text(const NodeSpec& node, const char* key) {
  const Value* v = FindAttribute(node.attributes, key);
  if (v == nullptr) return std::nullopt;
  switch (v->kind()) {
    case Value::Kind::kString:
      return v->string_value();
    case Value::Kind::kInt:
    case Value::Kind::kDouble:
    case Value::Kind::kBool:
      return v->ToText();
    default:
      return std::nullopt;
  }
}

Status Bad(const NodeSpec& node, const std::string& message) {
  return InvalidArgumentError("node " + node.name + ": " + message);
}

StatusOr<ImageChoice> FromResourceId(const NodeSpec& node, const char* attr,
                                     const std::string& text) {
  StatusOr<ResourceId> id = ResourceId::Parse(text);
  if (!id.ok())
    return Bad(node,
               std::string(attr) + " " + QuoteForMessage(text) + ": " + id.status().message());
  ImageChoice c;
  c.reference = id->ToString();
  c.decided_by = attr;
  if (id->IsType("Microsoft.Compute/images")) {
    c.kind = ImageSourceKind::kManagedImage;
  } else if (id->IsType("Microsoft.Compute/galleries/images/versions")) {
    c.kind = ImageSourceKind::kGalleryVersion;
  } else if (id->IsType("Microsoft.Compute/galleries/images")) {
    c.kind = ImageSourceKind::kGalleryDefinition;
  } else {
    return Bad(node, std::string(attr) + " " + id->ToString() + " is a " + id->FullType() +
                         ", not a managed image (Microsoft.Compute/images) or a gallery image "
                         "version (Microsoft.Compute/galleries/images/versions)");
  }
  return c;
}

StatusOr<ImageChoice> FromUrn(const NodeSpec& node, const char* attr, const std::string& publisher,
                              const std::string& offer, const std::string& sku,
                              const std::string& version, const ImageCatalogView& catalog) {
  std::string wanted = publisher + ":" + offer + ":" + sku;
  for (const std::string& o : catalog.offers) {
    if (EqualsIgnoreCase(o, wanted)) {
      ImageChoice c;
      c.kind = ImageSourceKind::kCatalog;
      c.reference = o + ":" + (version.empty() ? "latest" : version);
      c.decided_by = attr;
      return c;
    }
  }
  return Bad(node, std::string(attr) + " " + wanted +
                       " is not in the platform catalog; it offers " + Join(catalog.offers, ", "));
}

}  // namespace

StatusOr<ImageChoice> ResolveNodeImage(const NodeSpec& node, const ImageCatalogView& catalog) {
  // 1. ImageId + ImageOS.
  if (std::optional<std::string> image_id = Text(node, "ImageId")) {
    std::optional<std::string> os = Text(node, "ImageOS");
    if (!os) return Bad(node, "ImageId needs ImageOS = linux or windows beside it");
    std::string lower = AsciiToLower(*os);
    if (lower != "linux" && lower != "windows") {
      return Bad(node, "ImageOS must be linux or windows, got " + QuoteForMessage(*os));
    }
    if (lower == "windows") return Bad(node, "ImageOS windows: only Linux images run here");
    ASSIGN_OR_RETURN(ImageChoice c, FromResourceId(node, "ImageId", *image_id));
    c.os = lower;
    return c;
  }
  // 2. ImageName.
  if (std::optional<std::string> name = Text(node, "ImageName")) {
    if (StartsWith(*name, "/")) return FromResourceId(node, "ImageName", *name);
    std::vector<std::string> parts = Split(*name, ':');
    if (parts.size() == 4) {
      return FromUrn(node, "ImageName", parts[0], parts[1], parts[2], parts[3], catalog);
    }
    if (parts.size() != 1) {
      return Bad(node,
                 "ImageName " + QuoteForMessage(*name) +
                     " is neither a resource ID, a Publisher:Offer:Sku:Version URN nor a name");
    }
    std::string lower = AsciiToLower(*name);
    for (const auto& [builtin, urn] : BuiltinImageNames()) {
      if (lower == builtin) {
        std::vector<std::string> u = Split(urn, ':');
        ASSIGN_OR_RETURN(ImageChoice c,
                         FromUrn(node, "ImageName", u[0], u[1], u[2], u[3], catalog));
        return c;
      }
    }
    if (IsCycleCloudBuiltin(lower)) {
      return Bad(node, "ImageName " + *name +
                           " is a CycleCloud built-in image with no Debian equivalent here; names "
                           "that resolve: " +
                           NamesThatResolve(catalog));
    }
    return Bad(
        node, "ImageName " + QuoteForMessage(*name) +
                  " is no image name known here; names that resolve: " + NamesThatResolve(catalog));
  }
  // 3. Azure.Publisher / Offer / Sku / ImageVersion.
  std::optional<std::string> publisher = Text(node, "Azure.Publisher");
  std::optional<std::string> offer = Text(node, "Azure.Offer");
  std::optional<std::string> sku = Text(node, "Azure.Sku");
  if (publisher || offer || sku) {
    std::vector<std::string> missing;
    if (!publisher) missing.push_back("Azure.Publisher");
    if (!offer) missing.push_back("Azure.Offer");
    if (!sku) missing.push_back("Azure.Sku");
    if (!missing.empty())
      return Bad(node, "a marketplace image also needs " + Join(missing, " and "));
    std::optional<std::string> version = Text(node, "Azure.ImageVersion");
    return FromUrn(node, "Azure.Publisher", *publisher, *offer, *sku, version ? *version : "latest",
                   catalog);
  }
  return Bad(node,
             "no image: set ImageName, ImageId with ImageOS, or Azure.Publisher, "
             "Azure.Offer and Azure.Sku; names that resolve: " +
                 NamesThatResolve(catalog));
}

std::string DescribeNodeImage(const NodeSpec& node) {
  auto text = [&](const char* key) -> std::string {
    const Value* v = FindAttribute(node.attributes, key);
    return v == nullptr || v->is_undefined() ? "" : v->ToText();
  };
  if (std::string id = text("ImageId"); !id.empty()) return "ImageId = " + id;
  if (std::string name = text("ImageName"); !name.empty()) return "ImageName = " + name;
  std::string publisher = text("Azure.Publisher"), offer = text("Azure.Offer"),
              sku = text("Azure.Sku"), version = text("Azure.ImageVersion");
  if (publisher.empty() && offer.empty() && sku.empty()) return "";
  return "Azure.Publisher/Offer/Sku/ImageVersion = " + publisher + ":" + offer + ":" + sku + ":" +
         (version.empty() ? "latest" : version);
}

StatusOr<AgentPlan> PlanAgent(const NodeSpec& node, const std::string& installed_version) {
  AgentPlan plan;
  auto flag = [&](const char* key) -> StatusOr<bool> {
    const Value* v = FindAttribute(node.attributes, key);
    if (v == nullptr) return false;
    if (v->kind() != Value::Kind::kBool) {
      return Bad(node,
                 std::string(key) + " must be true or false, got " + QuoteForMessage(v->ToText()));
    }
    return v->bool_value();
  };
  ASSIGN_OR_RETURN(plan.inject_agent, flag("InstallJetpack"));
  ASSIGN_OR_RETURN(plan.await_hello, flag("AwaitInstallation"));
  if (const Value* v = FindAttribute(node.attributes, "JetpackVersion")) {
    std::string wanted = v->ToText();
    if (wanted != installed_version) {
      return Bad(node, "JetpackVersion " + wanted +
                           " does not match the installed agent, version " + installed_version +
                           " (set JetpackVersion = " + installed_version + " or leave it out)");
    }
  }
  return plan;
}

}  // namespace imagesmith::cyclecloud
