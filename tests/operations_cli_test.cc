// Durable operations end to end (doc/operations.md): a real `imagesmith`
// build killed with SIGKILL in the middle of publishing leaves its run
// Failed with the reason and no gallery version `Creating`, and the next run
// publishes the same version number; `--no-wait` returns the run's operation
// at once and a worker process does the work, followed with `operation wait`.
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

constexpr int kKilled = 128 + 9;

Json ParseOut(const CliResult& r) {
  auto j = ParseJson(r.out);
  EXPECT_TRUE(j.ok()) << r.out << r.err;
  return j.ok() ? *j : Json();
}

class OperationsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = DataDirWithSharedCatalog(&home_);
    dir_ = MakeTempDir();
    CliResult r = Cli({"account", "show"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    sub_ = ParseOut(r).Find("id")->string_value();
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"group", "create", "-n", "imgs", "-l", "eastus"},
             {"sig", "create", "-g", "imgs", "-r", "gal"},
             {"sig", "image-definition", "create", "-g", "imgs", "-r", "gal", "-i", "deb",
              "--publisher", "me", "--offer", "debian", "--sku", "12", "--os-type", "Linux",
              "--hyper-v-generation", "V2"}}) {
      CliResult c = Cli(args);
      ASSERT_EQ(c.exit_code, 0) << Join(args, " ") << "\n" << c.err;
    }
  }
  CliResult Cli(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& extra = {}) {
    std::map<std::string, std::string> env = env_;
    for (const auto& [k, v] : extra) env[k] = v;
    return RunCli(args, dir_, env);
  }
  std::string Definition() {
    return "/subscriptions/" + sub_ +
           "/resourceGroups/imgs/providers/Microsoft.Compute/galleries/gal/images/deb";
  }
  // A template whose one step sleeps with `marker` on its command line.
  std::string WriteSleepingTemplate(const std::string& name, const std::string& marker) {
    std::string text = R"({"type": "Microsoft.VirtualMachineImages/imageTemplates",
      "apiVersion": "2022-07-01", "location": "eastus", "properties": {
      "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
                 "sku": "12-gen2", "version": "latest"},
      "customize": [{"type": "Shell", "name": "step", "inline": ["sh -c 'sleep 600' )" +
                       marker + R"("]}],
      "distribute": [{"type": "VHD", "runOutputName": "vhd"}]}})";
    std::string path = dir_ + "/" + name + ".json";
    EXPECT_TRUE(Env::Default()->WriteFileAtomic(path, text).ok());
    return path;
  }
  static bool WaitFor(const std::function<bool()>& cond, int seconds) {
    for (int i = 0; i < seconds * 4; ++i) {
      if (cond()) return true;
      Env::Default()->SleepFor(std::chrono::milliseconds(250));
    }
    return cond();
  }
  // Starts `name` with --no-wait (lease `lease_seconds`) and waits until its
  // step runs; returns the operation and sets the worker's pid.
  Json StartInBackground(const std::string& name, const std::string& marker, int lease_seconds,
                         int* worker_pid) {
    std::string file = WriteSleepingTemplate(name, marker);
    CliResult created =
        Cli({"image-template", "create", "-g", "imgs", "-n", name, "--image-template", file});
    EXPECT_EQ(created.exit_code, 0) << created.err;
    std::map<std::string, std::string> lease = {
        {"IMAGESMITH_OPERATION_LEASE_SECONDS", std::to_string(lease_seconds)}};
    CliResult started =
        Cli({"image-template", "run", "-g", "imgs", "-n", name, "--no-wait"}, lease);
    EXPECT_EQ(started.exit_code, 0) << started.err;
    Json op = ParseOut(started);
    EXPECT_TRUE(WaitFor([&] { return !PidsWith(marker).empty(); }, 300)) << "the step never ran";
    CliResult shown = Cli({"operation", "show", "--id", op.Find("name")->string_value()});
    Json cur = ParseOut(shown);
    // owner: host:pid:start-ticks
    std::string owner = cur.Find("owner")->is_string() ? cur.Find("owner")->string_value() : "";
    std::vector<std::string> parts = Split(owner, ':');
    EXPECT_GE(parts.size(), 3u) << cur.Dump();
    *worker_pid = parts.size() >= 3 ? std::atoi(parts[parts.size() - 2].c_str()) : 0;
    return cur;
  }

  std::string WriteTemplate(const std::string& name) {
    std::string text = R"({"type": "Microsoft.VirtualMachineImages/imageTemplates",
      "apiVersion": "2022-07-01", "location": "eastus", "properties": {
      "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
                 "sku": "12-gen2", "version": "latest"},
      "customize": [{"type": "Shell", "name": "step", "inline": ["echo hi > /etc/ops-test"]}],
      "distribute": [{"type": "SharedImage", "runOutputName": "gal", "galleryImageId": ")" +
                       Definition() + R"(", "targetRegions": [{"name": "eastus"}]}]}})";
    std::string path = dir_ + "/" + name + ".json";
    EXPECT_TRUE(Env::Default()->WriteFileAtomic(path, text).ok());
    return path;
  }
  // The versions of the definition: name -> provisioningState.
  std::map<std::string, std::string> Versions() {
    CliResult r = Cli({"sig", "image-version", "list", "-g", "imgs", "-r", "gal", "-i", "deb"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::string> out;
    Json list = ParseOut(r);
    if (!list.is_array()) return out;
    for (const Json& v : list.array_items()) {
      out[v.Find("name")->string_value()] =
          v.Find("properties")->Find("provisioningState")->string_value();
    }
    return out;
  }
  Json Show(const std::string& name) {
    CliResult r = Cli({"image-template", "show", "-g", "imgs", "-n", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseOut(r);
  }

  std::string home_;
  std::string dir_;
  std::string sub_;
  std::map<std::string, std::string> env_;
};

// issue 17 item 2: the build process is SIGKILLed right after it created the
// gallery version (Creating). The run then shows Failed with the reason,
// the version left Creating is removed, and the next run publishes the same
// version number rather than the next one.
TEST_F(OperationsE2E, KilledBuildLeavesNoVersionCreatingAndTheRerunReusesTheNumber) {
  std::string file = WriteTemplate("pub");
  CliResult killed = Cli({"build", file, "-g", "imgs", "-n", "pub"},
                         {{"IMAGESMITH_CRASH_AT", "gallery.publish.created"}});
  ASSERT_EQ(killed.exit_code, kKilled) << killed.err;
  std::map<std::string, std::string> left = Versions();
  ASSERT_EQ(left.size(), 1u);
  const std::string number = left.begin()->first;
  EXPECT_EQ(left.begin()->second, "Creating");

  Json t = Show("pub");
  const Json* last = t.Find("properties")->Find("lastRunStatus");
  EXPECT_EQ(last->Find("runState")->string_value(), "Failed") << t.Dump();
  const std::string message = last->Find("message")->string_value();
  EXPECT_NE(message.find("killed or crashed"), std::string::npos) << message;
  EXPECT_NE(message.find("versions/" + number + " it left Creating was removed"), std::string::npos)
      << message;
  EXPECT_TRUE(Versions().empty()) << "a version stayed Creating after its run was failed";

  // The run's operation says the same, naming the dead worker.
  CliResult ops = Cli({"operation", "list", "--target", t.Find("id")->string_value()});
  ASSERT_EQ(ops.exit_code, 0) << ops.err;
  Json list = ParseOut(ops);
  ASSERT_EQ(list.array_items().size(), 1u) << list.Dump();
  const Json& op = list.array_items()[0];
  EXPECT_EQ(op.Find("status")->string_value(), "Failed");
  EXPECT_EQ(op.Find("error")->Find("code")->string_value(), "WorkerLost");
  EXPECT_NE(op.Find("error")->Find("message")->string_value().find("its process is gone"),
            std::string::npos)
      << op.Dump();

  CliResult again = Cli({"image-template", "run", "-g", "imgs", "-n", "pub"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  std::map<std::string, std::string> now = Versions();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now.begin()->first, number) << "the re-run skipped the killed run's version number";
  EXPECT_EQ(now.begin()->second, "Succeeded");
}

TEST_F(OperationsE2E, NoWaitReturnsTheOperationAndAWorkerProcessRunsIt) {
  std::string file = WriteTemplate("bg");
  CliResult created =
      Cli({"image-template", "create", "-g", "imgs", "-n", "bg", "--image-template", file});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  CliResult started = Cli({"image-template", "run", "-g", "imgs", "-n", "bg", "--no-wait"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  Json op = ParseOut(started);
  EXPECT_EQ(op.Find("status")->string_value(), "InProgress");
  const std::string name = op.Find("name")->string_value();
  EXPECT_TRUE(EndsWith(op.Find("id")->string_value(), "/operations/" + name));
  EXPECT_TRUE(
      StartsWith(op.Find("id")->string_value(), "/subscriptions/" + sub_ +
                                                    "/providers/Microsoft.VirtualMachineImages/"
                                                    "locations/eastus/operations/"));

  // A second run while it is queued or running is refused.
  CliResult twice = Cli({"image-template", "run", "-g", "imgs", "-n", "bg"});
  EXPECT_EQ(twice.exit_code, 4) << twice.err;
  EXPECT_NE(twice.err.find("is already running"), std::string::npos) << twice.err;

  CliResult waited = Cli({"operation", "wait", "--id", name, "--timeout", "900"});
  ASSERT_EQ(waited.exit_code, 0) << waited.err << waited.out;
  Json done = ParseOut(waited);
  EXPECT_EQ(done.Find("status")->string_value(), "Succeeded");
  EXPECT_EQ(done.Find("percentComplete")->AsInt64().value_or(-1), 100);
  EXPECT_NE(done.Find("endTime"), nullptr);
  EXPECT_EQ(Show("bg").Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
            "Succeeded");
  std::map<std::string, std::string> versions = Versions();
  ASSERT_EQ(versions.size(), 1u);
  EXPECT_EQ(versions.begin()->second, "Succeeded");

  CliResult shown = Cli({"operation", "show", "--id", name});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(ParseOut(shown).Find("status")->string_value(), "Succeeded");
  CliResult missing = Cli({"operation", "show", "--id", "00000000-0000-0000-0000-000000000000"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("00000000-0000-0000-0000-000000000000"), std::string::npos);
}

// The worker process that runs a --no-wait build is SIGKILLed: the next look
// at the operation fails it, naming the dead worker, and the run is Failed.
TEST_F(OperationsE2E, KilledWorkerProcessIsNoticedAndItsOperationFailed) {
  const std::string marker = "ops-e2e-killed-worker-" + std::to_string(::getpid());
  int worker = 0;
  Json op = StartInBackground("kw", marker, 30, &worker);
  ASSERT_GT(worker, 0);
  const std::string owner = op.Find("owner")->string_value();
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  EXPECT_TRUE(WaitFor([&] { return PidsWith(marker).empty(); }, 30))
      << "the killed worker's build step outlived it";
  int64_t asked = Env::Default()->MonotonicMicros();
  CliResult waited =
      Cli({"operation", "wait", "--id", op.Find("name")->string_value(), "--timeout", "60"});
  EXPECT_EQ(waited.exit_code, 1) << waited.err;
  // Noticed at once on this host, without waiting for the 30 s lease.
  EXPECT_LT(Env::Default()->MonotonicMicros() - asked, 20'000'000);
  Json done = ParseOut(waited);
  EXPECT_EQ(done.Find("status")->string_value(), "Failed");
  const std::string message = done.Find("error")->Find("message")->string_value();
  EXPECT_NE(message.find(owner), std::string::npos) << message;
  EXPECT_NE(message.find("killed or crashed"), std::string::npos) << message;
  Json t = Show("kw");
  EXPECT_EQ(t.Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
            "Failed");
}

// The worker is stopped (SIGSTOP) so it cannot renew its 3 s lease: once the
// lease has run out another process takes the operation over and fails it,
// saying when the lease ended. When the worker goes on (SIGCONT) it finds
// its lease lost, stops the build and records nothing over that verdict.
TEST_F(OperationsE2E, ExpiredLeaseIsTakenOverAndTheOldWorkerRecordsNothing) {
  const std::string marker = "ops-e2e-stopped-worker-" + std::to_string(::getpid());
  int worker = 0;
  Json op = StartInBackground("sw", marker, 3, &worker);
  ASSERT_GT(worker, 0);
  const std::string name = op.Find("name")->string_value();
  ASSERT_EQ(::kill(worker, SIGSTOP), 0);
  Env::Default()->SleepFor(std::chrono::milliseconds(4500));
  CliResult shown = Cli({"operation", "show", "--id", name});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  Json failed = ParseOut(shown);
  EXPECT_EQ(failed.Find("status")->string_value(), "Failed") << failed.Dump();
  const std::string message = failed.Find("error")->Find("message")->string_value();
  EXPECT_NE(message.find("lease ended at"), std::string::npos) << message;
  EXPECT_NE(message.find("without being renewed"), std::string::npos) << message;
  EXPECT_EQ(Show("sw").Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
            "Failed");

  ASSERT_EQ(::kill(worker, SIGCONT), 0);
  EXPECT_TRUE(WaitFor([&] { return PidsWith(marker).empty(); }, 60))
      << "the old worker did not stop its build after losing the lease";
  EXPECT_TRUE(WaitFor([&] { return ::kill(worker, 0) != 0; }, 60)) << "the old worker kept running";
  CliResult after = Cli({"operation", "show", "--id", name});
  Json still = ParseOut(after);
  EXPECT_EQ(still.Find("status")->string_value(), "Failed");
  EXPECT_EQ(still.Find("error")->Find("code")->string_value(), "WorkerLost");
  EXPECT_EQ(Show("sw").Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
            "Failed");
}

}  // namespace
}  // namespace imagesmith::e2e
