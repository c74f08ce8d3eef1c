// End-to-end tests of 'imagesmith cyclecloud': the real binary imports the
// test templates under tests/cyclecloud, shows them, and refuses bad ones
// with FILE:LINE:COL and a non-zero exit, storing nothing.
#include <gtest/gtest.h>

#include "base/json.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

class CycleCloudCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = {{"IMAGESMITH_HOME", MakeTempDir() + "/data"}};
    CliResult g = Run({"group", "create", "-n", "cyclecloud", "-l", "westeurope"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
  }
  CliResult Run(const std::vector<std::string>& args) { return RunCli(args, "", env_); }
  static std::string T(const std::string& name) {
    return SourceDir() + "/tests/cyclecloud/" + name;
  }

  std::map<std::string, std::string> env_;
};

TEST_F(CycleCloudCliTest, ImportThenShowClusterWithJsonAndPropertiesParameters) {
  for (const char* params : {"full-params.json", "full-params.properties"}) {
    std::string name = std::string("lab-") + (params[12] == 'j' ? "json" : "props");
    CliResult r = Run({"cyclecloud", "import_cluster", name, "-f", T("full.txt"), "-p", T(params)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    CliResult show = Run({"cyclecloud", "show_cluster", name});
    ASSERT_EQ(show.exit_code, 0) << show.err;
    auto j = ParseJson(show.out);
    ASSERT_TRUE(j.ok()) << show.out;
    EXPECT_EQ(j->Find("state")->string_value(), "Off");
    EXPECT_EQ(j->Find("clusterSection")->string_value(), "Lab");
    const Json::Array& nodes = j->Find("nodes")->array_items();
    ASSERT_EQ(nodes.size(), 3u);
    EXPECT_EQ(nodes[0].Find("name")->string_value(), "head");
    EXPECT_EQ(nodes[0].Find("state")->string_value(), "Off");
    EXPECT_EQ(nodes[1].Find("MaxCoreCount")->AsInt64(), 64);
    EXPECT_EQ(j->Find("missingRequiredParameters"), nullptr);
  }
  CliResult list = Run({"cyclecloud", "list_clusters", "-o", "tsv"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("lab-json"), std::string::npos);
  EXPECT_NE(list.out.find("lab-props"), std::string::npos);
}

TEST_F(CycleCloudCliTest, ExistingClusterNeedsForce) {
  ASSERT_EQ(Run({"cyclecloud", "import_cluster", "c", "-f", T("two-clusters.txt"), "-c", "Small"})
                .exit_code,
            0);
  CliResult again =
      Run({"cyclecloud", "import_cluster", "c", "-f", T("two-clusters.txt"), "-c", "Big"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("cluster c already exists"), std::string::npos) << again.err;
  CliResult forced = Run(
      {"cyclecloud", "import_cluster", "c", "-f", T("two-clusters.txt"), "-c", "Big", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  auto j = ParseJson(forced.out);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->Find("clusterSection")->string_value(), "Big");
  EXPECT_EQ(j->Find("nodes")->array_items().size(), 2u);
}

TEST_F(CycleCloudCliTest, BadTemplatesFailWithFileLineColumnAndStoreNothing) {
  CliResult syntax = Run({"cyclecloud", "import_cluster", "bad", "-f", T("syntax-error.txt")});
  EXPECT_EQ(syntax.exit_code, 1);
  EXPECT_NE(syntax.err.find("syntax-error.txt:4:45: expected a value, found ')'"),
            std::string::npos)
      << syntax.err;
  CliResult unknown =
      Run({"cyclecloud", "import_cluster", "bad", "-f", T("unknown-parameter.txt")});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("unknown-parameter.txt:4:41: unknown parameter CustomImage"),
            std::string::npos)
      << unknown.err;
  CliResult choose = Run({"cyclecloud", "import_cluster", "bad", "-f", T("two-clusters.txt")});
  EXPECT_EQ(choose.exit_code, 1);
  EXPECT_NE(choose.err.find("choose one with -c"), std::string::npos) << choose.err;
  CliResult show = Run({"cyclecloud", "show_cluster", "bad"});
  EXPECT_EQ(show.exit_code, 3) << show.err;  // not found: nothing was stored
}

TEST_F(CycleCloudCliTest, ParseCheckReportsEachFile) {
  CliResult r = Run(
      {"cyclecloud", "parse-check", T("full.txt"), T("two-clusters.txt"), T("syntax-error.txt")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("3 files, 2 parsed, 1 failed; 3 clusters, 6 nodes and nodearrays"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("FAIL " + T("syntax-error.txt") + ":4:45"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace imagesmith::e2e
