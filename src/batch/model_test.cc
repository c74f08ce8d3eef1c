#include "batch/model.h"

#include <gtest/gtest.h>

namespace imagesmith::batch {
namespace {

TEST(BatchModelTest, ParsesIsoDurationsAsBatchWritesThem) {
  EXPECT_EQ(*ParseIsoDuration("PT15M", "resizeTimeout"), 900);
  EXPECT_EQ(*ParseIsoDuration("PT1H30M", "resizeTimeout"), 5400);
  EXPECT_EQ(*ParseIsoDuration("P1D", "resizeTimeout"), 86400);
  EXPECT_EQ(*ParseIsoDuration("PT90S", "resizeTimeout"), 90);
  EXPECT_EQ(FormatIsoDuration(900), "PT15M");
  EXPECT_EQ(FormatIsoDuration(5400), "PT1H30M");
}

TEST(BatchModelTest, RejectsBadDurationNamingTheField) {
  auto bad = ParseIsoDuration("15 minutes", "resizeTimeout");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("resizeTimeout"), std::string::npos);
  EXPECT_FALSE(ParseIsoDuration("PT", "x").ok());
  EXPECT_FALSE(ParseIsoDuration("P5M", "x").ok());  // months are not durations Batch takes
}

TEST(BatchModelTest, SkuFitsOsRelease) {
  EXPECT_TRUE(SkuFitsOsRelease("batch.node.debian 12", "debian", "12"));
  EXPECT_FALSE(SkuFitsOsRelease("batch.node.debian 11", "debian", "12"));
  EXPECT_FALSE(SkuFitsOsRelease("batch.node.ubuntu 22.04", "debian", "12"));
  EXPECT_TRUE(SkuFitsOsRelease("batch.node.el 8", "el", "8.9"));
  EXPECT_EQ(FittingNodeAgentSkus("Linux"), std::vector<std::string>{"batch.node.debian 12"});
}

TEST(BatchModelTest, ValidatesIds) {
  EXPECT_TRUE(ValidateBatchId("pool-1_a", "id").ok());
  EXPECT_FALSE(ValidateBatchId("", "id").ok());
  EXPECT_FALSE(ValidateBatchId("a/b", "id").ok());
  EXPECT_FALSE(ValidateBatchId(std::string(65, 'a'), "id").ok());
}

TEST(BatchModelTest, DeallocationOptions) {
  EXPECT_EQ(*ParseDeallocation("TaskCompletion", "o"), DeallocationOption::kTaskCompletion);
  EXPECT_FALSE(ParseDeallocation("later", "nodeDeallocationOption").ok());
}

}  // namespace
}  // namespace imagesmith::batch
