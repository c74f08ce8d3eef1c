// End-to-end tests of 'imagesmith batch ...' with the sim node driver: pools
// that reach idle with a start task, jobs whose tasks run and whose stdout is
// downloaded, resizes with nodeDeallocationOption, Batch's limits per image,
// bad input, protected images and AllocationFailed / AllocationTimedOut,
// nodes taken offline (scheduling disabled), and `imagesmith serve`'s pool
// watch replacing nodes that lost their heartbeats or were preempted.
#include <gtest/gtest.h>
#include <signal.h>

#include "base/json.h"
#include "e2e_util.h"
#include "serve_util.h"

namespace imagesmith::e2e {
namespace {

std::string S(const Json& j, const std::string& key) {
  const Json* v = j.is_object() ? j.Find(key) : nullptr;
  if (v == nullptr) return "";
  if (v->is_string()) return v->string_value();
  if (v->is_number()) return v->number_text();
  return v->Dump(-1);
}
const Json& O(const Json& j, const std::string& key) {
  static const Json kNull;
  const Json* v = j.is_object() ? j.Find(key) : nullptr;
  return v != nullptr ? *v : kNull;
}

class BatchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    env_ = {{"IMAGESMITH_HOME", dir_ + "/data"},
            {"IMAGESMITH_SIM_BOOT_MIN_MS", "50"},
            {"IMAGESMITH_SIM_BOOT_MAX_MS", "300"},
            {"IMAGESMITH_SIM_TASK_MS", "20"}};
    ASSERT_EQ(Run({"group", "create", "-n", "batch", "-l", "eastus"}).exit_code, 0);
    std::string raw = dir_ + "/disk.raw";
    ProcessOptions mk;
    mk.argv = {"truncate", "-s", "8M", raw};
    ASSERT_TRUE(Env::Default()->RunProcess(mk)->success());
    CliResult img = Run(
        {"image", "create", "-g", "batch", "-n", "img1", "--source", raw, "--os-type", "Linux"});
    ASSERT_EQ(img.exit_code, 0) << img.err;
    image_ = S(*ParseJson(img.out), "id");
  }
  CliResult Run(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& extra = {}) {
    auto env = env_;
    for (const auto& [k, v] : extra) env[k] = v;
    return RunCli(args, "", env);
  }
  Json RunJson(const std::vector<std::string>& args,
               const std::map<std::string, std::string>& extra = {}) {
    CliResult r = Run(args, extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = ParseJson(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }
  std::vector<std::string> CreatePool(const std::string& id, int dedicated, int low = 0,
                                      std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"batch",
                                     "pool",
                                     "create",
                                     "--id",
                                     id,
                                     "--vm-size",
                                     "Standard_A1_v2",
                                     "--image",
                                     image_,
                                     "--node-agent-sku-id",
                                     "batch.node.debian 12",
                                     "--target-dedicated-nodes",
                                     std::to_string(dedicated),
                                     "--target-low-priority-nodes",
                                     std::to_string(low),
                                     "--node-driver",
                                     "sim"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(Env::Default()->WriteFileAtomic(path, text).ok());
    return path;
  }
  // Polls the job's tasks until every one is completed (or 60 s pass).
  Json WaitForTasks(const std::string& job) {
    Json tasks;
    for (int i = 0; i < 600; ++i) {
      tasks = RunJson({"batch", "task", "list", "--job-id", job});
      bool done = tasks.is_array() && !tasks.array_items().empty();
      for (const Json& t : tasks.array_items()) done = done && S(t, "state") == "completed";
      if (done) break;
      Env::Default()->SleepFor(std::chrono::milliseconds(100));
    }
    return tasks;
  }
  // No pool; `account_made` says whether the (implicit) account exists.
  void ExpectNoPools(bool account_made) {
    CliResult r = Run({"batch", "pool", "list"});
    if (!account_made) {
      EXPECT_EQ(r.exit_code, 3) << r.out;
      EXPECT_NE(r.err.find("the Batch account imagesmith does not exist"), std::string::npos)
          << r.err;
      return;
    }
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto pools = ParseJson(r.out);
    EXPECT_TRUE(pools.ok() && pools->is_array() && pools->array_items().empty()) << r.out;
  }

  std::string dir_;
  std::string image_;
  std::map<std::string, std::string> env_;
};

TEST_F(BatchCliTest, PoolOfTwoReachesIdleWithStartTaskAndRunsFourTasks) {
  std::string file = WriteFile("pool.json", R"({
    "id": "p1", "vmSize": "Standard_D2s_v3",
    "virtualMachineConfiguration": {
      "imageReference": {"virtualMachineImageId": ")" +
                                                image_ + R"("},
      "nodeAgentSKUId": "batch.node.debian 12"},
    "targetDedicatedNodes": 2,
    "taskSlotsPerNode": 2,
    "startTask": {"commandLine": "echo node-ready", "waitForSuccess": true,
                  "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}},
    "metadata": [{"name": "team", "value": "hpc"}]})");
  Json pool = RunJson({"batch", "pool", "create", "--json-file", file, "--node-driver", "sim"});
  EXPECT_EQ(S(pool, "allocationState"), "steady");
  EXPECT_EQ(S(pool, "currentDedicatedNodes"), "2");
  EXPECT_EQ(S(O(pool, "imagesmith"), "nodeDriver"), "sim");
  Json nodes = RunJson({"batch", "node", "list", "--pool-id", "p1"});
  ASSERT_EQ(nodes.array_items().size(), 2u);
  for (const Json& n : nodes.array_items()) {
    EXPECT_EQ(S(n, "state"), "idle");
    EXPECT_EQ(S(O(n, "startTaskInfo"), "exitCode"), "0");
    EXPECT_EQ(S(O(n, "startTaskInfo"), "result"), "success");
    std::string out = ReadOrEmpty(dir_ + "/data/batch/nodes/" + S(n, "id") + "/startup/stdout.txt");
    EXPECT_EQ(out, "node-ready\n");
  }

  ASSERT_EQ(Run({"batch", "job", "create", "--id", "j1", "--pool-id", "p1"}).exit_code, 0);
  for (int i = 1; i <= 4; ++i) {
    Json t =
        RunJson({"batch", "task", "create", "--job-id", "j1", "--task-id", "t" + std::to_string(i),
                 "--command-line", "echo hello from task " + std::to_string(i)});
    EXPECT_EQ(S(t, "state"), "active");
  }
  Json tasks = WaitForTasks("j1");
  ASSERT_EQ(tasks.array_items().size(), 4u);
  for (const Json& t : tasks.array_items()) {
    EXPECT_EQ(S(t, "state"), "completed") << t.Dump();
    EXPECT_EQ(S(O(t, "executionInfo"), "exitCode"), "0");
    std::string dest = dir_ + "/" + S(t, "id") + ".txt";
    CliResult dl = Run({"batch", "task", "file", "download", "--job-id", "j1", "--task-id",
                        S(t, "id"), "--file-path", "stdout.txt", "--destination", dest});
    ASSERT_EQ(dl.exit_code, 0) << dl.err;
    EXPECT_EQ(ReadOrEmpty(dest), "hello from task " + S(t, "id").substr(1) + "\n");
  }
  Json job = RunJson({"batch", "job", "show", "--job-id", "j1"});
  EXPECT_EQ(S(O(job, "taskCounts"), "completed"), "4");
  EXPECT_EQ(S(O(job, "taskCounts"), "succeeded"), "4");
}

TEST_F(BatchCliTest, ResizeToThreeThenToOneWithTaskCompletion) {
  ASSERT_EQ(Run(CreatePool("p1", 2)).exit_code, 0);
  ASSERT_EQ(Run({"batch", "job", "create", "--id", "j1", "--pool-id", "p1"}).exit_code, 0);
  Json grown =
      RunJson({"batch", "pool", "resize", "--pool-id", "p1", "--target-dedicated-nodes", "3"});
  EXPECT_EQ(S(grown, "currentDedicatedNodes"), "3");
  EXPECT_EQ(RunJson({"batch", "node", "list", "--pool-id", "p1"}).array_items().size(), 3u);
  // Three tasks that take a while, one per node; the shrink waits for them.
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(Run({"batch", "task", "create", "--job-id", "j1", "--task-id",
                   "t" + std::to_string(i), "--command-line", "sleep 2 && echo finished"})
                  .exit_code,
              0);
  }
  for (int i = 0; i < 100; ++i) {
    Json t = RunJson({"batch", "task", "show", "--job-id", "j1", "--task-id", "t3"});
    if (S(t, "state") == "running") break;
    Env::Default()->SleepFor(std::chrono::milliseconds(100));
  }
  Json shrunk = RunJson({"batch", "pool", "resize", "--pool-id", "p1", "--target-dedicated-nodes",
                         "1", "--node-deallocation-option", "taskcompletion"});
  EXPECT_EQ(S(shrunk, "allocationState"), "steady");
  EXPECT_EQ(S(shrunk, "currentDedicatedNodes"), "1");
  Json tasks = WaitForTasks("j1");
  for (const Json& t : tasks.array_items()) {
    EXPECT_EQ(S(t, "state"), "completed");
    EXPECT_EQ(S(O(t, "executionInfo"), "exitCode"), "0") << t.Dump();
    // taskcompletion lets running tasks finish: none was requeued.
    EXPECT_EQ(S(O(t, "executionInfo"), "requeueCount"), "0") << t.Dump();
  }
  EXPECT_EQ(RunJson({"batch", "node", "list", "--pool-id", "p1"}).array_items().size(), 1u);
}

TEST_F(BatchCliTest, FailingStartTaskEndsInStartTaskFailedWithExitCodeAndOutput) {
  std::string file = WriteFile("pool.json", R"({
    "id": "bad-start", "vmSize": "Standard_A1_v2",
    "virtualMachineConfiguration": {
      "imageReference": {"virtualMachineImageId": ")" +
                                                image_ + R"("},
      "nodeAgentSKUId": "batch.node.debian 12"},
    "targetDedicatedNodes": 1,
    "startTask": {"commandLine": "echo cannot-mount-share && exit 3", "maxTaskRetryCount": 1}})");
  CliResult r = Run({"batch", "pool", "create", "--json-file", file, "--node-driver", "sim"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Json nodes = RunJson({"batch", "node", "list", "--pool-id", "bad-start"});
  ASSERT_EQ(nodes.array_items().size(), 1u);
  const Json& n = nodes.array_items()[0];
  EXPECT_EQ(S(n, "state"), "starttaskfailed");
  const Json& info = O(n, "startTaskInfo");
  EXPECT_EQ(S(info, "exitCode"), "3");
  EXPECT_EQ(S(info, "retryCount"), "1");
  EXPECT_EQ(S(info, "result"), "failure");
  EXPECT_NE(S(O(info, "failureInfo"), "message").find("cannot-mount-share"), std::string::npos)
      << info.Dump();
  // A failed start task keeps tasks off the node.
  ASSERT_EQ(Run({"batch", "job", "create", "--id", "j1", "--pool-id", "bad-start"}).exit_code, 0);
  ASSERT_EQ(Run({"batch", "task", "create", "--job-id", "j1", "--task-id", "t1", "--command-line",
                 "echo never"})
                .exit_code,
            0);
  Env::Default()->SleepFor(std::chrono::milliseconds(1500));
  EXPECT_EQ(S(RunJson({"batch", "task", "show", "--job-id", "j1", "--task-id", "t1"}), "state"),
            "active");
}

TEST_F(BatchCliTest, BadInputNamesTheFieldAndCreatesNothing) {
  struct Case {
    std::vector<std::string> extra;  // appended to a good pool create
    std::string field;
    std::string says;
  };
  std::string missing =
      "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
      "batch/providers/Microsoft.Compute/images/nope";
  std::vector<std::pair<std::vector<std::string>, std::pair<std::string, std::string>>> cases = {
      {{"--image", missing}, {"virtualMachineImageId", "does not exist"}},
      {{"--node-agent-sku-id", "batch.node.ubuntu 22.04"},
       {"nodeAgentSKUId", "batch.node.debian 12"}},
      {{"--node-agent-sku-id", "batch.node.debian 99"}, {"nodeAgentSKUId", "batch.node.debian 12"}},
      {{"--resize-timeout", "PT4M"}, {"resizeTimeout", "PT5M"}},
      {{"--target-dedicated-nodes", "-1"}, {"targetDedicatedNodes", "negative"}},
      {{"--target-dedicated-nodes", "2501"}, {"targetDedicatedNodes", "2,500"}},
      {{"--target-low-priority-nodes", "1001"}, {"targetLowPriorityNodes", "1,000"}},
      {{"--vm-size", "Standard_Huge"}, {"vmSize", "unknown vmSize"}},
  };
  for (const auto& [extra, expect] : cases) {
    std::vector<std::string> args = CreatePool("p1", 1);
    // Later flags win: replace the good value.
    for (size_t i = 0; i + 1 < extra.size(); i += 2) {
      bool replaced = false;
      for (size_t j = 0; j + 1 < args.size(); ++j) {
        if (args[j] == extra[i]) {
          args[j + 1] = extra[i + 1];
          replaced = true;
        }
      }
      if (!replaced) args.insert(args.end(), {extra[i], extra[i + 1]});
    }
    CliResult r = Run(args);
    EXPECT_NE(r.exit_code, 0) << extra[0] << " " << extra[1];
    EXPECT_NE(r.err.find(expect.first), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(expect.second), std::string::npos) << r.err;
  }
  std::string bad_driver = WriteFile("drv.json", R"({"id": "p1", "vmSize": "Standard_A1_v2",
    "virtualMachineConfiguration": {"imageReference": {"virtualMachineImageId": ")" +
                                                     image_ +
                                                     R"("},
      "nodeAgentSKUId": "batch.node.debian 12"},
    "imagesmith": {"nodeDriver": "docker"}, "colour": "blue"})");
  CliResult r = Run({"batch", "pool", "create", "--json-file", bad_driver});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("colour: unknown field"), std::string::npos) << r.err;
  // VHD pools: one VHD serves 40 Linux nodes.
  std::string vhd = WriteFile("base.vhd", "not really a vhd");
  std::string vhd_pool = WriteFile("vhd.json", R"({"id": "v1", "vmSize": "Standard_A1_v2",
    "virtualMachineConfiguration": {"osDisk": {"imageUris": [")" +
                                                   vhd + R"("]},
      "nodeAgentSKUId": "batch.node.debian 12"},
    "targetDedicatedNodes": 100})");
  r = Run({"batch", "pool", "create", "--json-file", vhd_pool, "--node-driver", "sim"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("osDisk.imageUris"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("100 nodes need 3 VHD copies"), std::string::npos) << r.err;
  ExpectNoPools(/*account_made=*/false);
  // Nothing half-made: no nodes directory either.
  EXPECT_FALSE(Env::Default()->FileExists(dir_ + "/data/batch/nodes"));
}

TEST_F(BatchCliTest, LimitOfTwentyFiveHundredPlusOneThousandIsSharedByPoolsOnOneImage) {
  CliResult big = Run(CreatePool("big", 2500, 1000));
  ASSERT_EQ(big.exit_code, 0) << big.err;
  Json pool = RunJson({"batch", "pool", "show", "--pool-id", "big"});
  EXPECT_EQ(S(pool, "allocationState"), "steady");
  EXPECT_EQ(S(pool, "currentDedicatedNodes"), "2500");
  EXPECT_EQ(S(pool, "currentLowPriorityNodes"), "1000");
  CliResult more =
      Run({"batch", "pool", "resize", "--pool-id", "big", "--target-dedicated-nodes", "2501"});
  EXPECT_NE(more.exit_code, 0);
  EXPECT_NE(more.err.find("2501 dedicated nodes"), std::string::npos) << more.err;
  EXPECT_NE(more.err.find("2,500"), std::string::npos) << more.err;
  // A second pool on the same image finds the limit used up.
  CliResult second = Run(CreatePool("second", 0, 1));
  EXPECT_NE(second.exit_code, 0);
  EXPECT_NE(second.err.find("big 1000"), std::string::npos) << second.err;
  ASSERT_EQ(Run({"batch", "pool", "resize", "--pool-id", "big", "--target-dedicated-nodes", "2000",
                 "--target-low-priority-nodes", "0"})
                .exit_code,
            0);
  EXPECT_NE(Run(CreatePool("second", 501)).exit_code, 0);
  Json second_pool = RunJson(CreatePool("second", 500));
  EXPECT_EQ(S(second_pool, "currentDedicatedNodes"), "500");
}

TEST_F(BatchCliTest, ImageInUseIsProtectedUntilForcedThenAllocationFails) {
  ASSERT_EQ(Run(CreatePool("p1", 1)).exit_code, 0);
  CliResult refused = Run({"image", "delete", "-g", "batch", "-n", "img1"});
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_NE(refused.err.find("imagesmith/p1"), std::string::npos) << refused.err;
  EXPECT_EQ(Run({"image", "show", "-g", "batch", "-n", "img1"}).exit_code, 0);
  ASSERT_EQ(Run({"image", "delete", "-g", "batch", "-n", "img1", "--force"}).exit_code, 0);
  CliResult grow =
      Run({"batch", "pool", "resize", "--pool-id", "p1", "--target-dedicated-nodes", "2"});
  EXPECT_EQ(grow.exit_code, 1);
  EXPECT_NE(grow.err.find("AllocationFailed"), std::string::npos) << grow.err;
  EXPECT_NE(grow.err.find(image_), std::string::npos) << grow.err;
  EXPECT_NE(grow.err.find("eastus"), std::string::npos) << grow.err;
  Json pool = RunJson({"batch", "pool", "show", "--pool-id", "p1"});
  EXPECT_EQ(S(O(pool, "resizeErrors").array_items()[0], "code"), "AllocationFailed");
  EXPECT_EQ(S(pool, "currentDedicatedNodes"), "1");  // the old node stays
}

TEST_F(BatchCliTest, ImageThatDoesNotBootGoesUnusableAndTheResizeTimesOut) {
  std::map<std::string, std::string> broken = {{"IMAGESMITH_SIM_BOOT_FAILURE_RATE", "1"},
                                               {"IMAGESMITH_BATCH_HELLO_DEADLINE_SECONDS", "1"},
                                               {"IMAGESMITH_BATCH_RESIZE_TIMEOUT_SECONDS", "3"}};
  CliResult r = Run(CreatePool("p1", 2), broken);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("AllocationTimedOut"), std::string::npos) << r.err;
  Json nodes = RunJson({"batch", "node", "list", "--pool-id", "p1"});
  ASSERT_EQ(nodes.array_items().size(), 2u);
  for (const Json& n : nodes.array_items()) {
    EXPECT_EQ(S(n, "state"), "unusable");
    EXPECT_EQ(S(O(n, "errors").array_items()[0], "code"), "NodeAgentNoHello");
  }
}

