#include "base/resource_id.h"

#include <gtest/gtest.h>

#include "base/region.h"

namespace imagesmith {
namespace {

constexpr const char* kSub = "00000000-1111-2222-3333-444444444444";

TEST(ResourceIdTest, ParsesNestedGalleryVersion) {
  auto id = ResourceId::Parse(std::string("/subscriptions/") + kSub +
                              "/resourceGroups/rg1/providers/Microsoft.Compute/galleries/g/"
                              "images/def/versions/1.2.3");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->kind(), ResourceId::Kind::kResource);
  EXPECT_EQ(id->resource_group(), "rg1");
  EXPECT_EQ(id->FullType(), "Microsoft.Compute/galleries/images/versions");
  EXPECT_EQ(id->name(), "1.2.3");
  EXPECT_EQ(id->Parent().FullType(), "Microsoft.Compute/galleries/images");
  EXPECT_EQ(id->Parent().Parent().Parent().kind(), ResourceId::Kind::kResourceGroup);
  EXPECT_EQ(id->Parent().Child("versions", "1.2.3"), *id);
}

TEST(ResourceIdTest, ComparesCaseInsensitivelyAndCanonicalisesKeywords) {
  auto a = ResourceId::Parse(std::string("/SUBSCRIPTIONS/") + kSub +
                             "/resourcegroups/RG/PROVIDERS/microsoft.compute/Images/Img");
  auto b = ResourceId::Parse(std::string("/subscriptions/") + kSub +
                             "/resourceGroups/rg/providers/Microsoft.Compute/images/img");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->ToString(), std::string("/subscriptions/") + kSub +
                               "/resourceGroups/RG/providers/microsoft.compute/Images/Img");
  EXPECT_TRUE(a->IsType("Microsoft.Compute/images"));
}

TEST(ResourceIdTest, ParsesSubscriptionAndGroupIds) {
  auto s = ResourceId::Parse(std::string("/subscriptions/") + kSub);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->FullType(), "Microsoft.Resources/subscriptions");
  auto g = ResourceId::Parse(std::string("/subscriptions/") + kSub + "/resourceGroups/my-rg");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->kind(), ResourceId::Kind::kResourceGroup);
  EXPECT_EQ(g->name(), "my-rg");
}

TEST(ResourceIdTest, RejectsMalformedIdsSayingWhy) {
  struct Case {
    std::string text;
    const char* why;
  } cases[] = {
      {"", "it is empty"},
      {"subscriptions/x", "must start with '/'"},
      {"/subscriptions/not-a-guid", "is not a GUID"},
      {std::string("/subscriptions/") + kSub + "/groups/x", "expected 'resourceGroups'"},
      {std::string("/subscriptions/") + kSub + "/resourceGroups/bad!", "may contain only"},
      {std::string("/subscriptions/") + kSub + "/resourceGroups/rg.", "must not end with '.'"},
      {std::string("/subscriptions/") + kSub + "/resourceGroups/rg/providers/Compute/x/y",
       "Company.Service"},
      {std::string("/subscriptions/") + kSub +
           "/resourceGroups/rg/providers/Microsoft.Compute/images",
       "name is missing"},
      {std::string("/subscriptions/") + kSub + "/resourceGroups/rg/", "ends with '/'"},
      {std::string("/subscriptions/") + kSub +
           "/resourceGroups/rg/providers/Microsoft.Compute/images/a<b>",
       "not allowed"},
  };
  for (const Case& c : cases) {
    auto id = ResourceId::Parse(c.text);
    ASSERT_FALSE(id.ok()) << c.text;
    EXPECT_NE(id.status().message().find(c.why), std::string::npos)
        << c.text << " -> " << id.status().message();
  }
}

TEST(RegionTest, NormalisesDisplayNames) {
  EXPECT_EQ(Region::Parse("East US")->name(), "eastus");
  EXPECT_EQ(Region::Parse("EASTUS2")->name(), "eastus2");
  EXPECT_EQ(Region::Parse("South East Asia")->name(), "southeastasia");
  EXPECT_EQ(Region::Parse("USGov Arizona (Public Preview)")->name(), "usgovarizona");
  EXPECT_TRUE(Region::Parse("westus3")->supports_image_builder());
  EXPECT_FALSE(Region::Parse("japanwest")->supports_image_builder());
}

TEST(RegionTest, SuggestsCloseNameForTypo) {
  auto r = Region::Parse("estus");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("did you mean \"eastus\""), std::string::npos);
}

}  // namespace
}  // namespace imagesmith
