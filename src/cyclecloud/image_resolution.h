// Which image a node boots, from its (already evaluated) attributes, in the
// order CycleCloud documents:
//   1. ImageId, with ImageOS (linux or windows), wins: a managed image
//      (Microsoft.Compute/images) or gallery image version / definition
//      resource ID.
//   2. ImageName: a managed image or gallery version resource ID, a
//      Publisher:Offer:Sku:Version URN that the platform catalog offers, or
//      a built-in name. CycleCloud's own built-ins (cycle.image.ubuntu22,
//      almalinux8, ...) have no Debian equivalent here and are refused with
//      the list of names that do resolve.
//   3. Azure.Publisher, Azure.Offer, Azure.Sku and Azure.ImageVersion
//      (default "latest") name a catalog image.
// Resolution runs when a node starts, not at import: a template that names
// an image this machine lacks still imports. Whether the resource ID
// exists is the starter's question (it reads the gallery); this function
// checks form and the catalog only. Pure; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "base/statusor.h"
#include "cyclecloud/cluster.h"

namespace imagesmith::cyclecloud {

enum class ImageSourceKind {
  kManagedImage,       // Microsoft.Compute/images
  kGalleryVersion,     // Microsoft.Compute/galleries/images/versions
  kGalleryDefinition,  // Microsoft.Compute/galleries/images (its latest version)
  kCatalog,            // a platform image URN
};

struct ImageChoice {
  ImageSourceKind kind = ImageSourceKind::kCatalog;
  std::string reference;  // the resource ID, or the URN "Debian:debian-12:12:latest"
  std::string os = "linux";
  std::string decided_by;  // "ImageId", "ImageName" or "Azure.Publisher"
};

struct ImageCatalogView {
  // What the platform catalog offers, version-less and in canonical
  // spelling: "Debian:debian-12:12", "Debian:debian-12:12-gen2".
  std::vector<std::string> offers;
};

// The built-in image names that resolve here, with the URN each stands for.
const std::vector<std::pair<std::string, std::string>>& BuiltinImageNames();

// Resolves the image of node `node`. Errors are InvalidArgument naming the
// node and the attribute: "node execute: ImageName cycle.image.ubuntu22 is a
// CycleCloud built-in with no Debian equivalent here; names that resolve:
// ...".
StatusOr<ImageChoice> ResolveNodeImage(const NodeSpec& node, const ImageCatalogView& catalog);

// The image attributes of `node` as written, in resolution order, without
// resolving them: "ImageId = /subscriptions/...", "ImageName = debian12",
// "Azure.Publisher/Offer/Sku/ImageVersion = Debian:debian-12:12:latest", or
// "" when the node names no image. Two nodes started from the same text get
// the same image; show_cluster compares a running node's text with the
// template's current one.
std::string DescribeNodeImage(const NodeSpec& node);

// What the node agent attributes ask for. InstallJetpack maps to injecting
// imagesmith's guest agent, AwaitInstallation to waiting for its hello.
struct AgentPlan {
  bool inject_agent = false;
  bool await_hello = false;
};
// A JetpackVersion that is not `installed_version` is refused, naming both.
StatusOr<AgentPlan> PlanAgent(const NodeSpec& node, const std::string& installed_version);

}  // namespace imagesmith::cyclecloud