TEST_F(BatchCliTest, DeletePoolRemovesItsNodes) {
  ASSERT_EQ(Run(CreatePool("p1", 3)).exit_code, 0);
  CliResult del = Run({"batch", "pool", "delete", "--pool-id", "p1", "--yes"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  ExpectNoPools(/*account_made=*/true);
  auto left = Env::Default()->ListDir(dir_ + "/data/batch/nodes");
  EXPECT_TRUE(!left.ok() || left->empty());
  EXPECT_EQ(Run({"batch", "pool", "show", "--pool-id", "p1"}).exit_code, 3);
}

TEST_F(BatchCliTest, KilledControllerLeavesNodesToBeAdoptedAndItsTaskRequeued) {
  ASSERT_EQ(Run(CreatePool("p1", 1)).exit_code, 0);
  std::string node =
      S(RunJson({"batch", "node", "list", "--pool-id", "p1"}).array_items()[0], "id");
  ASSERT_EQ(Run({"batch", "job", "create", "--id", "j1", "--pool-id", "p1"}).exit_code, 0);
  ASSERT_EQ(Run({"batch", "task", "create", "--job-id", "j1", "--task-id", "t1", "--command-line",
                 "sleep 4 && echo finished"})
                .exit_code,
            0);
  for (int i = 0; i < 100; ++i) {
    if (S(RunJson({"batch", "task", "show", "--job-id", "j1", "--task-id", "t1"}), "state") ==
        "running") {
      break;
    }
    Env::Default()->SleepFor(std::chrono::milliseconds(100));
  }
  // The detached worker running the pool's controller: its operation's owner.
  std::string op =
      S(O(RunJson({"batch", "pool", "show", "--pool-id", "p1"}), "imagesmith"), "operationId");
  ASSERT_FALSE(op.empty());
  std::string owner = S(RunJson({"operation", "show", "--id", op}), "owner");
  size_t colon = owner.find(':');
  ASSERT_NE(colon, std::string::npos) << owner;
  int pid = std::stoi(owner.substr(colon + 1));
  ASSERT_GT(pid, 1);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  // The next command's controller adopts the node and requeues the task.
  ASSERT_EQ(Run({"batch", "task", "create", "--job-id", "j1", "--task-id", "t2", "--command-line",
                 "echo second"})
                .exit_code,
            0);
  Json tasks = WaitForTasks("j1");
  ASSERT_EQ(tasks.array_items().size(), 2u);
  for (const Json& t : tasks.array_items()) {
    EXPECT_EQ(S(t, "state"), "completed") << t.Dump();
    EXPECT_EQ(S(O(t, "executionInfo"), "exitCode"), "0");
    EXPECT_EQ(S(O(t, "nodeInfo"), "nodeId"), node);  // the same node, adopted
  }
  Json t1 = RunJson({"batch", "task", "show", "--job-id", "j1", "--task-id", "t1"});
  EXPECT_EQ(S(O(t1, "executionInfo"), "requeueCount"), "1") << t1.Dump();
  CliResult out = Run({"batch", "task", "file", "download", "--job-id", "j1", "--task-id", "t1",
                       "--file-path", "stdout.txt"});
  EXPECT_EQ(out.out, "finished\n");
  Json nodes = RunJson({"batch", "node", "list", "--pool-id", "p1"});
  ASSERT_EQ(nodes.array_items().size(), 1u);
  EXPECT_EQ(S(nodes.array_items()[0], "state"), "idle");
}

TEST_F(BatchCliTest, RebootAndReimageBringTheNodeBackToIdle) {
  ASSERT_EQ(Run(CreatePool("p1", 1, 0, {"--start-task-command-line", "echo boot"})).exit_code, 0);
  std::string node =
      S(RunJson({"batch", "node", "list", "--pool-id", "p1"}).array_items()[0], "id");
  for (const char* action : {"reboot", "reimage"}) {
    Json n = RunJson({"batch", "node", action, "--pool-id", "p1", "--node-id", node});
    EXPECT_EQ(S(n, "state"), "idle") << action << ": " << n.Dump();
    EXPECT_EQ(S(O(n, "startTaskInfo"), "result"), "success") << n.Dump();
  }
  CliResult missing =
      Run({"batch", "node", "reboot", "--pool-id", "p1", "--node-id", "tvmps_nope"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("tvmps_nope"), std::string::npos) << missing.err;
  CliResult removed = Run({"batch", "node", "delete", "--pool-id", "p1", "--node-list", node});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  Json pool = RunJson({"batch", "pool", "show", "--pool-id", "p1"});
  EXPECT_EQ(S(pool, "targetDedicatedNodes"), "0");
  EXPECT_EQ(S(pool, "currentDedicatedNodes"), "0");
}

TEST_F(BatchCliTest, DisabledSchedulingTakesTheNodeOfflineAndEnableBringsItBack) {
  ASSERT_EQ(Run(CreatePool("p1", 2)).exit_code, 0);
  ASSERT_EQ(Run({"batch", "job", "create", "--id", "j1", "--pool-id", "p1"}).exit_code, 0);
  auto wait_running = [&](const std::string& task) {
    Json t;
    for (int i = 0; i < 100; ++i) {
      t = RunJson({"batch", "task", "show", "--job-id", "j1", "--task-id", task});
      if (S(t, "state") == "running") break;
      Env::Default()->SleepFor(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(S(t, "state"), "running") << t.Dump();
    return S(O(t, "nodeInfo"), "nodeId");
  };
  // taskcompletion: the running task finishes, then the node is offline.
  ASSERT_EQ(Run({"batch", "task", "create", "--job-id", "j1", "--task-id", "t1", "--command-line",
                 "sleep 2 && echo one"})
                .exit_code,
            0);
  std::string a = wait_running("t1");
  Json off = RunJson({"batch", "node", "scheduling", "disable", "--pool-id", "p1", "--node-id", a,
                      "--node-disable-scheduling-option", "taskcompletion"});
  EXPECT_EQ(S(off, "state"), "offline") << off.Dump();
  EXPECT_EQ(S(off, "schedulingState"), "disabled");
  Json t1 = RunJson({"batch", "task", "show", "--job-id", "j1", "--task-id", "t1"});
  EXPECT_EQ(S(t1, "state"), "completed");
  EXPECT_EQ(S(O(t1, "executionInfo"), "exitCode"), "0") << t1.Dump();
  EXPECT_EQ(S(O(t1, "executionInfo"), "requeueCount"), "0") << t1.Dump();
  // An offline node takes no task: both run on the other node.
  for (const char* t : {"t2", "t3"}) {
    ASSERT_EQ(
        Run({"batch", "task", "create", "--job-id", "j1", "--task-id", t, "--command-line", "true"})
            .exit_code,
        0);
  }
  Json tasks = WaitForTasks("j1");
  for (const Json& t : tasks.array_items()) {
    EXPECT_EQ(S(t, "state"), "completed") << t.Dump();
    if (S(t, "id") != "t1") {
      EXPECT_NE(S(O(t, "nodeInfo"), "nodeId"), a) << t.Dump();
    }
  }
  EXPECT_EQ(S(RunJson({"batch", "node", "show", "--pool-id", "p1", "--node-id", a}), "state"),
            "offline");
  Json on = RunJson({"batch", "node", "scheduling", "enable", "--pool-id", "p1", "--node-id", a});
  EXPECT_EQ(S(on, "state"), "idle") << on.Dump();
  EXPECT_EQ(S(on, "schedulingState"), "enabled");

  // requeue (the default): the running task goes back to the queue and runs
  // on the other node.
  ASSERT_EQ(Run({"batch", "task", "create", "--job-id", "j1", "--task-id", "t4", "--command-line",
                 "sleep 2 && echo four"})
                .exit_code,
            0);
  std::string n = wait_running("t4");
  off = RunJson({"batch", "node", "scheduling", "disable", "--pool-id", "p1", "--node-id", n});
  EXPECT_EQ(S(off, "state"), "offline") << off.Dump();
  Json t4;
  for (int i = 0; i < 100; ++i) {
    t4 = RunJson({"batch", "task", "show", "--job-id", "j1", "--task-id", "t4"});
    if (S(t4, "state") == "completed") break;
    Env::Default()->SleepFor(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(S(t4, "state"), "completed") << t4.Dump();
  EXPECT_EQ(S(O(t4, "executionInfo"), "requeueCount"), "1") << t4.Dump();
  EXPECT_NE(S(O(t4, "nodeInfo"), "nodeId"), n) << t4.Dump();
  CliResult out = Run({"batch", "task", "file", "download", "--job-id", "j1", "--task-id", "t4",
                       "--file-path", "stdout.txt"});
  EXPECT_EQ(out.out, "four\n");
  // Bad options name the flag's JSON member.
  CliResult bad = Run({"batch", "node", "scheduling", "disable", "--pool-id", "p1", "--node-id", n,
                       "--node-disable-scheduling-option", "retaineddata"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("nodeDisableSchedulingOption"), std::string::npos) << bad.err;
}

// The pool watch of `imagesmith serve`: nodes of a quiet pool that stop
// sending heartbeats go unknown within the deadline (+ the watch's interval)
// and are replaced, without any command. Every sim node here loses its
// heartbeats at hello, so replacements are lost too; the test follows the
// first one.
TEST_F(BatchCliTest, ServeWatchTurnsASilentNodeUnknownAndReplacesIt) {
  auto env = env_;
  env["IMAGESMITH_SIM_BOOT_MIN_MS"] = "1000";
  env["IMAGESMITH_SIM_BOOT_MAX_MS"] = "1500";
  env["IMAGESMITH_SIM_HEARTBEAT_LOSS_RATE"] = "1";
  env["IMAGESMITH_BATCH_HEARTBEAT_DEADLINE_SECONDS"] = "3";
  env["IMAGESMITH_BATCH_WATCH_SECONDS"] = "0.5";
  env_ = env;
  ServeProcess serve(dir_ + "/data", {"--access-log", "off"}, env);
  ASSERT_TRUE(serve.ok()) << serve.Stderr();
  ASSERT_EQ(Run(CreatePool("p1", 1, 0, {"--no-wait"})).exit_code, 0);
  std::string first;
  bool saw_unknown = false, replaced = false;
  int64_t start = Env::Default()->MonotonicMicros();
  while (!replaced && Env::Default()->MonotonicMicros() - start < 60'000'000) {
    Json nodes = RunJson({"batch", "node", "list", "--pool-id", "p1"});
    for (const Json& n : nodes.array_items()) {
      if (first.empty() && S(n, "state") == "idle") first = S(n, "id");
      if (S(n, "id") == first && S(n, "state") == "unknown") {
        saw_unknown = true;
        EXPECT_EQ(S(O(n, "errors").array_items()[0], "code"), "HeartbeatLost") << n.Dump();
      }
    }
    if (saw_unknown) {
      bool first_gone = true, other_idle = false;
      for (const Json& n : nodes.array_items()) {
        if (S(n, "id") == first) first_gone = false;
        if (S(n, "id") != first && S(n, "state") == "idle") other_idle = true;
      }
      replaced = first_gone && other_idle;
    }
    Env::Default()->SleepFor(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(first.empty());
  EXPECT_TRUE(saw_unknown) << "node " << first << " never showed as unknown";
  EXPECT_TRUE(replaced) << "node " << first << " was not replaced";
  // The watch (not a command) started the controller that saw it.
  EXPECT_NE(serve.Stderr().find("pool watch: "), std::string::npos) << serve.Stderr();
  EXPECT_NE(serve.Stderr().find("node " + first + ": no heartbeat"), std::string::npos)
      << serve.Stderr();
}

// Low-priority sim nodes are preempted (at a random time after hello here);
// the pool shows them `preempted` until their replacement is up, then
// drops them. Dedicated nodes are never preempted.
TEST_F(BatchCliTest, PreemptedLowPriorityNodesAreShownAndReplaced) {
  auto env = env_;
  env["IMAGESMITH_SIM_BOOT_MIN_MS"] = "1000";
  env["IMAGESMITH_SIM_BOOT_MAX_MS"] = "1500";
  env["IMAGESMITH_SIM_PREEMPTION_RATE"] = "20";  // per node and minute: ~3 s after hello
  env["IMAGESMITH_BATCH_WATCH_SECONDS"] = "0.5";
  env_ = env;
  ServeProcess serve(dir_ + "/data", {"--access-log", "off"}, env);
  ASSERT_TRUE(serve.ok()) << serve.Stderr();
  ASSERT_EQ(Run(CreatePool("p1", 1, 2, {"--no-wait"})).exit_code, 0);
  std::string dedicated, preempted;
  bool replaced = false;
  int64_t start = Env::Default()->MonotonicMicros();
  while (!replaced && Env::Default()->MonotonicMicros() - start < 60'000'000) {
    Json nodes = RunJson({"batch", "node", "list", "--pool-id", "p1"});
    bool gone = true;
    int idle_low = 0;
    for (const Json& n : nodes.array_items()) {
      bool is_dedicated = S(n, "isDedicated") == "true";
      if (is_dedicated) {
        EXPECT_NE(S(n, "state"), "preempted") << n.Dump();
        if (dedicated.empty()) dedicated = S(n, "id");
        EXPECT_EQ(S(n, "id"), dedicated) << "the dedicated node was replaced";
        continue;
      }
      if (preempted.empty() && S(n, "state") == "preempted") {
        preempted = S(n, "id");
        EXPECT_EQ(S(O(n, "errors").array_items()[0], "code"), "NodePreempted") << n.Dump();
      }
      if (S(n, "id") == preempted) gone = false;
      if (S(n, "id") != preempted && S(n, "state") == "idle") ++idle_low;
    }
    replaced = !preempted.empty() && gone && idle_low >= 1;
    Env::Default()->SleepFor(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(preempted.empty()) << "no node was seen preempted";
  EXPECT_TRUE(replaced) << "the preempted node " << preempted << " was not replaced";
}

}  // namespace
}  // namespace imagesmith::e2e
