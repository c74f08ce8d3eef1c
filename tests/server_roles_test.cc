// The built-in roles through HTTP (issue 11, "Identity and roles"): three
// service principals hold Owner, Contributor and Reader on one resource
// group, a fourth holds nothing, and each calls every kind of operation of
// every resource type there with a token from the token endpoint. Each call
// is allowed or refused (403 AuthorizationFailed) exactly as Azure's role
// definitions say: Reader reads everything and may do nothing else,
// Contributor may do everything except grant access, Owner everything, and a
// principal without a role nothing.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "base/json.h"
#include "e2e_util.h"
#include "serve_util.h"
#include "server/test_client.h"

namespace imagesmith::e2e {
namespace {

using server::testing::ClientResponse;
using server::testing::Request;

enum class Kind { kRead, kWrite, kDelete, kAction, kGrant };

struct Call {
  std::string what;  // for messages
  Kind kind;
  std::string method;
  std::string path;  // with {role} replaced by the caller's role name
  std::string body;
};

bool Allowed(const std::string& role, Kind kind) {
  if (role == "Owner") return true;
  if (role == "Contributor") return kind != Kind::kGrant;
  if (role == "Reader") return kind == Kind::kRead;
  return false;  // no role
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t at; (at = s.find(from)) != std::string::npos;) s.replace(at, from.size(), to);
  return s;
}

class ServeRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = MakeTempDir();
    serve_ = std::make_unique<ServeProcess>(home_, std::vector<std::string>{"--access-log", "off"});
    ASSERT_TRUE(serve_->ok()) << serve_->Stderr();
    auto sub = RunCli({"account", "show"}, "", {{"IMAGESMITH_HOME", home_}});
    ASSERT_EQ(sub.exit_code, 0) << sub.err;
    sub_ = ParseJson(sub.out)->Find("id")->string_value();
    owner_ = "Authorization: Bearer " + OwnerToken(home_);
  }
  ClientResponse Send(const std::string& auth, const std::string& method, const std::string& path,
                      const std::string& body = "") {
    auto r =
        Request(serve_->address(), method, path, body, {auth, "Content-Type: application/json"});
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.status().message();
    return r.ok() ? *r : ClientResponse();
  }
  // A service principal with `role` on the group (none when empty), and a
  // bearer token for it from the token endpoint.
  std::string PrincipalToken(const std::string& name, const std::string& role,
                             std::string* object_id) {
    std::vector<std::string> args = {"ad", "sp", "create-for-rbac", "--name", name};
    if (!role.empty()) args.insert(args.end(), {"--role", role, "--scopes", Group()});
    CliResult sp = RunCli(args, "", {{"IMAGESMITH_HOME", home_}});
    EXPECT_EQ(sp.exit_code, 0) << sp.err;
    auto creds = ParseJson(sp.out);
    EXPECT_TRUE(creds.ok()) << sp.out;
    if (!creds.ok()) return "";
    auto token =
        Request(serve_->address(), "POST",
                "/" + creds->Find("tenant")->string_value() + "/oauth2/v2.0/token",
                "grant_type=client_credentials&client_id=" + creds->Find("appId")->string_value() +
                    "&client_secret=" + creds->Find("password")->string_value() +
                    "&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
                {"Content-Type: application/x-www-form-urlencoded"});
    EXPECT_TRUE(token.ok() && token->status == 200) << (token.ok() ? token->body : "");
    if (!token.ok()) return "";
    CliResult shown = RunCli({"ad", "sp", "list"}, "", {{"IMAGESMITH_HOME", home_}});
    auto list = ParseJson(shown.out);
    if (list.ok() && list->is_array()) {
      for (const Json& p : list->array_items()) {
        if (p.Find("appId")->string_value() == creds->Find("appId")->string_value()) {
          *object_id = p.Find("id")->string_value();
        }
      }
    }
    return "Authorization: Bearer " + ParseJson(token->body)->Find("access_token")->string_value();
  }
  std::string Group() const { return "/subscriptions/" + sub_ + "/resourceGroups/rg"; }

  std::string home_, sub_, owner_;
  std::unique_ptr<ServeProcess> serve_;
};

