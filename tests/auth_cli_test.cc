// End-to-end tests of identity and access: 'account get-access-token',
// 'ad sp create-for-rbac', 'role assignment', 'identity' (doc/auth.md).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/json.h"
#include "base/resource_id.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

std::string Base64UrlDecode(const std::string& s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-'             ? 62
            : c == '_'             ? 63
                                   : -1;
    if (v < 0) return "";
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

class AuthCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = MakeTempDir() + "/data";
    env_ = {{"IMAGESMITH_HOME", home_}};
    CliResult g = Run({"group", "create", "-n", "images", "-l", "eastus"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
    ASSERT_EQ(Run({"group", "create", "-n", "other", "-l", "eastus"}).exit_code, 0);
    auto sub = ParseJson(Run({"account", "show"}).out);
    ASSERT_TRUE(sub.ok());
    sub_ = sub->Find("id")->string_value();
  }
  CliResult Run(const std::vector<std::string>& args) { return RunCli(args, "", env_); }
  Json RunJson(const std::vector<std::string>& args, int want_exit = 0) {
    CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, want_exit) << Join(args, " ") << "\n" << r.err;
    auto j = ParseJson(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }
  std::string Group(const std::string& g) {
    return "/subscriptions/" + sub_ + "/resourceGroups/" + g;
  }
  std::vector<std::string> Keys(const Json& o) {
    std::vector<std::string> k;
    for (const JsonMember& m : o.object_items()) k.push_back(m.key);
    return k;
  }

  std::string home_;
  std::map<std::string, std::string> env_;
  std::string sub_;
};

TEST_F(AuthCliTest, GetAccessTokenPrintsAzShapeForTheOwner) {
  Json t = RunJson({"account", "get-access-token"});
  EXPECT_EQ(Keys(t), (std::vector<std::string>{"accessToken", "expiresOn", "expires_on",
                                               "subscription", "tenant", "tokenType"}));
  EXPECT_EQ(t.Find("tokenType")->string_value(), "Bearer");
  EXPECT_EQ(t.Find("subscription")->string_value(), sub_);
  std::string tenant = t.Find("tenant")->string_value();
  EXPECT_TRUE(IsGuid(tenant));
  std::vector<std::string> parts = Split(t.Find("accessToken")->string_value(), '.');
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(Base64UrlDecode(parts[0]), R"({"alg":"HS256","typ":"JWT"})");
  auto claims = ParseJson(Base64UrlDecode(parts[1]));
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->Find("tid")->string_value(), tenant);
  EXPECT_TRUE(IsGuid(claims->Find("oid")->string_value()));
  EXPECT_EQ(claims->Find("upn")->string_value(), "owner");
  int64_t iat = *claims->Find("iat")->AsInt64();
  int64_t exp = *claims->Find("exp")->AsInt64();
  EXPECT_EQ(exp - iat, 3600);
  EXPECT_EQ(t.Find("expires_on")->AsInt64(), exp);
  // The signing key was made with the data directory's first token, private.
  struct stat st;
  ASSERT_EQ(stat((home_ + "/token-signing.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  // The owner is one principal: a second token names the same oid.
  Json again = RunJson({"account", "get-access-token"});
  auto claims2 =
      ParseJson(Base64UrlDecode(Split(again.Find("accessToken")->string_value(), '.')[1]));
  EXPECT_EQ(claims2->Find("oid")->string_value(), claims->Find("oid")->string_value());
}

TEST_F(AuthCliTest, CreateForRbacGivesACredentialThatSignsInAndIsStoredHashed) {
  CliResult r = Run({"ad", "sp", "create-for-rbac", "--name", "ci", "--role", "Contributor",
                     "--scopes", Group("images")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto sp = ParseJson(r.out);
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(Keys(*sp), (std::vector<std::string>{"appId", "displayName", "password", "tenant"}));
  EXPECT_EQ(sp->Find("displayName")->string_value(), "ci");
  std::string app = sp->Find("appId")->string_value();
  std::string password = sp->Find("password")->string_value();
  EXPECT_TRUE(IsGuid(app));
  EXPECT_GE(password.size(), 32u);
  EXPECT_NE(r.err.find("Creating 'Contributor' role assignment under scope '" + Group("images")),
            std::string::npos)
      << r.err;

  Json token = RunJson({"account", "get-access-token", "--service-principal", "--username", app,
                        "--password", password});
  auto claims =
      ParseJson(Base64UrlDecode(Split(token.Find("accessToken")->string_value(), '.')[1]));
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->Find("appid")->string_value(), app);
  EXPECT_EQ(claims->Find("idtyp")->string_value(), "app");
  EXPECT_EQ(token.Find("tenant")->string_value(), sp->Find("tenant")->string_value());

  CliResult wrong = Run(
      {"account", "get-access-token", "--service-principal", "-u", app, "-p", "WrongSecret123"});
  EXPECT_EQ(wrong.exit_code, 5);
  EXPECT_NE(wrong.err.find("AADSTS7000215: Invalid client secret"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("WrongSecret123"), std::string::npos);
  EXPECT_EQ(wrong.out, "");
  CliResult unknown = Run({"account", "get-access-token", "--service-principal", "-u",
                           "00000000-0000-4000-8000-000000000000", "-p", password});
  EXPECT_EQ(unknown.exit_code, 5);
  EXPECT_NE(unknown.err.find("AADSTS700016"), std::string::npos);
  EXPECT_EQ(unknown.err.find(password), std::string::npos);

  // The assignment is there, named as az names it.
  Json list =
      RunJson({"role", "assignment", "list", "--assignee", app, "--scope", Group("images")});
  ASSERT_EQ(list.array_items().size(), 1u);
  EXPECT_EQ(list.array_items()[0].Find("roleDefinitionName")->string_value(), "Contributor");
  EXPECT_EQ(list.array_items()[0].Find("principalName")->string_value(), "ci");

  // Nothing on disk holds the password: only its salted hash is stored.
  for (const char* f : {"/meta.db", "/meta.db-wal"}) {
    std::string bytes = ReadOrEmpty(home_ + f);
    EXPECT_EQ(bytes.find(password), std::string::npos) << f;
  }
  std::string db = ReadOrEmpty(home_ + "/meta.db") + ReadOrEmpty(home_ + "/meta.db-wal");
  EXPECT_NE(db.find("pbkdf2-sha256$100000$"), std::string::npos);

  // A role without scopes, an unknown role and a missing scope are refused,
  // and nothing is left half-created.
  CliResult no_scope = Run({"ad", "sp", "create-for-rbac", "--name", "x", "--role", "Reader"});
  EXPECT_EQ(no_scope.exit_code, 1);
  EXPECT_NE(no_scope.err.find("--scopes"), std::string::npos);
  CliResult bad_role = Run({"ad", "sp", "create-for-rbac", "--name", "x", "--role", "Superuser",
                            "--scopes", Group("images")});
  EXPECT_EQ(bad_role.exit_code, 1);
  EXPECT_NE(bad_role.err.find("--role"), std::string::npos);
  CliResult missing = Run({"ad", "sp", "create-for-rbac", "--name", "x", "--role", "Reader",
                           "--scopes", Group("images"), Group("nope")});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("ResourceGroupNotFound"), std::string::npos) << missing.err;
  Json sps = RunJson({"ad", "sp", "list"});
  ASSERT_EQ(sps.array_items().size(), 1u);
  EXPECT_EQ(sps.array_items()[0].Find("displayName")->string_value(), "ci");
  EXPECT_EQ(sps.Dump().find(password), std::string::npos);

  // Deleting the service principal takes its assignments and its sign-in.
  ASSERT_EQ(Run({"ad", "sp", "delete", "--id", app}).exit_code, 0);
  EXPECT_EQ(RunJson({"role", "assignment", "list", "--all"}).array_items().size(), 0u);
  EXPECT_EQ(Run({"account", "get-access-token", "--service-principal", "-u", app, "-p", password})
                .exit_code,
            5);
}

TEST_F(AuthCliTest, RoleAssignmentCreateListDeleteAtEveryScope) {
  Json idy = RunJson({"identity", "create", "-g", "images", "-n", "builder-id", "-l", "eastus"});
  std::string idy_id = idy.Find("id")->string_value();
  std::string principal = idy.Find("principalId")->string_value();
  std::string gallery = Group("images") + "/providers/Microsoft.Compute/galleries/gal";

  Json a = RunJson({"role", "assignment", "create", "--assignee", idy_id, "--role", "Reader",
                    "--scope", Group("images")});
  std::string name = a.Find("name")->string_value();
  EXPECT_TRUE(IsGuid(name));
  EXPECT_EQ(a.Find("id")->string_value(),
            Group("images") + "/providers/Microsoft.Authorization/roleAssignments/" + name);
  EXPECT_EQ(a.Find("principalId")->string_value(), principal);
  EXPECT_EQ(a.Find("principalType")->string_value(), "ServicePrincipal");
  EXPECT_EQ(a.Find("roleDefinitionName")->string_value(), "Reader");
  EXPECT_EQ(a.Find("roleDefinitionId")->string_value(),
            "/subscriptions/" + sub_ +
                "/providers/Microsoft.Authorization/roleDefinitions/"
                "acdd72a7-3385-48ef-bd42-f606fba81ae7");
  EXPECT_EQ(a.Find("scope")->string_value(), Group("images"));
  EXPECT_EQ(a.Find("resourceGroup")->string_value(), "images");

  CliResult dup = Run({"role", "assignment", "create", "--assignee", principal, "--role", "reader",
                       "--scope", Group("images")});
  EXPECT_EQ(dup.exit_code, 4);
  EXPECT_NE(dup.err.find("RoleAssignmentExists"), std::string::npos) << dup.err;

  Json at_sub = RunJson({"role", "assignment", "create", "--assignee", principal, "--role",
                         "Contributor", "--scope", "/subscriptions/" + sub_});
  EXPECT_EQ(at_sub.Find("id")->string_value(),
            "/subscriptions/" + sub_ + "/providers/Microsoft.Authorization/roleAssignments/" +
                at_sub.Find("name")->string_value());
  EXPECT_EQ(at_sub.Find("resourceGroup"), nullptr);
  Json at_res = RunJson({"role", "assignment", "create", "--assignee", principal, "--role", "Owner",
                         "--scope",
                         Group("images") + "/providers/Microsoft."
                                           "ManagedIdentity/"
                                           "userAssignedIdentities/builder-id"});
  EXPECT_EQ(at_res.Find("roleDefinitionName")->string_value(), "Owner");

  // az's list: exactly --scope (default the subscription), or with
  // --include-inherited the scopes above, or --all.
  EXPECT_EQ(RunJson({"role", "assignment", "list"}).array_items().size(), 1u);
  EXPECT_EQ(
      RunJson({"role", "assignment", "list", "--scope", Group("images")}).array_items().size(), 1u);
  EXPECT_EQ(RunJson({"role", "assignment", "list", "--scope", gallery, "--include-inherited"})
                .array_items()
                .size(),
            2u);
  EXPECT_EQ(RunJson({"role", "assignment", "list", "--all"}).array_items().size(), 3u);
  EXPECT_EQ(
      RunJson({"role", "assignment", "list", "--all", "--role", "Owner"}).array_items().size(), 1u);
  EXPECT_EQ(RunJson({"role", "assignment", "list", "--scope", Group("other")}).array_items().size(),
            0u);

  // Bad input names the flag.
  CliResult bad_role = Run({"role", "assignment", "create", "--assignee", principal, "--role",
                            "Admin", "--scope", Group("images")});
  EXPECT_EQ(bad_role.exit_code, 1);
  EXPECT_NE(bad_role.err.find("--role"), std::string::npos);
  CliResult bad_scope = Run({"role", "assignment", "create", "--assignee", principal, "--role",
                             "Reader", "--scope", "/subscriptions/x"});
  EXPECT_EQ(bad_scope.exit_code, 1);
  EXPECT_NE(bad_scope.err.find("--scope"), std::string::npos);
  CliResult nobody = Run({"role", "assignment", "create", "--assignee", "nobody", "--role",
                          "Reader", "--scope", Group("images")});
  EXPECT_EQ(nobody.exit_code, 3);
  EXPECT_NE(nobody.err.find("PrincipalNotFound"), std::string::npos);

  // Delete by flags, then by ID.
  CliResult del = Run({"role", "assignment", "delete", "--assignee", idy_id, "--role", "Reader",
                       "--scope", Group("images")});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(RunJson({"role", "assignment", "list", "--all"}).array_items().size(), 2u);
  CliResult none =
      Run({"role", "assignment", "delete", "--role", "Reader", "--scope", Group("images")});
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_NE(none.err.find("No matched assignments"), std::string::npos);
  ASSERT_EQ(Run({"role", "assignment", "delete", "--ids", at_sub.Find("id")->string_value(),
                 at_res.Find("id")->string_value()})
                .exit_code,
            0);
  EXPECT_EQ(RunJson({"role", "assignment", "list", "--all"}).array_items().size(), 0u);
}

TEST_F(AuthCliTest, IdentityCreateShowListDelete) {
  Json c = RunJson({"identity", "create", "-g", "images", "-n", "builder-id", "-l", "eastus",
                    "--tags", "team=img"});
  EXPECT_EQ(Keys(c),
            (std::vector<std::string>{"clientId", "id", "location", "name", "principalId",
                                      "resourceGroup", "systemData", "tags", "tenantId", "type"}));
  EXPECT_EQ(c.Find("type")->string_value(), "Microsoft.ManagedIdentity/userAssignedIdentities");
  EXPECT_EQ(
      c.Find("id")->string_value(),
      Group("images") + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/builder-id");
  EXPECT_TRUE(IsGuid(c.Find("principalId")->string_value()));
  EXPECT_TRUE(IsGuid(c.Find("clientId")->string_value()));
  Json token = RunJson({"account", "get-access-token"});
  EXPECT_EQ(c.Find("tenantId")->string_value(), token.Find("tenant")->string_value());
  EXPECT_EQ(c.Find("tags")->Find("team")->string_value(), "img");

  Json s = RunJson({"identity", "show", "-g", "images", "-n", "builder-id"});
  EXPECT_EQ(s.Find("principalId")->string_value(), c.Find("principalId")->string_value());
  ASSERT_EQ(RunJson({"identity", "create", "-g", "other", "-n", "second", "-l", "eastus"})
                .Find("name")
                ->string_value(),
            "second");
  EXPECT_EQ(RunJson({"identity", "list"}).array_items().size(), 2u);
  EXPECT_EQ(RunJson({"identity", "list", "-g", "images"}).array_items().size(), 1u);

  CliResult bad = Run({"identity", "create", "-g", "images", "-n", "a/b", "-l", "eastus"});
  EXPECT_NE(bad.exit_code, 0);
  CliResult short_name = Run({"identity", "create", "-g", "images", "-n", "ab", "-l", "eastus"});
  EXPECT_EQ(short_name.exit_code, 1);
  EXPECT_NE(short_name.err.find("3-128"), std::string::npos) << short_name.err;
  CliResult no_group = Run({"identity", "create", "-g", "nope", "-n", "abc", "-l", "eastus"});
  EXPECT_EQ(no_group.exit_code, 3);
  EXPECT_NE(no_group.err.find("nope"), std::string::npos);

  ASSERT_EQ(Run({"identity", "delete", "-g", "images", "-n", "builder-id"}).exit_code, 0);
  CliResult gone = Run({"identity", "show", "-g", "images", "-n", "builder-id"});
  EXPECT_EQ(gone.exit_code, 3);
  EXPECT_NE(gone.err.find("ResourceNotFound"), std::string::npos) << gone.err;
  EXPECT_EQ(RunJson({"identity", "list"}).array_items().size(), 1u);
}

}  // namespace
}  // namespace imagesmith::e2e
