#include "server/router.h"

#include <gtest/gtest.h>

#include "api/arm_error.h"

namespace imagesmith::server {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

StatusOr<Route> R(const std::string& method, const std::string& path) {
  return RouteRequest(method, Split(path));
}

const std::string kRg = "/subscriptions/s/resourceGroups/g";

int HttpStatusOf(const Status& s) {
  std::string m = s.message();
  if (m.rfind("NotFound: ", 0) == 0) return 404;
  return api::ToArmError(s).http_status;
}

TEST(Router, ResourceVerbsOnGroupsAndResources) {
  auto g = R("PUT", kRg);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->request.verb, api::Verb::kPut);
  EXPECT_EQ(g->request.id.ToString(), kRg);
  auto v =
      R("DELETE", kRg + "/providers/Microsoft.Compute/galleries/gal/images/def/versions/1.0.0");
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->request.verb, api::Verb::kDelete);
  EXPECT_EQ(v->request.id.FullType(), "Microsoft.Compute/galleries/images/versions");
  EXPECT_EQ(v->request.id.name(), "1.0.0");
  EXPECT_EQ(v->route_template,
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
            "Microsoft.Compute/galleries/{name}/images/{name2}/versions/{name3}");
}

TEST(Router, KeywordsAreCaseInsensitive) {
  auto r = R("GET", "/SUBSCRIPTIONS/s/resourcegroups/g/PROVIDERS/Microsoft.Compute/galleries/x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->request.id.ToString(),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x");
}

TEST(Router, ListsAtEveryScope) {
  auto sub = R("GET", "/subscriptions/s/providers/Microsoft.Compute/galleries");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->request.verb, api::Verb::kList);
  EXPECT_EQ(sub->request.list_type, "Microsoft.Compute/galleries");
  EXPECT_EQ(sub->request.id.kind(), ResourceId::Kind::kSubscription);
  auto group = R("GET", kRg + "/providers/Microsoft.Compute/galleries");
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->request.id.kind(), ResourceId::Kind::kResourceGroup);
  EXPECT_EQ(group->request.list_type, "Microsoft.Compute/galleries");
  auto child = R("GET", kRg + "/providers/Microsoft.Compute/galleries/gal/images");
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(child->request.list_type, "Microsoft.Compute/galleries/images");
  EXPECT_EQ(child->request.id.name(), "gal");
  auto groups = R("GET", "/subscriptions/s/resourcegroups");
  ASSERT_TRUE(groups.ok());
  EXPECT_EQ(groups->request.list_type, "Microsoft.Resources/resourceGroups");
}

TEST(Router, ActionsArePosts) {
  auto r = R("POST", kRg + "/providers/Microsoft.VirtualMachineImages/imageTemplates/t/run");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->request.verb, api::Verb::kAction);
  EXPECT_EQ(r->request.action, "run");
  EXPECT_EQ(r->request.id.name(), "t");
}

TEST(Router, ServerRoutesAndOperations) {
  EXPECT_EQ(R("GET", "/healthz")->kind, RouteKind::kHealth);
  EXPECT_EQ(R("GET", "/metrics")->kind, RouteKind::kMetrics);
  EXPECT_EQ(R("GET", "/openapi.json")->kind, RouteKind::kOpenApi);
  auto token = R("POST", "/tenant-1/oauth2/v2.0/token");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->tenant, "tenant-1");
  auto op = R("GET",
              "/subscriptions/s/providers/Microsoft.VirtualMachineImages/locations/eastus/"
              "operations/abc");
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->kind, RouteKind::kOperationStatus);
  EXPECT_EQ(op->operation_id, "abc");
  EXPECT_EQ(op->location, "eastus");
}

TEST(Router, RoleAssignmentsAtAnyScope) {
  const std::string rg = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/g";
  auto one = R("PUT", rg + "/providers/Microsoft.Compute/galleries/gal/providers/"
                           "Microsoft.Authorization/roleAssignments/0000-1");
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->request.verb, api::Verb::kPut);
  EXPECT_EQ(one->request.id.ToString(), rg + "/providers/Microsoft.Compute/galleries/gal");
  EXPECT_EQ(one->request.extension_type, "Microsoft.Authorization/roleAssignments");
  EXPECT_EQ(one->request.extension_name, "0000-1");
  auto list = R("GET",
                "/subscriptions/00000000-0000-0000-0000-000000000001/providers/"
                "Microsoft.Authorization/roleAssignments");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->request.verb, api::Verb::kList);
  EXPECT_EQ(list->request.id.kind(), ResourceId::Kind::kSubscription);
  EXPECT_EQ(list->request.list_type, "Microsoft.Authorization/roleAssignments");
  EXPECT_FALSE(R("PATCH", rg + "/providers/Microsoft.Authorization/roleAssignments/x").ok());
}

