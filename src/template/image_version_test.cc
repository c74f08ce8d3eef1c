#include "template/image_version.h"

#include <gtest/gtest.h>

namespace imagesmith::tmpl {
namespace {

TEST(ImageVersionTest, ParsesAndOrdersNumerically) {
  auto a = ImageVersion::Parse("1.2.10");
  auto b = ImageVersion::Parse("1.2.9");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(*a, *b);
  EXPECT_EQ(a->ToString(), "1.2.10");
  EXPECT_EQ(ImageVersion::Parse("2147483647.0.0")->major(), 2147483647u);
}

TEST(ImageVersionTest, RejectsVersionWithLeadingZero) {
  auto v = ImageVersion::Parse("1.01.0");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("leading zero"), std::string::npos);
}

TEST(ImageVersionTest, RejectsWrongShapesAndOverflow) {
  for (const char* bad :
       {"1.0", "1.0.0.0", "a.b.c", "1..0", "-1.0.0", "2147483648.0.0", "", "1.0.0 "}) {
    EXPECT_FALSE(ImageVersion::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace imagesmith::tmpl
