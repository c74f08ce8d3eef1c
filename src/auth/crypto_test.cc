#include "auth/crypto.h"

#include <gtest/gtest.h>

#include "auth/secret.h"
#include "base/strings.h"

namespace imagesmith::auth {
namespace {

std::string Hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

TEST(CryptoTest, Base64UrlRoundTripsEveryLengthWithoutPadding) {
  std::string bytes;
  for (int i = 0; i < 40; ++i) {
    auto decoded = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(decoded.ok()) << i;
    EXPECT_EQ(*decoded, bytes);
    EXPECT_EQ(Base64UrlEncode(bytes).find('='), std::string::npos);
    bytes += static_cast<char>(i * 37 + 250);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
}

TEST(CryptoTest, Base64UrlRejectsPaddingForeignCharactersAndImpossibleLengths) {
  EXPECT_FALSE(Base64UrlDecode("YQ==").ok());
  EXPECT_FALSE(Base64UrlDecode("a+b/").ok());
  EXPECT_FALSE(Base64UrlDecode("abcde").ok());
  EXPECT_FALSE(Base64UrlDecode("YR").ok());  // non-zero padding bits: "a" is "YQ"
}

TEST(CryptoTest, HmacSha256MatchesRfc4231TestCase2) {
  EXPECT_EQ(Hex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, Pbkdf2Sha256MatchesKnownVector) {
  // RFC 7914 section 11 (PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64).
  EXPECT_EQ(Hex(Pbkdf2Sha256("passwd", "salt", 1, 64)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
            "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
}

TEST(CryptoTest, ConstantTimeEqualsComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

TEST(SecretTest, HashIsSaltedSlowAndVerifiesOnlyTheRightSecret) {
  auto secret = NewClientSecret();
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(secret->size(), 40u);
  auto a = HashSecret(*secret);
  auto b = HashSecret(*secret);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // a fresh salt each time
  EXPECT_TRUE(StartsWith(*a, "pbkdf2-sha256$" + std::to_string(kSecretIterations) + "$"));
  EXPECT_EQ(a->find(*secret), std::string::npos);
  EXPECT_TRUE(*VerifySecret(*secret, *a));
  EXPECT_TRUE(*VerifySecret(*secret, *b));
  std::string wrong = *secret;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(*VerifySecret(wrong, *a));
  EXPECT_FALSE(*VerifySecret("", *a));
}

TEST(SecretTest, DamagedStoredHashIsAnErrorNotAMatch) {
  EXPECT_EQ(VerifySecret("x", "plain").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifySecret("x", "pbkdf2-sha256$0$AA$AA").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifySecret("x", "pbkdf2-sha256$10$A$AA").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace imagesmith::auth
