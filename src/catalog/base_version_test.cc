#include "catalog/base_version.h"

#include <gtest/gtest.h>

namespace imagesmith::catalog {
namespace {

constexpr int64_t kMicrosPerDay = 86400LL * 1000000;
// 2026-11-21T12:00:00Z
constexpr int64_t kNov21 = 1795262400LL * 1000000;

TEST(BaseVersion, RoundTripsAzureShapedVersion) {
  auto v = BaseVersion::Parse("0.20261121.3");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->major(), 0u);
  EXPECT_EQ(v->date(), 20261121u);
  EXPECT_EQ(v->build(), 3u);
  EXPECT_EQ(v->ToString(), "0.20261121.3");
}

TEST(BaseVersion, RejectsMalformedVersions) {
  for (const char* bad : {"", "latest", "0.20261121", "0.20261121.1.2", "00.20261121.1",
                          "0.20261121.01", "0.2026112.1", "0.20261321.1", "0.20261100.1",
                          "0.20261121.0", "0.20261121.-1", "0.20261121.4294967296", "1.0.0"}) {
    EXPECT_FALSE(BaseVersion::Parse(bad).has_value()) << bad;
  }
}

TEST(BaseVersion, OrdersNumericallyNotLexically) {
  EXPECT_LT(*BaseVersion::Parse("0.20261121.9"), *BaseVersion::Parse("0.20261121.10"));
  EXPECT_LT(*BaseVersion::Parse("0.20261121.10"), *BaseVersion::Parse("0.20261122.1"));
}

TEST(BaseVersion, UtcDateOfUsesUtc) {
  EXPECT_EQ(UtcDateOf(kNov21), 20261121u);
  EXPECT_EQ(UtcDateOf(0), 19700101u);
}

TEST(BaseVersion, FirstBuildOfTheDayIsOne) {
  std::vector<BaseVersion> existing = {BaseVersion(0, 20261120, 7)};
  EXPECT_EQ(BaseVersion::Next(existing, kNov21).ToString(), "0.20261121.1");
  EXPECT_EQ(BaseVersion::Next({}, kNov21).ToString(), "0.20261121.1");
}

TEST(BaseVersion, LaterBuildsTheSameDayCountUp) {
  std::vector<BaseVersion> existing = {BaseVersion(0, 20261121, 1), BaseVersion(0, 20261121, 4),
                                       BaseVersion(0, 20261120, 9)};
  EXPECT_EQ(BaseVersion::Next(existing, kNov21).ToString(), "0.20261121.5");
  EXPECT_EQ(BaseVersion::Next(existing, kNov21 + kMicrosPerDay).ToString(), "0.20261122.1");
}

}  // namespace
}  // namespace imagesmith::catalog
