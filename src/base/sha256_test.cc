#include "base/sha256.h"

#include <gtest/gtest.h>

namespace imagesmith {
namespace {

TEST(Sha256Test, MatchesKnownVector) {
  EXPECT_EQ(Sha256Of("abc").ToHex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, StreamingEqualsOneShot) {
  Sha256Hasher h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), Sha256Of("abc"));
}

TEST(Sha256Test, ParsesHexEitherCaseAndRejectsOtherLengths) {
  auto d =
      Sha256Digest::FromHex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Sha256Of("abc"));
  auto bad = Sha256Digest::FromHex("abc");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("64 hexadecimal digits"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith
