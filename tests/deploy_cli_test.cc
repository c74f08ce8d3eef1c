// End-to-end tests of the ways templates get into imagesmith besides a plain
// file: 'deployment group create' for ARM deployment templates, and az's
// 'image builder' surface. They drive the real binary with a fresh data
// directory each, and build nothing.
#include <gtest/gtest.h>

#include "base/json.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

std::string Corpus(const std::string& f) { return SourceDir() + "/tests/templates/" + f; }

class DeployCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = {{"IMAGESMITH_HOME", MakeTempDir() + "/data"}};
    CliResult g = Run({"group", "create", "-n", "images", "-l", "westeurope", "-o", "none"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
  }
  CliResult Run(const std::vector<std::string>& args) { return RunCli(args, "", env_); }
  Json Show(const std::string& name) {
    CliResult r = Run({"image-template", "show", "-g", "images", "-n", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = ParseJson(r.out);
    return j.ok() ? *j : Json();
  }
  std::map<std::string, std::string> env_;
};

// resourceGroup().location and subscription() come from the group deployed to.
TEST_F(DeployCliTest, DeploymentGroupCreateEvaluatesAgainstTheGroupAndCreatesTheTemplate) {
  CliResult r = Run({"deployment", "group", "create", "-g", "images", "--template-file",
                     Corpus("valid/arm-deployment-quickstart-style.json"), "-p",
                     "imageTemplateName=web-from-arm"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = ParseJson(r.out);
  ASSERT_TRUE(out.ok()) << r.out;
  const Json& resources = *out->Find("properties")->Find("outputResources");
  ASSERT_EQ(resources.array_items().size(), 1u);
  EXPECT_TRUE(EndsWith(resources.array_items()[0].Find("id")->string_value(),
                       "/imageTemplates/web-from-arm"));
  Json t = Show("web-from-arm");
  EXPECT_EQ(t.Find("location")->string_value(), "westeurope");
  CliResult account = Run({"account", "show"});
  std::string sub = ParseJson(account.out)->Find("id")->string_value();
  const Json& dist = t.Find("properties")->Find("distribute")->array_items()[0];
  EXPECT_EQ(dist.Find("galleryImageId")->string_value(),
            "/subscriptions/" + sub +
                "/resourceGroups/images/providers/Microsoft.Compute/galleries/images/images/web");
  // Deploying again updates in place, as az does.
  CliResult again = Run({"deployment", "group", "create", "-g", "images", "--template-file",
                         Corpus("valid/arm-deployment-quickstart-style.json"), "-p",
                         "imageTemplateName=web-from-arm", "-p", "buildTimeout=90"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Show("web-from-arm").Find("properties")->Find("buildTimeoutInMinutes")->AsInt64(), 90);
}

TEST_F(DeployCliTest, DeploymentGroupCreateWritesNothingWhenATemplateIsInvalid) {
  CliResult r =
      Run({"deployment", "group", "create", "-g", "images", "--template-file",
           Corpus("invalid/arm-deployment-bad-values-in-parameters-file.json"), "-p",
           "@" + Corpus("params/arm-deployment-bad-values-in-parameters-file.parameters.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("arm-deployment-bad-values-in-parameters-file.parameters.json:14:9: error"),
            std::string::npos)
      << r.err;
  CliResult list = Run({"image-template", "list", "-o", "jsonc"});
  EXPECT_EQ(list.out, "[]\n");
}

TEST_F(DeployCliTest, DeploymentGroupCreateNeedsAnExistingGroup) {
  CliResult r = Run({"deployment", "group", "create", "-g", "nosuch", "--template-file",
                     Corpus("valid/arm-deployment-quickstart-style.json")});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("nosuch"), std::string::npos) << r.err;
}

TEST_F(DeployCliTest, ImageTemplateCreateTakesParameters) {
  CliResult r = Run({"image-template", "create", "-g", "images", "-n", "p1", "--image-template",
                     Corpus("valid/arm-deployment-with-parameters-file.json"), "-p",
                     "@" + Corpus("params/arm-deployment-with-parameters-file.parameters.json"),
                     "-o", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Show("p1").Find("location")->string_value(), "westeurope");
}

TEST_F(DeployCliTest, ImageBuilderDeferredTemplateIsEditedThenCreatedByUpdate) {
  ASSERT_EQ(Run({"image",
                 "builder",
                 "create",
                 "-g",
                 "images",
                 "-n",
                 "web",
                 "--image-source",
                 "Debian:debian-12:12:latest",
                 "--scripts",
                 "https://example.com/setup.sh",
                 "--managed-image-destinations",
                 "web-image=eastus",
                 "--vm-size",
                 "Standard_D2s_v3",
                 "--os-disk-size",
                 "30",
                 "--build-timeout",
                 "60",
                 "--defer",
                 "-o",
                 "none"})
                .exit_code,
            0);
  // Not created yet: deferred templates live in the local copy only.
  EXPECT_EQ(Run({"image", "builder", "show", "-g", "images", "-n", "web"}).exit_code, 3);
  ASSERT_EQ(Run({"image", "builder", "customizer", "add", "-g", "images", "-n", "web", "--defer",
                 "--customizer-name", "hello", "--type", "shell", "--inline-script", "echo hello",
                 "-o", "none"})
                .exit_code,
            0);
  ASSERT_EQ(Run({"image", "builder", "output", "add", "-g", "images", "-n", "web", "--defer",
                 "--is-vhd", "-o", "none"})
                .exit_code,
            0);
  ASSERT_EQ(Run({"image", "builder", "output", "remove", "-g", "images", "-n", "web", "--defer",
                 "--output-name", "web-image", "-o", "none"})
                .exit_code,
            0);
  CliResult up = Run({"image", "builder", "update", "-g", "images", "-n", "web", "-o", "none"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  Json t = Show("web");
  const Json& props = *t.Find("properties");
  ASSERT_EQ(props.Find("customize")->array_items().size(), 2u);
  EXPECT_EQ(props.Find("customize")->array_items()[1].Find("name")->string_value(), "hello");
  ASSERT_EQ(props.Find("distribute")->array_items().size(), 1u);
  EXPECT_EQ(props.Find("distribute")->array_items()[0].Find("type")->string_value(), "VHD");
  EXPECT_EQ(props.Find("vmProfile")->Find("osDiskSizeGB")->AsInt64(), 30);
  // Without --defer the stored template is edited directly.
  ASSERT_EQ(
      Run({"image", "builder", "customizer", "clear", "-g", "images", "-n", "web", "-o", "none"})
          .exit_code,
      0);
  EXPECT_TRUE(Show("web").Find("properties")->Find("customize")->array_items().empty());
  EXPECT_EQ(Run({"image", "builder", "wait", "-g", "images", "-n", "web", "--created"}).exit_code,
            0);
  EXPECT_EQ(Run({"image", "builder", "delete", "-g", "images", "-n", "web"}).exit_code, 0);
  EXPECT_EQ(Run({"image", "builder", "wait", "-g", "images", "-n", "web", "--deleted"}).exit_code,
            0);
}

TEST_F(DeployCliTest, ImageBuilderRefusesBadFlagsNamingThem) {
  CliResult src =
      Run({"image", "builder", "create", "-g", "images", "-n", "x", "--image-source", "nonsense"});
  EXPECT_EQ(src.exit_code, 1);
  EXPECT_NE(src.err.find("--image-source \"nonsense\""), std::string::npos) << src.err;
  CliResult region =
      Run({"image", "builder", "create", "-g", "images", "-n", "x", "--image-source",
           "Debian:debian-12:12:latest", "--managed-image-destinations", "img=notaregion"});
  EXPECT_EQ(region.exit_code, 1);
  EXPECT_NE(region.err.find("unknown region \"notaregion\""), std::string::npos) << region.err;
  EXPECT_EQ(Run({"image-template", "list", "-o", "jsonc"}).out, "[]\n");
}

}  // namespace
}  // namespace imagesmith::e2e
