#include "cyclecloud/image_resolution.h"

#include <gtest/gtest.h>

#include "cyclecloud/scaling.h"

namespace imagesmith::cyclecloud {
namespace {

const ImageCatalogView kCatalog{{"Debian:debian-12:12", "Debian:debian-12:12-gen2"}};
const char* kVersionId =
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/img/providers/"
    "Microsoft.Compute/galleries/g/images/lab/versions/1.0.0";
const char* kManagedId =
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/img/providers/"
    "Microsoft.Compute/images/lab-image";

NodeSpec Node(Attributes attributes) {
  NodeSpec n;
  n.name = "exec";
  n.attributes = std::move(attributes);
  return n;
}

Value S(const char* s) { return Value::String(s); }

TEST(ImageResolutionTest, ImageIdWithImageOsWins) {
  StatusOr<ImageChoice> c = ResolveNodeImage(Node({{"ImageName", S("cycle.image.debian12")},
                                                   {"ImageId", S(kManagedId)},
                                                   {"ImageOS", S("Linux")}}),
                                             kCatalog);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, ImageSourceKind::kManagedImage);
  EXPECT_EQ(c->decided_by, "ImageId");
  EXPECT_EQ(c->os, "linux");
  StatusOr<ImageChoice> no_os = ResolveNodeImage(Node({{"ImageId", S(kManagedId)}}), kCatalog);
  ASSERT_FALSE(no_os.ok());
  EXPECT_EQ(no_os.status().message(),
            "node exec: ImageId needs ImageOS = linux or windows beside it");
}

TEST(ImageResolutionTest, ImageNameTakesResourceIdsUrnsAndBuiltins) {
  StatusOr<ImageChoice> v = ResolveNodeImage(Node({{"ImageName", S(kVersionId)}}), kCatalog);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->kind, ImageSourceKind::kGalleryVersion);
  StatusOr<ImageChoice> urn =
      ResolveNodeImage(Node({{"ImageName", S("debian:Debian-12:12-gen2:latest")}}), kCatalog);
  ASSERT_TRUE(urn.ok()) << urn.status().ToString();
  EXPECT_EQ(urn->reference, "Debian:debian-12:12-gen2:latest");
  StatusOr<ImageChoice> builtin =
      ResolveNodeImage(Node({{"ImageName", S("cycle.image.debian12")}}), kCatalog);
  ASSERT_TRUE(builtin.ok());
  EXPECT_EQ(builtin->reference, "Debian:debian-12:12:latest");
}

TEST(ImageResolutionTest, BuiltinWithoutDebianEquivalentListsWhatResolves) {
  StatusOr<ImageChoice> c =
      ResolveNodeImage(Node({{"ImageName", S("cycle.image.ubuntu22")}}), kCatalog);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(
      c.status().message(),
      "node exec: ImageName cycle.image.ubuntu22 is a CycleCloud built-in image with no Debian "
      "equivalent here; names that resolve: cycle.image.debian12, cycle.image.debian12-gen2, "
      "debian12, debian-12, Debian:debian-12:12:latest, Debian:debian-12:12-gen2:latest, or the "
      "resource ID of a managed image or gallery image version");
  StatusOr<ImageChoice> urn = ResolveNodeImage(
      Node({{"ImageName", S("MicrosoftWindowsServer:WindowsServer:2019-Datacenter:latest")}}),
      kCatalog);
  ASSERT_FALSE(urn.ok());
  EXPECT_NE(urn.status().message().find("is not in the platform catalog"), std::string::npos);
  StatusOr<ImageChoice> wrong_type = ResolveNodeImage(
      Node(
          {{"ImageName", S("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/img/"
                           "providers/Microsoft.Compute/disks/d")}}),
      kCatalog);
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.status().message().find("Microsoft.Compute/disks, not a managed image"),
            std::string::npos);
}

