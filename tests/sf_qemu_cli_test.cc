// End-to-end with real qemu nodes (TCG here): the judged Service Fabric case
// of issue 13, through the real imagesmith binary (doc/servicefabric.md).
//
// Three versions of one gallery image definition are built from the
// Debian 12 base in $IMAGESMITH_TEST_CACHE (`imagesmith build`, no
// validation boot): each writes /etc/app-version, and v3's /etc/app-health
// says "bad". A 3-instance primary node type (qemu driver, a 1 GiB data
// disk, a health command) is made on v1. v2 becomes latest: the automatic
// OS upgrade rolls the nodes to it one upgrade domain (one node) per batch,
// each judged by the health command in the guest, and what node 0 wrote on
// its data disk on v1 is still there on v2. v3 becomes latest: its health
// command fails in the guest, so batch 1 breaches the gate, node 0 goes
// back to v2, and the history shows Faulted with the gate and the output.
// Deleting the node type stops the nodes and releases the regional disks.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "base/json.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Runs in the guest as root for every health check: checks the data disk,
// records (once) which version first wrote to it, prints what the node
// runs, and passes only on an image whose /etc/app-health says "good".
constexpr char kHealth[] =
    "mountpoint -q /mnt/data || { echo no data disk; exit 2; }; "
    "test -s /mnt/data/first || { cat /etc/app-version > /mnt/data/first && sync; }; "
    "echo \"data $(cat /mnt/data/first) os $(cat /etc/app-version) "
    "disk $(findmnt -no SOURCE,FSTYPE /mnt/data) $(blockdev --getsize64 /dev/vdb)\"; "
    "grep -qx good /etc/app-health";

class SfQemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = DataDirWithSharedCatalog(&home_);
    dir_ = MakeTempDir();
  }
  // The nodes' qemu outlives imagesmith by design: a test that fails half
  // way (or whose command was killed at RunCli's limit) stops its own.
  void TearDown() override {
    for (int pid : PidsWith(home_ + "/fleet/nodes/")) ::kill(pid, SIGKILL);
  }
  CliResult Run(const std::vector<std::string>& args) { return RunCli(args, dir_, env_); }
  Json Ok(const std::vector<std::string>& args) {
    CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << args[1] << ": " << r.err;
    if (r.out.empty()) return Json();
    auto j = ParseJson(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }
  // Builds version `v`.0.0 of the definition from the Debian base.
  void BuildVersion(int v, const std::string& health) {
    const std::string file = dir_ + "/v" + std::to_string(v) + ".json";
    std::ofstream(file) << R"({"type": "Microsoft.VirtualMachineImages/imageTemplates",
 "apiVersion": "2022-07-01", "location": "eastus",
 "properties": {
  "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": "12",
             "version": "latest"},
  "customize": [{"type": "Shell", "name": "app", "inline": [
    "echo v)" << v << R"( > /etc/app-version", "echo )"
                        << health << R"( > /etc/app-health"]}],
  "distribute": [{"type": "SharedImage", "runOutputName": "v)"
                        << v << R"(", "galleryImageId": ")" << def_ << "/versions/" << v
                        << R"(.0.0"}]}})";
    auto start = std::chrono::steady_clock::now();
    Ok({"build", file, "-g", "rg", "-n", "app" + std::to_string(v), "-o", "none"});
    std::cout << "build v" << v << ": " << Seconds(start) << " s" << std::endl;
  }
  std::vector<std::string> NodeType(const std::string& verb) {
    return {"sf", "managed-node-type", verb, "-g", "rg", "-c", "sfqemu", "-n", "nt"};
  }
  // Regional disks that exist now (directories with a disk.raw).
  int RegionalDiskCount() {
    int n = 0;
    for (const std::string& name : ListDir(home_ + "/fleet/disks")) {
      struct stat st;
      n += ::stat((home_ + "/fleet/disks/" + name + "/disk.raw").c_str(), &st) == 0;
    }
    return n;
  }
  static std::vector<std::string> ListDir(const std::string& dir) {
    auto names = Env::Default()->ListDir(dir);
    return names.ok() ? *names : std::vector<std::string>();
  }
  std::string HealthOutput(const std::string& node) {
    std::string out = ReadOrEmpty(home_ + "/fleet/health/" + node + ".health.out");
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  std::map<std::string, std::string> env_;
  std::string home_, dir_, def_;
};

