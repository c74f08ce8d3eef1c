#include "base/strings.h"

#include <gtest/gtest.h>

namespace imagesmith {
namespace {

TEST(StringsTest, EditDistanceCountsTranspositionAsOne) {
  EXPECT_EQ(EditDistanceIgnoreCase("customize", "cutsomize"), 1);
  EXPECT_EQ(EditDistanceIgnoreCase("Source", "source"), 0);
  EXPECT_EQ(EditDistanceIgnoreCase("abc", ""), 3);
}

TEST(StringsTest, ClosestMatchSuggestsOnlyPlausibleTypos) {
  std::vector<std::string> names = {"customize", "distribute", "source", "validate"};
  EXPECT_EQ(ClosestMatch("costumize", names), "customize");
  EXPECT_EQ(ClosestMatch("distribution", names), "distribute");
  EXPECT_EQ(ClosestMatch("frobnicate", names), "");
}

TEST(StringsTest, QuoteForMessageEscapesAndShortens) {
  EXPECT_EQ(QuoteForMessage("a\nb"), "\"a\\nb\"");
  std::string long_value(500, 'x');
  EXPECT_LT(QuoteForMessage(long_value).size(), 140u);
}

TEST(StringsTest, SplitKeepsEmptyPieces) {
  EXPECT_EQ(Split("/a//b", '/'), (std::vector<std::string>{"", "a", "", "b"}));
}

}  // namespace
}  // namespace imagesmith