TEST(ImageResolutionTest, MarketplaceAttributesAreTheThirdForm) {
  StatusOr<ImageChoice> c = ResolveNodeImage(Node({{"Azure.Publisher", S("Debian")},
                                                   {"Azure.Offer", S("debian-12")},
                                                   {"Azure.Sku", S("12")}}),
                                             kCatalog);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->reference, "Debian:debian-12:12:latest");
  EXPECT_EQ(c->decided_by, "Azure.Publisher");
  StatusOr<ImageChoice> partial =
      ResolveNodeImage(Node({{"Azure.Publisher", S("Debian")}}), kCatalog);
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.status().message(),
            "node exec: a marketplace image also needs Azure.Offer and Azure.Sku");
  EXPECT_FALSE(ResolveNodeImage(Node({}), kCatalog).ok());
}

TEST(ImageResolutionTest, DescribeNodeImageGivesTheDecidingAttributes) {
  EXPECT_EQ(DescribeNodeImage(Node({{"ImageName", S("debian12")}, {"ImageId", S("/x")}})),
            "ImageId = /x");
  EXPECT_EQ(DescribeNodeImage(Node({{"ImageName", S("debian12")}})), "ImageName = debian12");
  EXPECT_EQ(DescribeNodeImage(Node({{"Azure.Publisher", S("Debian")},
                                    {"Azure.Offer", S("debian-12")},
                                    {"Azure.Sku", S("12")}})),
            "Azure.Publisher/Offer/Sku/ImageVersion = Debian:debian-12:12:latest");
  EXPECT_EQ(DescribeNodeImage(Node({})), "");
}

TEST(ImageResolutionTest, JetpackVersionMustMatchTheAgent) {
  StatusOr<AgentPlan> p = PlanAgent(
      Node({{"InstallJetpack", Value::Bool(true)}, {"AwaitInstallation", Value::Bool(true)}}),
      "0.9.0");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->inject_agent);
  EXPECT_TRUE(p->await_hello);
  StatusOr<AgentPlan> bad = PlanAgent(Node({{"JetpackVersion", S("7.4.0")}}), "0.9.0");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(
      bad.status().message(),
      "node exec: JetpackVersion 7.4.0 does not match the installed agent, version 0.9.0 (set "
      "JetpackVersion = 0.9.0 or leave it out)");
}

TEST(ScalingTest, LowerOfMaxCountAndMaxCoreCountWins) {
  NodeLimit a = EffectiveNodeLimit(10, 64, 16);  // 64 cores / 16 = 4 nodes
  EXPECT_EQ(a.max_nodes, 4);
  EXPECT_EQ(a.reason, "MaxCoreCount 64 (16 cores per node)");
  NodeLimit b = EffectiveNodeLimit(3, 64, 16);
  EXPECT_EQ(b.max_nodes, 3);
  EXPECT_EQ(b.reason, "MaxCount 3");
  EXPECT_EQ(EffectiveNodeLimit(std::nullopt, 10, 4).max_nodes, 2);
  EXPECT_FALSE(EffectiveNodeLimit(std::nullopt, std::nullopt, 4).max_nodes.has_value());
  EXPECT_TRUE(CheckAddNodes("hpc", 2, 2, a).ok());
  Status s = CheckAddNodes("hpc", 3, 2, a);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(
      s.message(),
      "nodearray hpc: adding 2 nodes to 3 would exceed MaxCoreCount 64 (16 cores per node) (at "
      "most 4 nodes); MaxCount 10 and MaxCoreCount 64 / 16 cores per node = 4 nodes are "
      "enforced together and the lower wins");
  EXPECT_EQ(CheckAddNodes("hpc", 3, 1, b).message(),
            "nodearray hpc: adding 1 nodes to 3 would exceed MaxCount 3 (at most 3 nodes); "
            "MaxCount 3 and MaxCoreCount 64 / 16 cores per node = 4 nodes are enforced together "
            "and the lower wins");
}

TEST(ScalingTest, NewScaleSetEveryMaxScalesetSizeNodes) {
  EXPECT_EQ(ScaleSetOf(0, 40), 0);
  EXPECT_EQ(ScaleSetOf(39, 40), 0);
  EXPECT_EQ(ScaleSetOf(40, 40), 1);
  EXPECT_EQ(ScaleSetsFor(0, 40), 0);
  EXPECT_EQ(ScaleSetsFor(40, 40), 1);
  EXPECT_EQ(ScaleSetsFor(41, 40), 2);
  EXPECT_EQ(ScaleSetsFor(1000, std::nullopt), 1);
}

}  // namespace
}  // namespace imagesmith::cyclecloud
