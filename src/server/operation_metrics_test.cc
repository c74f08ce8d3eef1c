// The build phase histogram of /metrics, from run operations' results.
#include "server/operation_metrics.h"

#include <gtest/gtest.h>

namespace imagesmith::server {
namespace {

Json Result(const std::string& text) {
  auto j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  return j.ok() ? *j : Json();
}

TEST(BuildPhaseHistogramTest, CountsEachPhaseIntoCumulativeBuckets) {
  std::string text = BuildPhaseHistogram(
      {Result(R"({"phaseSeconds": {"customize": 0.2, "disk": 40}})"),
       Result(R"({"phaseSeconds": {"customize": 7.5}})"), Result(R"({"runState": "Failed"})")});
  EXPECT_NE(text.find("# TYPE imagesmith_build_phase_duration_seconds histogram"),
            std::string::npos);
  EXPECT_NE(
      text.find("imagesmith_build_phase_duration_seconds_bucket{phase=\"customize\",le=\"0.5\"} 1"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("imagesmith_build_phase_duration_seconds_bucket{phase=\"customize\",le=\"10\"} 2"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          "imagesmith_build_phase_duration_seconds_bucket{phase=\"customize\",le=\"+Inf\"} 2"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("imagesmith_build_phase_duration_seconds_sum{phase=\"customize\"} 7.7"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("imagesmith_build_phase_duration_seconds_count{phase=\"disk\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("imagesmith_build_phase_duration_seconds_bucket{phase=\"disk\",le=\"30\"} 0"),
            std::string::npos)
      << text;
}

TEST(BuildPhaseHistogramTest, NoRunsGiveOnlyTheHeader) {
  std::string text = BuildPhaseHistogram({});
  EXPECT_EQ(text.find("_bucket"), std::string::npos) << text;
}

}  // namespace
}  // namespace imagesmith::server