TEST_F(ServeRolesTest, EveryBuiltInRoleAgainstEveryOperationAsAzureDefinesThem) {
  const std::string g = Group();
  const std::string gal = g + "/providers/Microsoft.Compute/galleries/gal";
  const std::string tpl = g + "/providers/Microsoft.VirtualMachineImages/imageTemplates";
  const std::string ids = g + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities";
  const std::string ra = g + "/providers/Microsoft.Authorization/roleAssignments";
  const char* kGal = "?api-version=2024-03-03";
  const char* kTpl = "?api-version=2022-07-01";
  const char* kId = "?api-version=2023-01-31";
  const char* kRa = "?api-version=2022-04-01";
  const char* kRg = "?api-version=2021-04-01";
  const std::vector<std::string> roles = {"Owner", "Contributor", "Reader", "none"};
  // A template that starts and fails at once (its source image is missing),
  // so `run` costs no build.
  const std::string template_body =
      R"({"location": "eastus", "properties": {"source": {"type": "ManagedImage", "imageId": ")" +
      g + R"(/providers/Microsoft.Compute/images/missing"},
      "distribute": [{"type": "VHD", "runOutputName": "vhd"}]}})";

  // The owner sets the scene: the group, a gallery with a definition, a
  // template, an identity, and one gallery per role to delete.
  ASSERT_EQ(Send(owner_, "PUT", g + kRg, R"({"location": "eastus"})").status, 201);
  ASSERT_EQ(Send(owner_, "PUT", gal + kGal, R"({"location": "eastus"})").status, 201);
  ASSERT_EQ(Send(owner_, "PUT", gal + "/images/def" + kGal,
                 R"({"location": "eastus", "properties": {"osType": "Linux",
                     "identifier": {"publisher": "p", "offer": "o", "sku": "s"}}})")
                .status,
            201);
  ASSERT_EQ(Send(owner_, "PUT", tpl + "/tpl" + kTpl, template_body).status, 201);
  ClientResponse id = Send(owner_, "PUT", ids + "/ident" + kId, R"({"location": "eastus"})");
  ASSERT_EQ(id.status, 201) << id.body;
  for (const std::string& role : roles) {
    ASSERT_EQ(Send(owner_, "PUT", g + "/providers/Microsoft.Compute/galleries/del" + role + kGal,
                   R"({"location": "eastus"})")
                  .status,
              201);
  }

  const std::vector<Call> calls = {
      {"read the group", Kind::kRead, "GET", g + kRg, ""},
      {"tag the group", Kind::kWrite, "PATCH", g + kRg, R"({"tags": {"by": "{role}"}})"},
      {"list galleries", Kind::kRead, "GET", g + "/providers/Microsoft.Compute/galleries" + kGal,
       ""},
      {"read a gallery", Kind::kRead, "GET", gal + kGal, ""},
      {"write a gallery", Kind::kWrite, "PUT",
       g + "/providers/Microsoft.Compute/galleries/new{role}" + kGal, R"({"location": "eastus"})"},
      {"delete a gallery", Kind::kDelete, "DELETE",
       g + "/providers/Microsoft.Compute/galleries/del{role}" + kGal, ""},
      {"read a definition", Kind::kRead, "GET", gal + "/images/def" + kGal, ""},
      {"write a definition", Kind::kWrite, "PUT", gal + "/images/d{role}" + kGal,
       R"({"location": "eastus", "properties": {"osType": "Linux",
           "identifier": {"publisher": "p", "offer": "o", "sku": "{role}"}}})"},
      {"list versions", Kind::kRead, "GET", gal + "/images/def/versions" + kGal, ""},
      {"read a template", Kind::kRead, "GET", tpl + "/tpl" + kTpl, ""},
      {"list templates", Kind::kRead, "GET", tpl + kTpl, ""},
      {"write a template", Kind::kWrite, "PUT", tpl + "/t{role}" + kTpl, template_body},
      {"run a template", Kind::kAction, "POST", tpl + "/tpl/run" + kTpl, ""},
      {"cancel a run", Kind::kAction, "POST", tpl + "/tpl/cancel" + kTpl, ""},
      {"read an identity", Kind::kRead, "GET", ids + "/ident" + kId, ""},
      {"write an identity", Kind::kWrite, "PUT", ids + "/id-{role}" + kId,
       R"({"location": "eastus"})"},
      {"list role assignments", Kind::kRead, "GET", ra + kRa, ""},
  };

  int checked = 0;
  for (const std::string& role : roles) {
    std::string object_id;
    const std::string token = PrincipalToken("p-" + role, role == "none" ? "" : role, &object_id);
    ASSERT_FALSE(token.empty());
    std::vector<Call> all = calls;
    // Granting access: a Reader role assignment for this principal.
    all.push_back(
        {"grant a role", Kind::kGrant, "PUT",
         ra + "/00000000-0000-4000-8000-00000000000" + std::to_string(checked % 10) + kRa,
         R"({"properties": {"roleDefinitionId": "/subscriptions/)" + sub_ +
             R"(/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7", "principalId": ")" +
             object_id + R"("}})"});
    for (const Call& c : all) {
      const std::string path = Replace(c.path, "{role}", role);
      ClientResponse r = Send(token, c.method, path, Replace(c.body, "{role}", role));
      const std::string label = role + " may" + (Allowed(role, c.kind) ? "" : " not") + " " +
                                c.what + " (" + c.method + " " + path +
                                "): " + std::to_string(r.status) + " " + r.body;
      if (Allowed(role, c.kind)) {
        EXPECT_NE(r.status, 403) << label;
        EXPECT_NE(r.status, 401) << label;
        EXPECT_LT(r.status, 500) << label;
        // Runs may overlap (409 while another role's run is going) and a
        // cancel finds no run in progress (409); everything else succeeds.
        if (c.kind != Kind::kAction) {
          EXPECT_LT(r.status, 300) << label;
        }
      } else {
        EXPECT_EQ(r.status, 403) << label;
        EXPECT_NE(r.body.find("AuthorizationFailed"), std::string::npos) << label;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4 * 18);
}

}  // namespace
}  // namespace imagesmith::e2e
