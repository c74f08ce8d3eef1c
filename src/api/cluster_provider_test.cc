// Microsoft.CycleCloud/clusters through Registry::Dispatch, on a real SQLite
// database: import stores the assembled cluster with nodes Off; a bad
// template is refused with its location and nothing is stored; roles apply.
#include "api/provider_test_util.h"

namespace imagesmith::api {
namespace {

const char* kTemplate =
    "[cluster Lab]\n"
    "  [[node defaults]]\n"
    "  ImageName = $Image\n"
    "  [[node head]]\n"
    "  MachineType = Standard_D2s_v3\n"
    "  [[nodearray exec]]\n"
    "  MaxCount = $Max\n"
    "[parameters P]\n"
    "  [[parameter Image]]\n"
    "  DefaultValue = cycle.image.ubuntu22\n"
    "  [[parameter Max]]\n"
    "  ParameterType = Integer\n"
    "  DefaultValue = 4\n";

class ClusterProviderTest : public ProviderTest {
 protected:
  ResourceId Cluster(const std::string& name) {
    return ResourceId::ForResource(services_.subscription, "cc", "Microsoft.CycleCloud", "clusters",
                                   name);
  }
  static Json Body(const std::string& text, const std::string& params_json = "") {
    Json props = Json::MakeObject();
    Json file = Json::MakeObject();
    file.Set("name", Json::String("lab.txt"));
    file.Set("text", Json::String(text));
    props.Set("template", std::move(file));
    if (!params_json.empty()) {
      Json p = Json::MakeObject();
      p.Set("name", Json::String("params.json"));
      p.Set("text", Json::String(params_json));
      props.Set("parameterFile", std::move(p));
    }
    Json body = Json::MakeObject();
    body.Set("properties", std::move(props));
    return body;
  }
};

TEST_F(ClusterProviderTest, ImportStoresTheAssembledClusterWithNodesOff) {
  MakeGroup("cc");
  // The image (a CycleCloud built-in with no Debian equivalent) is not
  // resolved at import: the template imports.
  auto r = Call(Verb::kPut, Cluster("lab"), Body(kTemplate, R"({"Max": 9})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->http_status, 201);
  const Json& p = *r->body.Find("properties");
  EXPECT_EQ(p.Find("state")->string_value(), "Off");
  EXPECT_EQ(p.Find("clusterSection")->string_value(), "Lab");
  EXPECT_EQ(p.Find("nodeDriver")->string_value(), "qemu");
  // One node record per [[node]] (Off); a nodearray has none until it
  // starts, and is listed in nodearrays with its limit.
  const Json& nodes = *p.Find("nodes");
  ASSERT_EQ(nodes.array_items().size(), 1u);
  EXPECT_EQ(nodes.array_items()[0].Find("name")->string_value(), "head");
  EXPECT_EQ(nodes.array_items()[0].Find("state")->string_value(), "Off");
  EXPECT_TRUE(nodes.array_items()[0].Find("nodearray")->is_null());
  const Json& arrays = *p.Find("nodearrays");
  ASSERT_EQ(arrays.array_items().size(), 1u);
  EXPECT_EQ(arrays.array_items()[0].Find("name")->string_value(), "exec");
  EXPECT_EQ(arrays.array_items()[0].Find("maxNodes")->AsInt64(), 9);
  EXPECT_EQ(arrays.array_items()[0].Find("limit")->string_value(), "MaxCount 9");
  const Json& exec = p.Find("cluster")->Find("nodes")->array_items()[1];
  EXPECT_EQ(exec.Find("attributes")->Find("MaxCount")->AsInt64(), 9);
  auto got = Call(Verb::kGet, Cluster("lab"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->etag, r->etag);
  auto list = List(Group("cc"), "Microsoft.CycleCloud/clusters");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Names(*list), std::vector<std::string>{"lab"});
  auto del = Call(Verb::kDelete, Cluster("lab"));
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(Arm(Call(Verb::kGet, Cluster("lab"))).http_status, 404);
}

TEST_F(ClusterProviderTest, BadTemplateIsRefusedWithItsLocationAndNothingIsStored) {
  MakeGroup("cc");
  std::string bad = std::string(kTemplate) + "  [[parameter Broken]]\n  DefaultValue := 1 +\n";
  ArmError e = Arm(Call(Verb::kPut, Cluster("lab"), Body(bad)));
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.code, "InvalidTemplate");
  EXPECT_EQ(e.message, "lab.txt:15:22: expected a value, found end of expression");
  e = Arm(Call(Verb::kPut, Cluster("lab"), Body(kTemplate, R"({"Max": "many"})")));
  EXPECT_EQ(e.code, "InvalidTemplate");
  EXPECT_EQ(e.message.rfind("params.json:1:2: parameter Max must be an integer", 0), 0u)
      << e.message;
  auto list = List(Group("cc"), "Microsoft.CycleCloud/clusters");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(Names(*list).empty());
  // A missing group is its own error.
  auto other = ResourceId::ForResource(services_.subscription, "nogroup", "Microsoft.CycleCloud",
                                       "clusters", "lab");
  EXPECT_EQ(Arm(Call(Verb::kPut, other, Body(kTemplate))).http_status, 404);
}

TEST_F(ClusterProviderTest, StrangerCannotImportOrRead) {
  MakeGroup("cc");
  EXPECT_EQ(Arm(Call(Verb::kPut, Cluster("lab"), Body(kTemplate), &stranger_)).code,
            "AuthorizationFailed");
  ASSERT_TRUE(Call(Verb::kPut, Cluster("lab"), Body(kTemplate)).ok());
  EXPECT_EQ(Arm(Call(Verb::kGet, Cluster("lab"), Json(), &stranger_)).http_status, 403);
}

}  // namespace
}  // namespace imagesmith::api
