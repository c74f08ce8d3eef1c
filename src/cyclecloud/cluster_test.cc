#include "cyclecloud/cluster.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cyclecloud/template_file.h"

namespace imagesmith::cyclecloud {
namespace {

std::string TestFile(const std::string& name) {
  std::ifstream in(std::string(IMAGESMITH_CYCLECLOUD_TEST_DIR) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

StatusOr<ClusterSpec> Assemble(const std::string& text, const ParameterValues& params = {},
                               const std::string& section = "",
                               const ParameterValues& overrides = {}) {
  ASSIGN_OR_RETURN(TemplateFile f, ParseTemplateFile(text, "t.txt"));
  return AssembleCluster(f, params, section, overrides);
}

ClusterSpec AssembleOk(const std::string& text, const ParameterValues& params = {},
                       const std::string& section = "") {
  StatusOr<ClusterSpec> c = Assemble(text, params, section);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : ClusterSpec{};
}

ParameterValues Params(const std::string& json) {
  StatusOr<ParameterValues> p = ParseParameterFile(json, "p.json");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : ParameterValues{};
}

const Value& Attr(const NodeSpec* node, const char* key) {
  static const Value kMissing;
  if (node == nullptr) return kMissing;
  const Value* v = FindAttribute(node->attributes, key);
  return v ? *v : kMissing;
}

TEST(ClusterTest, WholeValueReferenceKeepsItsTypeEmbeddedBecomesText) {
  const char* t =
      "[cluster C]\n"
      "  [[node n]]\n"
      "  Count = $Count\n"
      "  Flag = ${Enabled}\n"
      "  Items = $List\n"
      "  Label = node-$Count of ${Count * 2}\n"
      "  Pair = $Count, $Enabled, $Unset\n"
      "  Version = \"12\"\n"
      "  Plain = 12\n"
      "[parameters P]\n"
      "  [[parameter Count]]\n  DefaultValue = 3\n"
      "  [[parameter Enabled]]\n  DefaultValue = true\n"
      "  [[parameter List]]\n  DefaultValue := {\"a\", \"b\"}\n"
      "  [[parameter Unset]]\n";
  ClusterSpec c = AssembleOk(t);
  const NodeSpec* n = c.FindNode("n");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(Attr(n, "Count").kind(), Value::Kind::kInt);
  EXPECT_EQ(Attr(n, "Count").int_value(), 3);
  EXPECT_EQ(Attr(n, "Flag").kind(), Value::Kind::kBool);
  EXPECT_EQ(Attr(n, "Items").kind(), Value::Kind::kList);
  EXPECT_EQ(Attr(n, "Label").string_value(), "node-3 of 6");
  ASSERT_EQ(Attr(n, "Pair").kind(), Value::Kind::kList);
  EXPECT_EQ(Attr(n, "Pair").list_items().size(), 2u);  // undefined items drop out
  EXPECT_EQ(Attr(n, "Version").kind(), Value::Kind::kString);
  EXPECT_EQ(Attr(n, "Plain").kind(), Value::Kind::kInt);
}

TEST(ClusterTest, DefaultsAbstractAndExtendsMerge) {
  const char* t =
      "[cluster C]\n"
      "  [[node defaults]]\n"
      "  MachineType = small\n"
      "  ImageName = cycle.image.debian12\n"
      "    [[[configuration]]]\n    a.b = 1\n"
      "    [[[configuration lab]]]\n    version = 2\n"
      "  [[nodearray base]]\n"
      "  Abstract = true\n"
      "  MachineType = big\n"
      "    [[[cluster-init p:execute]]]\n"
      "  [[nodearray exec]]\n"
      "  Extends = base\n"
      "  MaxCount = 4\n"
      "    [[[configuration]]]\n    a.b = 5\n"
      "  [[node head]]\n";
  ClusterSpec c = AssembleOk(t);
  ASSERT_EQ(c.nodes.size(), 2u);  // defaults and the abstract base are not nodes
  const NodeSpec* exec = c.FindNode("EXEC");
  ASSERT_NE(exec, nullptr);
  EXPECT_TRUE(exec->is_array);
  EXPECT_EQ(Attr(exec, "MachineType").string_value(), "big");
  EXPECT_EQ(Attr(exec, "ImageName").string_value(), "cycle.image.debian12");
  EXPECT_EQ(Attr(exec, "Abstract").kind(), Value::Kind::kUndefined);  // not inherited
  EXPECT_EQ(FindAttribute(exec->configuration, "a.b")->int_value(), 5);
  EXPECT_EQ(FindAttribute(exec->configuration, "lab.version")->int_value(), 2);
  ASSERT_EQ(exec->subsections.size(), 1u);
  EXPECT_EQ(exec->subsections[0].name, "p:execute");
  EXPECT_EQ(Attr(c.FindNode("head"), "MachineType").string_value(), "small");
}

TEST(ClusterTest, ExtendsErrorsAreLocated) {
  StatusOr<ClusterSpec> c = Assemble("[cluster C]\n  [[nodearray a]]\n  Extends = nothere\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "t.txt:3:13: Extends names nothere, which is no node of cluster C");
  c = Assemble("[cluster C]\n  [[node a]]\n  Extends = b\n  [[node b]]\n  Extends = a\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("forms a loop"), std::string::npos);
}

TEST(ClusterTest, UnknownParameterReferenceIsLocated) {
  StatusOr<TemplateFile> f =
      ParseTemplateFile(TestFile("unknown-parameter.txt"), "unknown-parameter.txt");
  ASSERT_TRUE(f.ok());
  StatusOr<ClusterSpec> c = AssembleCluster(*f, {}, "");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "unknown-parameter.txt:4:41: unknown parameter CustomImage");
  c = Assemble("[cluster C]\n  [[node n]]\n  X = prefix-$Nope\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "t.txt:3:14: unknown parameter Nope");
}

TEST(ClusterTest, SyntaxErrorAnywhereInTheFileIsLocated) {
  StatusOr<TemplateFile> f = ParseTemplateFile(TestFile("syntax-error.txt"), "syntax-error.txt");
  ASSERT_TRUE(f.ok());
  StatusOr<ClusterSpec> c = AssembleCluster(*f, {}, "");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "syntax-error.txt:4:45: expected a value, found ')'");
  // Also in a parameter section, whose conditions are not evaluated.
  c = Assemble("[cluster C]\n[parameters P]\n  [[parameter X]]\n  Conditions.Hidden := a &&\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "t.txt:4:28: expected a value, found end of expression");
}

TEST(ClusterTest, ParameterFileValuesOverrideDefaultsAndAreTypeChecked) {
  const char* t =
      "[cluster C]\n  [[node n]]\n  Max = $Max\n  Name = $Name\n"
      "[parameters P]\n"
      "  [[parameter Max]]\n  ParameterType = Integer\n  DefaultValue = 2\n"
      "  [[parameter Name]]\n  DefaultValue = x\n";
  EXPECT_EQ(Attr(AssembleOk(t, Params("{\"Max\": 9}")).FindNode("n"), "Max").int_value(), 9);
  StatusOr<ClusterSpec> c = Assemble(t, Params("{\n  \"Max\": \"lots\"\n}"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "p.json:2:3: parameter Max must be an integer (ParameterType at t.txt:7:3), got a "
            "string \"lots\"");
  c = Assemble(t, Params("{\"Nmae\": \"y\"}"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "p.json:1:2: parameter Nmae is not declared by t.txt; did you mean Name?");
  // -P values may name undeclared parameters (CycleCloud's -P).
  c = Assemble("[cluster C]\n  Contents = $raw\n", {}, "",
               {{"raw", ParameterValue{Value::String("{}"), Location{"-P", 1, 1}}}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(FindAttribute(c->attributes, "Contents")->string_value(), "{}");
}

TEST(ClusterTest, PropertiesFileIsTypedLikeTemplateValues) {
  StatusOr<ParameterValues> p = ParseParameterFile(
      "# comment\nMax = 9\nName = \"007\"\nFlag = true\nList = a, b\n", "p.properties");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 4u);
  EXPECT_EQ((*p)[0].second.value.int_value(), 9);
  EXPECT_EQ((*p)[1].second.value.string_value(), "007");
  EXPECT_TRUE((*p)[2].second.value.bool_value());
  EXPECT_EQ((*p)[3].second.value.list_items().size(), 2u);
  StatusOr<ParameterValues> bad = ParseParameterFile("Max = 9\nnot a pair\n", "p.properties");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "p.properties:2:1: expected 'Name = value'");
  bad = ParseParameterFile("{\"a\": }", "p.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("p.json:1:", 0), 0u) << bad.status().message();
}

TEST(ClusterTest, SectionChoiceWithSeveralClusters) {
  std::string text = TestFile("two-clusters.txt");
  StatusOr<ClusterSpec> c = Assemble(text);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "t.txt has 2 [cluster] sections (Small, Big); choose one with -c");
  EXPECT_EQ(AssembleOk(text, {}, "big").nodes.size(), 2u);
  c = Assemble(text, {}, "Medium");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "t.txt has no [cluster Medium] section; it has: Small, Big");
}

TEST(ClusterTest, CountsMustBeWholeNumbers) {
  StatusOr<ClusterSpec> c = Assemble("[cluster C]\n  [[nodearray a]]\n  MaxCount = lots\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "t.txt:3:14: MaxCount of a must be a whole number, got a string \"lots\"");
  c = Assemble("[cluster C]\n  [[nodearray a]]\n  Azure.MaxScalesetSize = 0\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "t.txt:3:27: Azure.MaxScalesetSize of a must be at least 1, got 0");
  // InitialCount may be a boolean, as cyclecloud-slurm's scheduler-ha writes it.
  ClusterSpec ok = AssembleOk("[cluster C]\n  [[nodearray a]]\n  InitialCount = true\n");
  EXPECT_EQ(Attr(ok.FindNode("a"), "InitialCount").int_value(), 1);
}

TEST(ClusterTest, NoderefAndEnvironmentValuesAreDeferred) {
  ClusterSpec c = AssembleOk(
      "[noderef filer]\nSourceClusterName = fs\n"
      "[cluster C]\n  [[node n]]\n  Ip = ${filer.instance.PrivateIp}\n");
  EXPECT_TRUE(Attr(c.FindNode("n"), "Ip").is_deferred());
  ASSERT_EQ(c.deferred_names.size(), 1u);
}

// The test template that exercises every construct of the real templates.
TEST(ClusterTest, FullTestTemplateAssemblesWithJsonAndPropertiesParameters) {
  StatusOr<TemplateFile> f = ParseTemplateFile(TestFile("full.txt"), "full.txt");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  for (const char* params : {"full-params.json", "full-params.properties"}) {
    StatusOr<ParameterValues> p = ParseParameterFile(TestFile(params), params);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    StatusOr<ClusterSpec> c = AssembleCluster(*f, *p, "");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_EQ(c->nodes.size(), 3u) << params;  // head, hpc, htc
    const NodeSpec* head = c->FindNode("head");
    EXPECT_EQ(Attr(head, "ComputerName").string_value(), "lab-head-01");
    EXPECT_EQ(Attr(head, "ComputerNamePrefix").string_value(), "Lab-");
    EXPECT_EQ(Attr(head, "Region").string_value(), "westeurope");
    EXPECT_EQ(Attr(head, "Tags").kind(), Value::Kind::kRecord);
    EXPECT_EQ(Attr(head, "Azure.Identities").kind(), Value::Kind::kUndefined);
    const NodeSpec* hpc = c->FindNode("hpc");
    EXPECT_EQ(Attr(hpc, "MaxCoreCount").int_value(), 64);
    EXPECT_EQ(Attr(hpc, "InitialCount").int_value(), 1);
    EXPECT_EQ(Attr(hpc, "Azure.MaxScalesetSize").int_value(), 40);
    EXPECT_TRUE(Attr(hpc, "Zone").is_undefined());
    EXPECT_EQ(Attr(c->FindNode("htc"), "MaxCount").int_value(), 10);
    EXPECT_TRUE(Attr(c->FindNode("htc"), "EnableAcceleratedNetworking").bool_value());
    EXPECT_EQ(
        FindAttribute(head->configuration, "cyclecloud.mounts.shared.export_path")->string_value(),
        "/exports/lab");
    EXPECT_EQ(FindAttribute(head->configuration, "lab.version")->string_value(), "3.10");
    EXPECT_TRUE(FindAttribute(head->configuration, "lab.storage_ip")->is_deferred());
    EXPECT_EQ(c->missing_required.size(), 0u);
    // The stored form reads back the same.
    StatusOr<ClusterSpec> back = ClusterSpec::FromJson(c->ToJson());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->ToJson().Dump(), c->ToJson().Dump());
  }
}

}  // namespace
}  // namespace imagesmith::cyclecloud
