#include "auth/token.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "auth/crypto.h"
#include "auth/directory.h"
#include "auth/oauth.h"
#include "base/strings.h"

namespace imagesmith::auth {
namespace {

constexpr int64_t kNow = 1800000000;

SigningKey Key(char fill = 'k') { return SigningKey::FromBytes(std::string(32, fill)); }

TokenClaims Claims() {
  TokenClaims c;
  c.oid = "11111111-1111-1111-1111-111111111111";
  c.tid = "22222222-2222-2222-2222-222222222222";
  c.appid = "33333333-3333-3333-3333-333333333333";
  c.idtyp = "app";
  c.iat = c.nbf = kNow;
  c.exp = kNow + 3600;
  return c;
}

std::string ArmCode(const Status& s) { return s.message().substr(0, s.message().find(':')); }

TEST(TokenTest, SignedTokenVerifiesAndCarriesTheClaims) {
  std::string token = SignToken(Key(), Claims());
  EXPECT_EQ(std::count(token.begin(), token.end(), '.'), 2);
  auto c = VerifyTokenClaims(Key(), token, kNow + 10);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->oid, Claims().oid);
  EXPECT_EQ(c->tid, Claims().tid);
  EXPECT_EQ(c->appid, Claims().appid);
  EXPECT_EQ(c->exp, kNow + 3600);
  // The header is a plain JWT header.
  auto header = Base64UrlDecode(token.substr(0, token.find('.')));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(*header, R"({"alg":"HS256","typ":"JWT"})");
}

TEST(TokenTest, ExpiredTokenIsExpiredAuthenticationToken) {
  std::string token = SignToken(Key(), Claims());
  auto c = VerifyTokenClaims(Key(), token, kNow + 3600);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(ArmCode(c.status()), "ExpiredAuthenticationToken");
  TokenClaims early = Claims();
  early.nbf = kNow + 100;
  auto n = VerifyTokenClaims(Key(), SignToken(Key(), early), kNow);
  EXPECT_EQ(ArmCode(n.status()), "InvalidAuthenticationToken");
}

TEST(TokenTest, EveryFlippedByteIsRejected) {
  std::string token = SignToken(Key(), Claims());
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '.') continue;
    std::string forged = token;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    auto c = VerifyTokenClaims(Key(), forged, kNow + 1);
    ASSERT_FALSE(c.ok()) << "byte " << i;
    EXPECT_EQ(c.status().code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(ArmCode(c.status()), "InvalidAuthenticationToken") << c.status().message();
  }
}

TEST(TokenTest, WrongKeyIsRejected) {
  auto c = VerifyTokenClaims(Key('x'), SignToken(Key(), Claims()), kNow + 1);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("signature does not match"), std::string::npos);
}

TEST(TokenTest, AlgNoneAndOtherAlgorithmsAreRejected) {
  std::string token = SignToken(Key(), Claims());
  std::string payload = token.substr(token.find('.') + 1);
  payload = payload.substr(0, payload.find('.'));
  for (const char* header :
       {R"({"alg":"none","typ":"JWT"})", R"({"alg":"HS512","typ":"JWT"})", R"({"typ":"JWT"})"}) {
    for (const std::string& sig : {std::string(""), token.substr(token.rfind('.') + 1)}) {
      std::string forged = Base64UrlEncode(header) + "." + payload + "." + sig;
      auto c = VerifyTokenClaims(Key(), forged, kNow + 1);
      ASSERT_FALSE(c.ok()) << header;
      EXPECT_EQ(ArmCode(c.status()), "InvalidAuthenticationToken");
    }
  }
  // A token re-signed with its claims changed (a raised exp) fails too.
  TokenClaims longer = Claims();
  longer.exp += 100000;
  std::string other = SignToken(Key(), longer);
  std::string spliced = other.substr(0, other.rfind('.')) + token.substr(token.rfind('.'));
  EXPECT_FALSE(VerifyTokenClaims(Key(), spliced, kNow + 1).ok());
}

