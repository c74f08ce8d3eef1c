#include "gallery/versioning.h"

#include <gtest/gtest.h>

namespace imagesmith::gallery {
namespace {

std::vector<ImageVersion> Versions(const std::vector<std::string>& names) {
  std::vector<ImageVersion> out;
  for (const std::string& n : names) out.push_back(*ImageVersion::Parse(n));
  return out;
}

// The worked example of the template reference's "versioning" section.
const std::vector<std::string> kReferenceGallery = {"0.1.1", "0.1.2", "1.0.0", "1.0.1", "1.1.0",
                                                    "1.1.1", "1.2.0", "2.0.0", "2.0.1", "2.1.0"};

TEST(VersioningTest, ReferenceExampleWithoutMajorGives2_1_1) {
  auto v = NextLatestVersion(Versions(kReferenceGallery), std::nullopt);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->ToString(), "2.1.1");
}

TEST(VersioningTest, ReferenceExampleWithMajor2Gives2_1_1) {
  EXPECT_EQ(NextLatestVersion(Versions(kReferenceGallery), 2)->ToString(), "2.1.1");
}

TEST(VersioningTest, ReferenceExampleWithMajor1Gives1_2_1) {
  EXPECT_EQ(NextLatestVersion(Versions(kReferenceGallery), 1)->ToString(), "1.2.1");
}

TEST(VersioningTest, ReferenceExampleWithMajor0Gives0_1_3) {
  EXPECT_EQ(NextLatestVersion(Versions(kReferenceGallery), 0)->ToString(), "0.1.3");
}

TEST(VersioningTest, ReferenceExampleThroughChooseVersion) {
  tmpl::Versioning latest1{tmpl::VersioningScheme::kLatest, 1};
  auto v = ChooseVersion("d", Versions(kReferenceGallery), std::nullopt, latest1, "");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->ToString(), "1.2.1");
  // No versioning at all is the Latest scheme without a major.
  EXPECT_EQ(
      ChooseVersion("d", Versions(kReferenceGallery), std::nullopt, std::nullopt, "")->ToString(),
      "2.1.1");
}

TEST(VersioningTest, LatestOrderIsNumericNotTextual) {
  EXPECT_EQ(NextLatestVersion(Versions({"1.9.0", "1.10.0", "1.2.5"}), std::nullopt)->ToString(),
            "1.10.1");
}

TEST(VersioningTest, EmptyDefinitionStartsAt1_0_0OrTheMajor) {
  EXPECT_EQ(NextLatestVersion({}, std::nullopt)->ToString(), "1.0.0");
  EXPECT_EQ(NextLatestVersion({}, 3)->ToString(), "3.0.0");
  EXPECT_EQ(NextLatestVersion(Versions({"1.0.0"}), 7)->ToString(), "7.0.0");
}

TEST(VersioningTest, PatchOverflowIsAnErrorThatSaysWhatToDo) {
  auto v = NextLatestVersion(Versions({"1.0.2147483647"}), std::nullopt);
  ASSERT_EQ(v.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(v.status().message().find("set versioning.major"), std::string::npos);
}

TEST(VersioningTest, ExplicitVersionMustBeNew) {
  auto existing = Versions({"1.0.0"});
  auto dup = ChooseVersion("/x/images/d", existing, ImageVersion(1, 0, 0), std::nullopt, "");
  ASSERT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.status().message(),
            "image version 1.0.0 already exists in /x/images/d; an explicit version must be new: "
            "pick a higher version or let versioning choose one");
  // A lower version that does not exist yet is allowed: only "new" is required.
  EXPECT_EQ(ChooseVersion("d", existing, ImageVersion(0, 9, 0), std::nullopt, "")->ToString(),
            "0.9.0");
}

TEST(VersioningTest, SourceSchemeUsesTheSourceVersion) {
  tmpl::Versioning source{tmpl::VersioningScheme::kSource, std::nullopt};
  auto v = ChooseVersion("d", Versions({"1.0.0"}), std::nullopt, source, "0.20250101.3");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->ToString(), "0.20250101.3");
}

TEST(VersioningTest, SourceSchemeRejectsMissingUnusableOrTakenVersions) {
  tmpl::Versioning source{tmpl::VersioningScheme::kSource, std::nullopt};
  auto none = ChooseVersion("d", {}, std::nullopt, source, "");
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("PlatformImage or SharedImageVersion"), std::string::npos);
  auto four = ChooseVersion("d", {}, std::nullopt, source, "1.2.3.4");
  EXPECT_EQ(four.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(four.status().message().find("Major.Minor.Patch"), std::string::npos);
  auto taken = ChooseVersion("d", Versions({"1.2.3"}), std::nullopt, source, "1.2.3");
  EXPECT_EQ(taken.status().code(), StatusCode::kAlreadyExists);
}

Region R(const char* name) { return *Region::Parse(name); }

TEST(LatestTest, HighestCompletedNotExcludedVersionInThatRegion) {
  std::vector<VersionFacts> facts = {
      {ImageVersion(1, 0, 0),
       false,
       {{R("eastus"), ReplicaState::kCompleted}, {R("westus2"), ReplicaState::kCompleted}}},
      {ImageVersion(1, 1, 0),
       false,
       {{R("eastus"), ReplicaState::kCompleted}, {R("westus2"), ReplicaState::kInProgress}}},
      {ImageVersion(2, 0, 0), true, {{R("eastus"), ReplicaState::kCompleted}}},
      {ImageVersion(1, 2, 0), false, {{R("eastus"), ReplicaState::kFailed}}},
  };
  EXPECT_EQ(LatestInRegion(facts, R("eastus"))->ToString(), "1.1.0");
  EXPECT_EQ(LatestInRegion(facts, R("westus2"))->ToString(), "1.0.0");
  EXPECT_FALSE(LatestInRegion(facts, R("northeurope")).has_value());
  EXPECT_FALSE(LatestInRegion({}, R("eastus")).has_value());
}

}  // namespace
}  // namespace imagesmith::gallery