TEST_F(SfQemuTest, NodeTypeRollsToV2ByUpgradeDomainAndABadV3RollsBack) {
  auto total = std::chrono::steady_clock::now();
  const std::string sub = Ok({"account", "show"}).Find("id")->string_value();
  Ok({"group", "create", "-n", "rg", "-l", "eastus", "-o", "none"});
  Ok({"sig", "create", "-g", "rg", "-r", "gal", "-o", "none"});
  Ok({"sig", "image-definition", "create", "-g", "rg", "-r", "gal", "-i", "app", "--publisher", "P",
      "--offer", "O", "--sku", "S", "--os-type", "Linux", "-o", "none"});
  def_ = "/subscriptions/" + sub +
         "/resourceGroups/rg/providers/Microsoft.Compute/galleries/gal/images/app";
  BuildVersion(1, "good");
  Ok({"role", "assignment", "create", "--assignee", "fbc587f2-66f5-4459-a027-bcd908b9d278",
      "--role", "Reader", "--scope", def_, "-o", "none"});
  Ok({"sf", "managed-cluster", "create", "-g", "rg", "-c", "sfqemu", "--enable-auto-os-upgrade",
      "true", "-o", "none"});

  // Three qemu nodes on v1, each with a 1 GiB data disk.
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> create = NodeType("create");
  for (const char* a : {"--primary", "--instance-count", "3", "--vm-size", "Standard_A1_v2",
                        "--data-disk-size", "1", "--node-driver", "qemu"}) {
    create.push_back(a);
  }
  create.insert(create.end(), {"--vm-image-resource-id", def_, "--health-command", kHealth,
                               "--rolling-upgrade-policy", R"({"healthDeadline": "PT10M"})"});
  Json nt = Ok(create);
  std::cout << "node type create (3 nodes ready): " << Seconds(start) << " s" << std::endl;
  ASSERT_TRUE(nt.is_object() && nt.Find("properties") != nullptr);
  const Json* ext = nt.Find("properties")->Find("imagesmith");
  EXPECT_EQ(nt.Find("properties")->Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(ext->Find("currentImage")->string_value(), def_ + "/versions/1.0.0");
  std::vector<std::string> nodes;
  for (const Json& n : ext->Find("nodes")->array_items()) {
    nodes.push_back(n.Find("id")->string_value());
    EXPECT_EQ(n.Find("image")->string_value(), def_ + "/versions/1.0.0");
    struct stat st;
    const std::string data = home_ + "/fleet/nodes/" + nodes.back() + "/data.raw";
    ASSERT_EQ(::stat(data.c_str(), &st), 0) << data;
    EXPECT_EQ(st.st_size, 1LL << 30);
  }
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(RegionalDiskCount(), 1);

  // v2 becomes latest: one node (upgrade domain) per batch, health checked.
  BuildVersion(2, "good");
  start = std::chrono::steady_clock::now();
  Json check = Ok({"sf", "managed-cluster", "check-os-upgrades", "-g", "rg", "-c", "sfqemu"});
  std::cout << "rollout to v2: " << Seconds(start) << " s" << std::endl;
  ASSERT_TRUE(check.is_object() && check.Find("nodeTypes") != nullptr &&
              check.Find("nodeTypes")->array_items().size() == 1)
      << check.Dump();
  const Json& entry = check.Find("nodeTypes")->array_items()[0];
  EXPECT_EQ(entry.Find("action")->string_value(), "Started");
  ASSERT_NE(entry.Find("rollout"), nullptr) << entry.Dump();
  const Json& r2 = *entry.Find("rollout");
  EXPECT_EQ(r2.Find("runningStatus")->Find("code")->string_value(), "Completed") << r2.Dump();
  EXPECT_EQ(r2.Find("progress")->Find("successfulInstanceCount")->AsInt64(), 3);
  EXPECT_EQ(r2.Find("progress")->Find("failedInstanceCount")->AsInt64(), 0);
  ASSERT_EQ(r2.Find("batches")->array_items().size(), 3u) << r2.Dump();
  for (size_t i = 0; i < 3; ++i) {
    const Json& b = r2.Find("batches")->array_items()[i];
    ASSERT_EQ(b.Find("instances")->array_items().size(), 1u);
    EXPECT_EQ(b.Find("instances")->array_items()[0].string_value(), nodes[i]);
  }
  nt = Ok(NodeType("show"));
  ASSERT_TRUE(nt.is_object() && nt.Find("properties") != nullptr);
  ext = nt.Find("properties")->Find("imagesmith");
  EXPECT_EQ(ext->Find("currentImage")->string_value(), def_ + "/versions/2.0.0");
  for (const Json& n : ext->Find("nodes")->array_items()) {
    EXPECT_EQ(n.Find("image")->string_value(), def_ + "/versions/2.0.0");
  }
  // Each node's health check on v2 sees what v1 wrote on its data disk.
  for (const std::string& n : nodes) {
    EXPECT_EQ(HealthOutput(n), "data v1 os v2 disk /dev/vdb ext4 1073741824") << n;
  }
  EXPECT_EQ(RegionalDiskCount(), 1) << "a regional disk no node uses (v1's) was kept";

  // v3's health command fails in the guest: batch 1 breaches the gate and
  // node 0 goes back to v2.
  BuildVersion(3, "bad");
  start = std::chrono::steady_clock::now();
  check = Ok({"sf", "managed-cluster", "check-os-upgrades", "-g", "rg", "-c", "sfqemu"});
  std::cout << "rollout to v3 and rollback: " << Seconds(start) << " s" << std::endl;
  Json history =
      Ok({"sf", "managed-node-type", "rollout", "history", "-g", "rg", "-c", "sfqemu", "-n", "nt"});
  ASSERT_TRUE(history.is_object() && history.Find("value") != nullptr) << history.Dump();
  ASSERT_EQ(history.Find("value")->array_items().size(), 2u) << history.Dump();
  const Json& r3 = history.Find("value")->array_items()[0];
  EXPECT_EQ(r3.Find("runningStatus")->Find("code")->string_value(), "Faulted") << r3.Dump();
  EXPECT_EQ(r3.Find("targetImage")->string_value(), def_ + "/versions/3.0.0");
  EXPECT_EQ(r3.Find("error")->Find("code")->string_value(),
            "MaxUnhealthyUpgradedInstancePercentExceeded");
  const std::string why = r3.Find("error")->Find("message")->string_value();
  EXPECT_NE(why.find("after batch 1, 1 of 1 upgraded instances are unhealthy"), std::string::npos)
      << why;
  ASSERT_EQ(r3.Find("error")->Find("details")->array_items().size(), 1u);
  const Json& detail = r3.Find("error")->Find("details")->array_items()[0];
  EXPECT_EQ(detail.Find("target")->string_value(), nodes[0]);
  EXPECT_NE(detail.Find("message")->string_value().find("exited 1: data v1 os v3"),
            std::string::npos)
      << detail.Dump();
  ASSERT_EQ(r3.Find("batches")->array_items().size(), 1u);
  EXPECT_EQ(r3.Find("batches")->array_items()[0].Find("instances")->array_items()[0].string_value(),
            nodes[0]);
  EXPECT_EQ(r3.Find("rollbackInfo")->Find("successfullyRolledbackInstanceCount")->AsInt64(), 1);
  EXPECT_EQ(r3.Find("rollbackInfo")->Find("failedRolledbackInstanceCount")->AsInt64(), 0);
  EXPECT_EQ(
      history.Find("value")->array_items()[1].Find("runningStatus")->Find("code")->string_value(),
      "Completed");
  nt = Ok(NodeType("show"));
  ASSERT_TRUE(nt.is_object() && nt.Find("properties") != nullptr);
  ext = nt.Find("properties")->Find("imagesmith");
  EXPECT_EQ(ext->Find("currentImage")->string_value(), def_ + "/versions/2.0.0");
  for (const Json& n : ext->Find("nodes")->array_items()) {
    EXPECT_EQ(n.Find("image")->string_value(), def_ + "/versions/2.0.0");
  }
  EXPECT_EQ(HealthOutput(nodes[0]), "data v1 os v2 disk /dev/vdb ext4 1073741824");
  EXPECT_EQ(RegionalDiskCount(), 1) << "a regional disk no node uses (v3's) was kept";

  // Deleting the node type stops the nodes and releases the regional disk.
  Ok(NodeType("delete"));
  EXPECT_TRUE(PidsWith("imagesmith-node-" + nodes[0]).empty());
  EXPECT_TRUE(ListDir(home_ + "/fleet/nodes").empty());
  EXPECT_EQ(RegionalDiskCount(), 0);
  std::cout << "total: " << Seconds(total) << " s" << std::endl;
}

}  // namespace
}  // namespace imagesmith::e2e
