// End-to-end tests of 'imagesmith cyclecloud': the real binary imports the
// test templates under tests/cyclecloud, shows them, and refuses bad ones
// with FILE:LINE:COL and a non-zero exit, storing nothing. Then clusters run
// on the sim node driver: node states, add_node and remove_node, the node
// limits, scale sets, an ImageName changed under running nodes, terminate.
#include <gtest/gtest.h>

#include <fstream>

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
    EXPECT_EQ(j->Find("nodeDriver")->string_value(), "qemu");
    // A [[node]] is a node from the start (Off); nodearrays have none yet.
    const Json::Array& nodes = j->Find("nodes")->array_items();
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(nodes[0].Find("name")->string_value(), "head");
    EXPECT_EQ(nodes[0].Find("state")->string_value(), "Off");
    EXPECT_TRUE(nodes[0].Find("nodearray")->is_null());
    const Json::Array& arrays = j->Find("nodearrays")->array_items();
    ASSERT_EQ(arrays.size(), 2u);
    EXPECT_EQ(arrays[0].Find("name")->string_value(), "hpc");
    EXPECT_EQ(arrays[0].Find("maxCoreCount")->AsInt64(), 64);
    EXPECT_EQ(arrays[0].Find("nodeCount")->AsInt64(), 0);
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
  EXPECT_EQ(j->Find("nodes")->array_items().size() + j->Find("nodearrays")->array_items().size(),
            2u);
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

// ---- clusters that run (sim) --------------------------------------------

Json J(const CliResult& r) {
  auto j = ParseJson(r.out);
  EXPECT_TRUE(j.ok()) << r.out << r.err;
  return j.ok() ? *j : Json::MakeObject();
}

const Json* NodeNamed(const Json& cluster, const std::string& name) {
  for (const Json& n : cluster.Find("nodes")->array_items()) {
    if (n.Find("name")->string_value() == name) return &n;
  }
  return nullptr;
}

std::string States(const Json& cluster) {
  std::string out;
  for (const Json& n : cluster.Find("nodes")->array_items()) {
    out += (out.empty() ? "" : " ") + n.Find("name")->string_value() + "=" +
           n.Find("state")->string_value();
  }
  return out;
}

