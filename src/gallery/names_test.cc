#include "gallery/names.h"

#include <gtest/gtest.h>

namespace imagesmith::gallery {
namespace {

TEST(NamesTest, GalleryNames) {
  EXPECT_TRUE(ValidateGalleryName("my_gallery.1").ok());
  EXPECT_TRUE(ValidateGalleryName(std::string(80, 'g')).ok());
  for (const char* bad : {"", "_g", "g_", ".g", "g.", "my-gallery", "my gallery"}) {
    Status s = ValidateGalleryName(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("letters, digits, underscores and periods"), std::string::npos);
  }
  EXPECT_FALSE(ValidateGalleryName(std::string(81, 'g')).ok());
  EXPECT_EQ(ValidateGalleryName("my-gallery").message(),
            "gallery name \"my-gallery\" is invalid: a gallery name is 1-80 letters, digits, "
            "underscores and periods, and cannot begin or end with an underscore or a period");
}

TEST(NamesTest, DefinitionNames) {
  EXPECT_TRUE(ValidateImageDefinitionName("debian-12.gen2_x").ok());
  for (const char* bad : {"", "-a", "a-", ".a", "a.", "a b", "a/b"}) {
    EXPECT_EQ(ValidateImageDefinitionName(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateImageDefinitionName(std::string(81, 'd')).ok());
}

TEST(NamesTest, ManagedImageNames) {
  EXPECT_TRUE(ValidateManagedImageName("img-1.0_").ok());
  for (const char* bad : {"", "_a", "a-", "a.", "a b"}) {
    EXPECT_EQ(ValidateManagedImageName(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NamesTest, IdentifierParts) {
  EXPECT_TRUE(ValidateIdentifierPart("publisher", "Contoso.IT-1").ok());
  EXPECT_FALSE(ValidateIdentifierPart("offer", "").ok());
  EXPECT_FALSE(ValidateIdentifierPart("sku", std::string(65, 's')).ok());
  EXPECT_TRUE(ValidateIdentifierPart("publisher", std::string(128, 'p')).ok());
  EXPECT_NE(ValidateIdentifierPart("sku", "a b").message().find("sku \"a b\""), std::string::npos);
}

TEST(NamesTest, EnumsAreCanonicalised) {
  EXPECT_EQ(*ParseOsType("osType", "linux"), "Linux");
  EXPECT_EQ(*ParseOsState("osState", "GENERALIZED"), "Generalized");
  EXPECT_EQ(*ParseHyperVGeneration("hyperVGeneration", "v2"), "V2");
  EXPECT_EQ(*ParseStorageAccountType("storageAccountType", "standard_zrs"), "Standard_ZRS");
  auto bad = ParseHyperVGeneration("--hyper-v-generation", "V3");
  EXPECT_EQ(bad.status().message(),
            "--hyper-v-generation: \"V3\" is not allowed; use V1, V2 (did you mean V1?)");
}

TEST(NamesTest, DatesRoundTripInAzuresForm) {
  EXPECT_EQ(FormatDateTime(*ParseDateTime("d", "2027-01-31")), "2027-01-31T00:00:00+00:00");
  EXPECT_EQ(FormatDateTime(*ParseDateTime("d", "2027-01-31T12:30:05Z")),
            "2027-01-31T12:30:05+00:00");
  EXPECT_EQ(FormatDateTime(*ParseDateTime("d", "2027-01-31T12:30:05.123+02:00")),
            "2027-01-31T10:30:05+00:00");
  EXPECT_EQ(FormatDateTime(*ParseDateTime("d", "2024-02-29T00:00")), "2024-02-29T00:00:00+00:00");
  for (const char* bad : {"", "2027", "2027-13-01", "2027-02-29", "2027-01-31X", "31/01/2027",
                          "2027-01-31T25:00:00", "2027-01-31T10:00:00+0200"}) {
    auto t = ParseDateTime("--end-of-life-date", bad);
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseDateTime("--end-of-life-date", "soon")
                .status()
                .message()
                .find("--end-of-life-date: \"soon\" is not a date; use YYYY-MM-DD"),
            std::string::npos);
}

TEST(NamesTest, IdsHaveAzureTypes) {
  ResourceId group = ResourceId::ForResourceGroup("sub", "rg");
  EXPECT_EQ(GalleryId(group, "g").FullType(), kGalleryType);
  EXPECT_EQ(
      DefinitionId(group, "g", "d").ToString(),
      "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d");
  EXPECT_EQ(ManagedImageId(group, "i").FullType(), kManagedImageType);
  Status wrong = CheckIdType(GalleryId(group, "g"), kManagedImageType, "--source");
  EXPECT_EQ(wrong.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.message().find("expected /subscriptions/{sub}/resourceGroups/{rg}/providers/"
                                 "Microsoft.Compute/images/{name}"),
            std::string::npos);
}

}  // namespace
}  // namespace imagesmith::gallery