TEST(Router, PermissionsAtAnyScopeAndTheSubscriptionList) {
  const std::string rg = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/g";
  auto p = R("GET", rg + "/providers/Microsoft.Compute/galleries/gal/providers/"
                         "Microsoft.Authorization/permissions");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->kind, RouteKind::kArm);
  EXPECT_EQ(p->request.verb, api::Verb::kList);
  EXPECT_EQ(p->request.list_type, "Microsoft.Authorization/permissions");
  EXPECT_EQ(p->request.id.ToString(), rg + "/providers/Microsoft.Compute/galleries/gal");
  EXPECT_EQ(p->route_template, "/{scope}/providers/Microsoft.Authorization/permissions");
  EXPECT_FALSE(R("PUT", rg + "/providers/Microsoft.Authorization/permissions").ok());
  auto subs = R("GET", "/subscriptions");
  ASSERT_TRUE(subs.ok()) << subs.status().message();
  EXPECT_EQ(subs->request.verb, api::Verb::kList);
  EXPECT_EQ(subs->request.list_type, "Microsoft.Resources/subscriptions");
  EXPECT_FALSE(R("POST", "/subscriptions").ok());
}

TEST(Router, TheConsoleAtTheRootAndUnderConsole) {
  auto root = RouteRequest("GET", {});  // "/" (HttpRequest::segments is empty)
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->kind, RouteKind::kConsole);
  EXPECT_EQ(root->asset, "index.html");
  auto js = R("GET", "/console/app.js");
  ASSERT_TRUE(js.ok());
  EXPECT_EQ(js->kind, RouteKind::kConsole);
  EXPECT_EQ(js->asset, "app.js");
  EXPECT_EQ(js->route_template, "/console/{asset}");
  EXPECT_EQ(HttpStatusOf(RouteRequest("POST", {}).status()), 405);
  // ARM paths are never the console's.
  EXPECT_EQ(R("GET", kRg)->kind, RouteKind::kArm);
}

TEST(Router, WrongMethodsAre405UnknownPathsAre404) {
  EXPECT_EQ(HttpStatusOf(R("POST", kRg).status()), 405);
  EXPECT_EQ(HttpStatusOf(R("DELETE", "/subscriptions/s").status()), 405);
  EXPECT_EQ(HttpStatusOf(R("PUT", "/metrics").status()), 405);
  EXPECT_EQ(HttpStatusOf(R("GET", "/token").status()), 404);
  EXPECT_EQ(HttpStatusOf(R("GET", "/").status()), 404);
  EXPECT_EQ(HttpStatusOf(R("GET", kRg + "/things").status()), 404);
  EXPECT_EQ(HttpStatusOf(R("GET", "/subscriptions/s/whatever").status()), 404);
  EXPECT_EQ(HttpStatusOf(R("PUT", kRg + "/providers/Microsoft.Compute/galleries").status()), 405);
}

TEST(Router, RefusesBadNames) {
  for (std::string bad : {std::string(".."), std::string("a/b"), std::string("a\\b"),
                          std::string("x\x01"), std::string("")}) {
    std::vector<std::string> segs = {
        "subscriptions", "s", "resourceGroups", "g", "providers", "Microsoft.Compute",
        "galleries",     bad};
    auto r = RouteRequest("GET", segs);
    ASSERT_FALSE(r.ok()) << bad;
    api::ArmError e = api::ToArmError(r.status());
    EXPECT_EQ(e.code, "InvalidResourceName") << bad;
    EXPECT_EQ(e.http_status, 400);
  }
  auto group = RouteRequest("GET", {"subscriptions", "s", "resourceGroups", "bad.name."});
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(api::ToArmError(group.status()).code, "InvalidResourceName");
}

}  // namespace
}  // namespace imagesmith::server
