// End-to-end: Service Fabric managed clusters and node types through the
// real imagesmith binary with the sim node driver (doc/servicefabric.md):
// the SF resource provider's Reader on the image, the primary's minimum,
// an immutable isPrimary, a new latest rolled by upgrade domain, and a
// version that does not boot rolled back with the gate named.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "base/json.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

class SfCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    env_ = {{"IMAGESMITH_HOME", dir_ + "/data"}};
    std::ofstream f(dir_ + "/disk.raw", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = 'x';
    for (int i = 0; i < 4; ++i) f << block;
  }
  CliResult Run(std::vector<std::string> args,
                const std::map<std::string, std::string>& extra = {}) {
    auto env = env_;
    for (const auto& [k, v] : extra) env[k] = v;
    return RunCli(args, "", env);
  }
  CliResult Ok(std::vector<std::string> args,
               const std::map<std::string, std::string>& extra = {}) {
    CliResult r = Run(args, extra);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << args[1] << ": " << r.err;
    return r;
  }
  static Json J(const CliResult& r) {
    auto j = ParseJson(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }
  std::string dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(SfCliTest, StandardPrimaryFromDefinitionRollsAndRollsBack) {
  Ok({"group", "create", "-n", "rg", "-l", "eastus"});
  Ok({"sig", "create", "-g", "rg", "-r", "gal"});
  Ok({"sig", "image-definition", "create", "-g", "rg", "-r", "gal", "-i", "deb", "--publisher", "P",
      "--offer", "O", "--sku", "S", "--os-type", "Linux"});
  Ok({"image", "create", "-g", "rg", "-n", "img", "--source", dir_ + "/disk.raw", "--os-type",
      "Linux"});
  Ok({"sig", "image-version", "create", "-g", "rg", "-r", "gal", "-i", "deb", "-e", "1.0.0",
      "--managed-image", "img", "-o", "none"});
  const std::string def =
      J(Ok({"sig", "image-definition", "show", "-g", "rg", "-r", "gal", "-i", "deb"}))
          .Find("id")
          ->string_value();
  Json cluster = J(Ok({"sf", "managed-cluster", "create", "-g", "rg", "-c", "sfcluster", "--sku",
                       "Standard", "--enable-auto-os-upgrade", "true"}));
  EXPECT_EQ(cluster.Find("sku")->Find("name")->string_value(), "Standard");
  EXPECT_EQ(cluster.Find("properties")->Find("clusterState")->string_value(), "WaitingForNodes");

  const std::vector<std::string> create = {"sf",
                                           "managed-node-type",
                                           "create",
                                           "-g",
                                           "rg",
                                           "-c",
                                           "sfcluster",
                                           "-n",
                                           "pnt",
                                           "--primary",
                                           "--instance-count",
                                           "5",
                                           "--vm-image-resource-id",
                                           def,
                                           "--node-driver",
                                           "sim",
                                           "--rolling-upgrade-policy",
                                           R"({"healthDeadline": "PT5S"})"};
  // Without Reader for the SF resource provider: refused, saying what to assign where.
  CliResult denied = Run(create);
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.err.find("does not have authorization"), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find("imagesmith role assignment create --assignee "
                            "fbc587f2-66f5-4459-a027-bcd908b9d278 --role Reader --scope " +
                            def),
            std::string::npos)
      << denied.err;
  EXPECT_NE(Run({"sf", "managed-node-type", "show", "-g", "rg", "-c", "sfcluster", "-n", "pnt"})
                .exit_code,
            0);
  Ok({"role", "assignment", "create", "--assignee", "fbc587f2-66f5-4459-a027-bcd908b9d278",
      "--role", "Reader", "--scope", def, "-o", "none"});
  Json nt = J(Ok(create));
  const Json& props = *nt.Find("properties");
  EXPECT_EQ(props.Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_TRUE(props.Find("isPrimary")->bool_value());
  EXPECT_EQ(props.Find("imagesmith")->Find("nodes")->array_items().size(), 5u);
  EXPECT_EQ(props.Find("imagesmith")->Find("currentImage")->string_value(),
            def + "/versions/1.0.0");

  // Below the Standard minimum: refused with the rule.
  CliResult low = Run({"sf", "managed-node-type", "update", "-g", "rg", "-c", "sfcluster", "-n",
                       "pnt", "--instance-count", "4"});
  EXPECT_NE(low.exit_code, 0);
  EXPECT_NE(low.err.find("properties.vmInstanceCount: the primary node type of a Standard cluster "
                         "needs at least 5 instances"),
            std::string::npos)
      << low.err;
  // isPrimary cannot change (a PUT of the same name without --primary).
  CliResult flip = Run({"sf", "managed-node-type", "create", "-g", "rg", "-c", "sfcluster", "-n",
                        "pnt", "--instance-count", "5", "--vm-image-resource-id", def});
  EXPECT_NE(flip.exit_code, 0);
  EXPECT_NE(flip.err.find("properties.isPrimary: cannot change"), std::string::npos) << flip.err;

  // v2 becomes latest: one upgrade domain per batch, Completed.
  Ok({"sig", "image-version", "create", "-g", "rg", "-r", "gal", "-i", "deb", "-e", "2.0.0",
      "--managed-image", "img", "-o", "none"});
  Json check = J(Ok({"sf", "managed-cluster", "check-os-upgrades", "-g", "rg", "-c", "sfcluster"}));
  EXPECT_EQ(check.Find("nodeTypes")->array_items()[0].Find("action")->string_value(), "Started");
  Json history = J(Ok({"sf", "managed-node-type", "rollout", "history", "-g", "rg", "-c",
                       "sfcluster", "-n", "pnt"}));
  ASSERT_EQ(history.Find("value")->array_items().size(), 1u);
  const Json& done = history.Find("value")->array_items()[0];
  EXPECT_EQ(done.Find("runningStatus")->Find("code")->string_value(), "Completed");
  EXPECT_EQ(done.Find("targetImage")->string_value(), def + "/versions/2.0.0");
  ASSERT_EQ(done.Find("batches")->array_items().size(), 5u);
  for (const Json& b : done.Find("batches")->array_items()) {
    EXPECT_EQ(b.Find("instances")->array_items().size(), 1u);
  }

  // v3 does not boot: batch 1 breaches the gate, rolls back, Faulted.
  Ok({"sig", "image-version", "create", "-g", "rg", "-r", "gal", "-i", "deb", "-e", "3.0.0",
      "--managed-image", "img", "-o", "none"});
  const std::map<std::string, std::string> bad = {
      {"IMAGESMITH_SIM_IMAGE_BOOT_FAILURE_RATES", def + "/versions/3.0.0=1"}};
  Ok({"sf", "managed-cluster", "check-os-upgrades", "-g", "rg", "-c", "sfcluster"}, bad);
  Json last = J(Ok(
      {"sf", "managed-node-type", "rollout", "show", "-g", "rg", "-c", "sfcluster", "-n", "pnt"}));
  EXPECT_EQ(last.Find("runningStatus")->Find("code")->string_value(), "Faulted");
  EXPECT_EQ(last.Find("error")->Find("code")->string_value(),
            "MaxUnhealthyUpgradedInstancePercentExceeded");
  std::string why = last.Find("error")->Find("message")->string_value();
  EXPECT_NE(why.find("after batch 1"), std::string::npos) << why;
  EXPECT_NE(why.find("-0: not healthy within PT5S"), std::string::npos) << why;
  EXPECT_EQ(last.Find("rollbackInfo")->Find("successfullyRolledbackInstanceCount")->AsInt64(), 1);
  nt = J(Ok({"sf", "managed-node-type", "show", "-g", "rg", "-c", "sfcluster", "-n", "pnt"}));
  EXPECT_EQ(nt.Find("properties")->Find("imagesmith")->Find("currentImage")->string_value(),
            def + "/versions/2.0.0");
  // The next check waits 24 hours before retrying.
  check = J(Ok({"sf", "managed-cluster", "check-os-upgrades", "-g", "rg", "-c", "sfcluster"}));
  EXPECT_EQ(check.Find("nodeTypes")->array_items()[0].Find("action")->string_value(),
            "WaitingForRetry");
  history = J(Ok({"sf", "managed-node-type", "rollout", "history", "-g", "rg", "-c", "sfcluster",
                  "-n", "pnt"}));
  EXPECT_EQ(history.Find("value")->array_items().size(), 2u);

  // A user-started rollout to v4, cancelled from another process while it
  // pauses between batches: Cancelled, nothing rolled back.
  Ok({"sf", "managed-node-type", "update", "-g", "rg", "-c", "sfcluster", "-n", "pnt",
      "--rolling-upgrade-policy", R"({"pauseTimeBetweenBatches": "PT5S"})", "-o", "none"});
  Ok({"sig", "image-version", "create", "-g", "rg", "-r", "gal", "-i", "deb", "-e", "4.0.0",
      "--managed-image", "img", "-o", "none"});
  CliResult started;
  std::thread rollout([&] {
    started = Run({"sf", "managed-node-type", "rollout", "start", "-g", "rg", "-c", "sfcluster",
                   "-n", "pnt"});
  });
  bool cancelled = false;
  for (int i = 0; i < 300 && !cancelled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CliResult show = Run(
        {"sf", "managed-node-type", "rollout", "show", "-g", "rg", "-c", "sfcluster", "-n", "pnt"});
    if (show.exit_code != 0) continue;
    Json s = J(show);
    if (s.Find("targetImage")->string_value() != def + "/versions/4.0.0") continue;
    if (s.Find("progress")->Find("successfulInstanceCount")->AsInt64() < 1) continue;
    cancelled = Run({"sf", "managed-node-type", "rollout", "cancel", "-g", "rg", "-c", "sfcluster",
                     "-n", "pnt"})
                    .exit_code == 0;
  }
  rollout.join();
  EXPECT_TRUE(cancelled);
  EXPECT_NE(started.exit_code, 0);
  EXPECT_NE(started.err.find("the rollout was cancelled"), std::string::npos) << started.err;
  last = J(Ok(
      {"sf", "managed-node-type", "rollout", "show", "-g", "rg", "-c", "sfcluster", "-n", "pnt"}));
  EXPECT_EQ(last.Find("runningStatus")->Find("code")->string_value(), "Cancelled");
  EXPECT_EQ(last.Find("runningStatus")->Find("lastAction")->string_value(), "Cancel");

  // Cleanup in order: the cluster refuses while node types remain.
  EXPECT_NE(Run({"sf", "managed-cluster", "delete", "-g", "rg", "-c", "sfcluster"}).exit_code, 0);
  Ok({"sf", "managed-node-type", "delete", "-g", "rg", "-c", "sfcluster", "-n", "pnt"});
  Ok({"sf", "managed-cluster", "delete", "-g", "rg", "-c", "sfcluster"});
}

}  // namespace
}  // namespace imagesmith::e2e