TEST(TokenTest, MalformedTokensAreInvalidNotCrashes) {
  for (const char* t : {"", ".", "..", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", "e30.e30.e30"}) {
    auto c = VerifyTokenClaims(Key(), t, kNow);
    ASSERT_FALSE(c.ok()) << t;
    EXPECT_EQ(c.status().code(), StatusCode::kUnauthenticated) << t;
  }
}

class DirectoryTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-auth-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = meta::OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
    ASSERT_TRUE(s.ok());
    meta_ = std::move(*s);
    ASSERT_TRUE(meta_
                    ->Update([&](meta::Transaction& t) {
                      ASSIGN_OR_RETURN(info_, EnsureDirectory(t));
                      ASSIGN_OR_RETURN(sp_, CreateServicePrincipal(t, "builder"));
                      return Status::Ok();
                    })
                    .ok());
  }
  void TearDown() override { ASSERT_TRUE(Env::Default()->RemoveAll(dir_).ok()); }

  std::string dir_;
  std::unique_ptr<meta::MetaStore> meta_;
  DirectoryInfo info_;
  NewServicePrincipal sp_;
};

TEST_F(DirectoryTokenTest, SigningKeyIsMadeOnceWithMode0600) {
  auto a = SigningKey::LoadOrCreate(dir_);
  auto b = SigningKey::LoadOrCreate(dir_);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->bytes(), b->bytes());
  EXPECT_EQ(a->bytes().size(), 32u);
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/token-signing.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(DirectoryTokenTest, ServicePrincipalTokenVerifiesUntilThePrincipalIsDeleted) {
  Status s = meta_->Update([&](meta::Transaction& t) -> Status {
    ASSIGN_OR_RETURN(Principal p, AuthenticateServicePrincipal(t, sp_.sp.app_id, sp_.secret));
    ASSIGN_OR_RETURN(IssuedToken tok, IssueToken(t, Key(), p, kNow));
    EXPECT_EQ(tok.expires_on, kNow + 3600);
    EXPECT_EQ(tok.tenant, info_.tenant_id);
    ASSIGN_OR_RETURN(Principal back,
                     AuthenticateBearer(t, Key(), "Bearer " + tok.access_token, kNow + 1));
    EXPECT_EQ(back.object_id, sp_.sp.object_id);
    EXPECT_EQ(back.kind, PrincipalKind::kServicePrincipal);
    EXPECT_FALSE(back.is_owner);
    RETURN_IF_ERROR(DeleteServicePrincipal(t, sp_.sp.app_id));
    auto gone = VerifyToken(t, Key(), tok.access_token, kNow + 1);
    EXPECT_EQ(ArmCode(gone.status()), "InvalidAuthenticationToken");
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST_F(DirectoryTokenTest, OwnerTokenGivesTheOwner) {
  Status s = meta_->Read([&](meta::Transaction& t) -> Status {
    ASSIGN_OR_RETURN(IssuedToken tok, IssueToken(t, Key(), OwnerPrincipal(info_), kNow));
    ASSIGN_OR_RETURN(Principal back, VerifyToken(t, Key(), tok.access_token, kNow));
    EXPECT_TRUE(back.is_owner);
    EXPECT_EQ(tok.claims.upn, "owner");
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST_F(DirectoryTokenTest, WrongSecretAndUnknownAppAreUnauthenticatedWithoutTheSecret) {
  Status s = meta_->Read([&](meta::Transaction& t) {
    auto wrong = AuthenticateServicePrincipal(t, sp_.sp.app_id, "not-the-secret");
    EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated);
    EXPECT_TRUE(StartsWith(wrong.status().message(), "AADSTS7000215"));
    EXPECT_EQ(wrong.status().message().find("not-the-secret"), std::string::npos);
    auto unknown = AuthenticateServicePrincipal(t, "99999999-9999-9999-9999-999999999999", "x");
    EXPECT_TRUE(StartsWith(unknown.status().message(), "AADSTS700016"));
    // The stored record holds the hash, never the secret.
    auto sps = ListServicePrincipals(t);
    EXPECT_EQ(sps->at(0).secret_hash.find(sp_.secret), std::string::npos);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok());
}

TEST_F(DirectoryTokenTest, BearerHeaderProblemsAreAuthenticationFailed) {
  Status s = meta_->Read([&](meta::Transaction& t) {
    EXPECT_EQ(ArmCode(AuthenticateBearer(t, Key(), "", kNow).status()), "AuthenticationFailed");
    EXPECT_EQ(ArmCode(AuthenticateBearer(t, Key(), "Basic abc", kNow).status()),
              "AuthenticationFailed");
    EXPECT_EQ(ArmCode(AuthenticateBearer(t, Key(), "Bearer x.y.z", kNow).status()),
              "InvalidAuthenticationToken");
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok());
}

TEST_F(DirectoryTokenTest, ClientCredentialsEndpointAnswersLikeEntraId) {
  auto form = [&](const std::string& secret) {
    return "grant_type=client_credentials&client_id=" + sp_.sp.app_id + "&client_secret=" + secret +
           "&scope=https%3A%2F%2Fmanagement.azure.com%2F.default";
  };
  Env& env = *Env::Default();
  OAuthResponse ok = HandleClientCredentials(env, *meta_, Key(), info_.tenant_id, form(sp_.secret));
  ASSERT_EQ(ok.http_status, 200) << ok.body.Dump();
  EXPECT_EQ(ok.body.Find("token_type")->string_value(), "Bearer");
  EXPECT_EQ(ok.body.Find("expires_in")->AsInt64(), 3599);
  std::string token = ok.body.Find("access_token")->string_value();
  Status s = meta_->Read([&](meta::Transaction& t) -> Status {
    ASSIGN_OR_RETURN(Principal p, VerifyToken(t, Key(), token, env.NowMicros() / 1000000));
    EXPECT_EQ(p.object_id, sp_.sp.object_id);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();

  OAuthResponse bad = HandleClientCredentials(env, *meta_, Key(), info_.tenant_id, form("nope"));
  EXPECT_EQ(bad.http_status, 401);
  EXPECT_EQ(bad.body.Find("error")->string_value(), "invalid_client");
  EXPECT_EQ(bad.body.Find("error_codes")->array_items()[0].AsInt64(), 7000215);
  EXPECT_EQ(bad.body.Dump().find("nope"), std::string::npos);

  OAuthResponse tenant = HandleClientCredentials(env, *meta_, Key(), "common", form(sp_.secret));
  EXPECT_EQ(tenant.http_status, 400);
  EXPECT_EQ(tenant.body.Find("error_codes")->array_items()[0].AsInt64(), 90002);
  OAuthResponse grant = HandleClientCredentials(env, *meta_, Key(), info_.tenant_id,
                                                "grant_type=password&client_id=x");
  EXPECT_EQ(grant.body.Find("error")->string_value(), "unsupported_grant_type");
  OAuthResponse missing = HandleClientCredentials(env, *meta_, Key(), info_.tenant_id, "");
  EXPECT_EQ(missing.body.Find("error")->string_value(), "invalid_request");
  OAuthResponse scope = HandleClientCredentials(
      env, *meta_, Key(), info_.tenant_id,
      "grant_type=client_credentials&client_id=a&client_secret=b&scope=user.read");
  EXPECT_EQ(scope.body.Find("error")->string_value(), "invalid_scope");
  OAuthResponse escape = HandleClientCredentials(env, *meta_, Key(), info_.tenant_id, "a=%zz");
  EXPECT_EQ(escape.http_status, 400);
}

}  // namespace
}  // namespace imagesmith::auth