TEST_F(CycleCloudCliTest, StartAddRemoveTerminateWithStatesLimitsAndScaleSets) {
  ASSERT_EQ(Run({"cyclecloud", "import_cluster", "c", "-f", T("nodes.txt"), "--node-driver", "sim",
                 "-o", "none"})
                .exit_code,
            0);
  CliResult started = Run({"cyclecloud", "start_cluster", "c"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  Json c = J(started);
  EXPECT_EQ(c.Find("state")->string_value(), "Started");
  EXPECT_EQ(c.Find("nodeDriver")->string_value(), "sim");
  // The [[node]], InitialCount 2 of execute, and gpu's node whose image
  // does not resolve: Failed, naming the node and the image; the rest runs.
  EXPECT_EQ(States(c), "head=Ready execute-1=Ready execute-2=Ready gpu-1=Failed");
  EXPECT_EQ(NodeNamed(c, "head")->Find("image")->string_value(), "Debian:debian-12:12:latest");
  EXPECT_EQ(NodeNamed(c, "execute-1")->Find("hostname")->string_value(), "c-execute-1");
  const std::string failed = NodeNamed(c, "gpu-1")->Find("statusMessage")->string_value();
  EXPECT_NE(failed.find("node gpu-1: ImageName cycle.image.ubuntu22 is a CycleCloud built-in"),
            std::string::npos)
      << failed;
  EXPECT_NE(started.err.find("Failed: node gpu-1: ImageName cycle.image.ubuntu22"),
            std::string::npos)
      << started.err;

  // MaxCount 8 and MaxCoreCount 10 (5 nodes of 2 cores): the lower wins,
  // and the refusal adds nothing.
  CliResult over = Run({"cyclecloud", "add_node", "c", "-t", "execute", "-c", "4"});
  EXPECT_NE(over.exit_code, 0);
  EXPECT_NE(over.err.find("nodearray execute: adding 4 nodes to 2 would exceed MaxCoreCount 10 (2 "
                          "cores per node) (at most 5 nodes); MaxCount 8 and MaxCoreCount 10 / 2 "
                          "cores per node = 5 nodes are enforced together and the lower wins"),
            std::string::npos)
      << over.err;
  EXPECT_EQ(J(Run({"cyclecloud", "show_cluster", "c"})).Find("nodes")->array_items().size(), 4u);

  CliResult added = Run({"cyclecloud", "add_node", "c", "-t", "execute", "-c", "3"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  c = J(added);
  EXPECT_EQ(States(c),
            "head=Ready execute-1=Ready execute-2=Ready gpu-1=Failed execute-3=Ready "
            "execute-4=Ready execute-5=Ready");
  // Azure.MaxScalesetSize 2: a new backing scale set every 2 nodes.
  const Json& execute = c.Find("nodearrays")->array_items()[0];
  EXPECT_EQ(execute.Find("nodeCount")->AsInt64(), 5);
  EXPECT_EQ(execute.Find("maxNodes")->AsInt64(), 5);
  EXPECT_EQ(execute.Find("scaleSets")->Dump(-1),
            R"([{"name":"execute-ss0","nodes":["execute-1","execute-2"]},)"
            R"({"name":"execute-ss1","nodes":["execute-3","execute-4"]},)"
            R"({"name":"execute-ss2","nodes":["execute-5"]}])");
  EXPECT_EQ(NodeNamed(c, "execute-5")->Find("scaleSet")->string_value(), "execute-ss2");

  CliResult full = Run({"cyclecloud", "add_node", "c", "-t", "execute"});
  EXPECT_NE(full.exit_code, 0);
  EXPECT_NE(full.err.find("adding 1 nodes to 5 would exceed MaxCoreCount 10"), std::string::npos)
      << full.err;

  CliResult removed = Run({"cyclecloud", "remove_node", "c", "execute-2"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(NodeNamed(J(removed), "execute-2"), nullptr);
  CliResult again = Run({"cyclecloud", "add_node", "c", "-t", "execute"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  c = J(again);
  EXPECT_EQ(NodeNamed(c, "execute-6")->Find("state")->string_value(), "Ready");
  EXPECT_EQ(NodeNamed(c, "execute-6")->Find("scaleSet")->string_value(), "execute-ss2");

  CliResult no_array = Run({"cyclecloud", "add_node", "c", "-t", "head"});
  EXPECT_NE(no_array.err.find("cluster c has no nodearray \"head\"; its nodearrays: execute, gpu"),
            std::string::npos)
      << no_array.err;
  CliResult no_node = Run({"cyclecloud", "remove_node", "c", "execute-9"});
  EXPECT_EQ(no_node.exit_code, 3);
  EXPECT_NE(no_node.err.find("cluster c has no node \"execute-9\""), std::string::npos)
      << no_node.err;
  CliResult busy_delete = Run({"cyclecloud", "delete_cluster", "c"});
  EXPECT_NE(busy_delete.exit_code, 0);
  EXPECT_NE(busy_delete.err.find("terminate it before deleting it"), std::string::npos);

  CliResult terminated = Run({"cyclecloud", "terminate_cluster", "c"});
  ASSERT_EQ(terminated.exit_code, 0) << terminated.err;
  c = J(terminated);
  EXPECT_EQ(c.Find("state")->string_value(), "Terminated");
  EXPECT_EQ(States(c), "head=Off");
  EXPECT_EQ(NodeNamed(c, "head")->Find("image"), nullptr);
  CliResult add_after = Run({"cyclecloud", "add_node", "c", "-t", "execute"});
  EXPECT_NE(add_after.err.find("cluster c is Terminated; start it"), std::string::npos)
      << add_after.err;
  EXPECT_EQ(Run({"cyclecloud", "delete_cluster", "c"}).exit_code, 0);
}

TEST_F(CycleCloudCliTest, MaxCountWinsWhenItIsTheLowerLimit) {
  ASSERT_EQ(Run({"cyclecloud", "import_cluster", "c", "-f", T("nodes.txt"), "--node-driver", "sim",
                 "-P", "MaxCount=3", "-o", "none"})
                .exit_code,
            0);
  ASSERT_EQ(Run({"cyclecloud", "start_cluster", "c", "-o", "none"}).exit_code, 0);
  CliResult over = Run({"cyclecloud", "add_node", "c", "-t", "execute", "-c", "2"});
  EXPECT_NE(over.exit_code, 0);
  EXPECT_NE(over.err.find("adding 2 nodes to 2 would exceed MaxCount 3 (at most 3 nodes); "
                          "MaxCount 3 and MaxCoreCount 10 / 2 cores per node = 5 nodes are "
                          "enforced together and the lower wins"),
            std::string::npos)
      << over.err;
  EXPECT_EQ(Run({"cyclecloud", "terminate_cluster", "c", "-o", "none"}).exit_code, 0);
}

TEST_F(CycleCloudCliTest, StartRefusesMissingRequiredParameters) {
  ASSERT_EQ(Run({"cyclecloud", "import_cluster", "lab", "-f", T("full.txt"), "--node-driver", "sim",
                 "-o", "none"})
                .exit_code,
            0);
  CliResult r = Run({"cyclecloud", "start_cluster", "lab"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("cluster lab cannot start: the required parameters Region, SubnetId have no "
                       "value"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(J(Run({"cyclecloud", "show_cluster", "lab"})).Find("state")->string_value(), "Off");
}

// ImageName changed by a re-import while nodes run: they keep their image,
// show_cluster says so per node, and nodes started afterwards use the new
// one. A version that does not exist fails only the node that needs it.
TEST_F(CycleCloudCliTest, ImageNameChangedUnderRunningNodes) {
  std::string dir = MakeTempDir();
  {
    std::ofstream f(dir + "/disk.raw", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = 'x';
    for (int i = 0; i < 4; ++i) f << block;
  }
  auto ok = [&](const std::vector<std::string>& args) {
    CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << args[1] << ": " << r.err;
    return r;
  };
  ok({"image", "create", "-g", "cyclecloud", "-n", "img", "--source", dir + "/disk.raw",
      "--os-type", "Linux", "-o", "none"});
  ok({"sig", "create", "-g", "cyclecloud", "-r", "gal", "-o", "none"});
  ok({"sig", "image-definition", "create", "-g", "cyclecloud", "-r", "gal", "-i", "deb",
      "--publisher", "P", "--offer", "O", "--sku", "S", "--os-type", "Linux", "-o", "none"});
  std::string v1, v2;
  for (const char* v : {"1.0.0", "2.0.0"}) {
    CliResult r = ok({"sig", "image-version", "create", "-g", "cyclecloud", "-r", "gal", "-i",
                      "deb", "-e", v, "--managed-image", "img"});
    (std::string(v) == "1.0.0" ? v1 : v2) = J(r).Find("id")->string_value();
  }
  ok({"cyclecloud", "import_cluster", "c", "-f", T("nodes.txt"), "--node-driver", "sim", "-P",
      "ImageName=" + v1, "-o", "none"});
  Json c = J(ok({"cyclecloud", "start_cluster", "c"}));
  EXPECT_EQ(NodeNamed(c, "execute-1")->Find("image")->string_value(), v1);
  EXPECT_TRUE(NodeNamed(c, "execute-1")->Find("imageUpToDate")->bool_value());

  // Re-import with ImageName = v2 while the nodes run.
  c = J(ok({"cyclecloud", "import_cluster", "c", "-f", T("nodes.txt"), "-P", "ImageName=" + v2,
            "--force"}));
  EXPECT_EQ(c.Find("state")->string_value(), "Started");
  EXPECT_EQ(c.Find("nodeDriver")->string_value(), "sim");
  for (const char* name : {"head", "execute-1", "execute-2"}) {
    const Json* n = NodeNamed(c, name);
    ASSERT_NE(n, nullptr) << name;
    EXPECT_EQ(n->Find("state")->string_value(), "Ready") << name;
    EXPECT_EQ(n->Find("image")->string_value(), v1) << name;
    EXPECT_FALSE(n->Find("imageUpToDate")->bool_value()) << name;
    EXPECT_EQ(n->Find("imageNote")->string_value(),
              "runs " + v1 + " (started from ImageName = " + v1 +
                  "); the template now says ImageName = " + v2 +
                  ": nodes started from now on use that, this one keeps its image")
        << name;
  }
  c = J(ok({"cyclecloud", "add_node", "c", "-t", "execute"}));
  const Json* fresh = NodeNamed(c, "execute-3");
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->Find("state")->string_value(), "Ready");
  EXPECT_EQ(fresh->Find("image")->string_value(), v2);
  EXPECT_TRUE(fresh->Find("imageUpToDate")->bool_value());
  EXPECT_EQ(NodeNamed(c, "execute-1")->Find("image")->string_value(), v1);

  // A version that is not there: the new node fails, naming itself and
  // the image; the running ones are untouched.
  const std::string v9 = v1.substr(0, v1.rfind('/')) + "/9.9.9";
  ok({"cyclecloud", "import_cluster", "c", "-f", T("nodes.txt"), "-P", "ImageName=" + v9, "--force",
      "-o", "none"});
  CliResult bad = ok({"cyclecloud", "add_node", "c", "-t", "execute"});
  c = J(bad);
  const Json* broken = NodeNamed(c, "execute-4");
  ASSERT_NE(broken, nullptr);
  EXPECT_EQ(broken->Find("state")->string_value(), "Failed");
  const std::string msg = broken->Find("statusMessage")->string_value();
  EXPECT_EQ(msg.rfind("node execute-4: ImageName " + v9 + ": ", 0), 0u) << msg;
  EXPECT_EQ(NodeNamed(c, "execute-3")->Find("state")->string_value(), "Ready");
  EXPECT_EQ(Run({"cyclecloud", "terminate_cluster", "c", "-o", "none"}).exit_code, 0);
}

// Each image form resolves when its node starts; the ones that cannot fail
// their own node with a message naming it and the image.
TEST_F(CycleCloudCliTest, EveryImageFormResolvesAtStartAndBadOnesFailTheirNodeOnly) {
  std::string dir = MakeTempDir();
  {
    std::ofstream f(dir + "/disk.raw", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = 'x';
    for (int i = 0; i < 4; ++i) f << block;
  }
  CliResult img = Run({"image", "create", "-g", "cyclecloud", "-n", "img", "--source",
                       dir + "/disk.raw", "--os-type", "Linux"});
  ASSERT_EQ(img.exit_code, 0) << img.err;
  const std::string image_id = J(img).Find("id")->string_value();
  const std::string missing = image_id.substr(0, image_id.rfind('/')) + "/nope";
  ASSERT_EQ(Run({"cyclecloud", "import_cluster", "i", "-f", T("images.txt"), "--node-driver", "sim",
                 "-P", "ManagedImage=" + image_id, "MissingImage=" + missing, "-o", "none"})
                .exit_code,
            0);
  CliResult started = Run({"cyclecloud", "start_cluster", "i"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  Json c = J(started);
  EXPECT_EQ(States(c),
            "byid=Ready marketplace=Ready urn=Ready missing=Failed windows=Failed jetpack=Failed "
            "size=Failed");
  EXPECT_EQ(NodeNamed(c, "byid")->Find("image")->string_value(), image_id);
  EXPECT_EQ(NodeNamed(c, "byid")->Find("imageReference")->string_value(), "ImageId = " + image_id);
  EXPECT_EQ(NodeNamed(c, "marketplace")->Find("image")->string_value(),
            "Debian:debian-12:12:latest");
  EXPECT_EQ(NodeNamed(c, "urn")->Find("image")->string_value(), "Debian:debian-12:12-gen2:latest");
  auto message = [&](const char* node) {
    return NodeNamed(c, node)->Find("statusMessage")->string_value();
  };
  EXPECT_EQ(message("missing").rfind("node missing: ImageName " + missing + ": ", 0), 0u)
      << message("missing");
  EXPECT_EQ(message("windows"), "node windows: ImageOS windows: only Linux images run here");
  EXPECT_EQ(message("jetpack"),
            "node jetpack: JetpackVersion 7.4.0 does not match the installed agent, version 0.1.0 "
            "(set JetpackVersion = 0.1.0 or leave it out)");
  EXPECT_EQ(message("size").rfind("node size: MachineType Standard_Bogus_v9: ", 0), 0u)
      << message("size");
  EXPECT_EQ(Run({"cyclecloud", "terminate_cluster", "i", "-o", "none"}).exit_code, 0);
}

// A node whose agent never says hello is Failed after the deadline.
TEST_F(CycleCloudCliTest, NodeWithoutHelloFailsAfterTheDeadline) {
  ASSERT_EQ(Run({"cyclecloud", "import_cluster", "c", "-f", T("nodes.txt"), "--node-driver", "sim",
                 "-o", "none"})
                .exit_code,
            0);
  CliResult r = RunCli({"cyclecloud", "start_cluster", "c"}, "",
                       {{"IMAGESMITH_HOME", env_["IMAGESMITH_HOME"]},
                        {"IMAGESMITH_SIM_BOOT_FAILURE_RATE", "1"},
                        {"IMAGESMITH_CYCLECLOUD_HELLO_DEADLINE_SECONDS", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json c = J(r);
  EXPECT_EQ(States(c), "head=Failed execute-1=Failed execute-2=Failed gpu-1=Failed");
  const std::string why = NodeNamed(c, "head")->Find("statusMessage")->string_value();
  EXPECT_EQ(why.rfind("node head: no hello from the agent within 1 s", 0), 0u) << why;
  EXPECT_EQ(c.Find("state")->string_value(), "Started");
  // Starting again retries the Failed [[node]] on a new machine; nodearray
  // nodes stay as they are (remove_node and add_node replace them).
  CliResult again = Run({"cyclecloud", "start_cluster", "c"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  c = J(again);
  EXPECT_EQ(States(c), "head=Ready execute-1=Failed execute-2=Failed gpu-1=Failed");
  EXPECT_EQ(NodeNamed(c, "head")->Find("statusMessage"), nullptr);
}

}  // namespace
}  // namespace imagesmith::e2e
