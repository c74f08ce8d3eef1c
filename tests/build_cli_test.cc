// End-to-end tests of 'imagesmith build' and 'image-template': real Debian
// base images (mmdebstrap), real sandboxed customizers, real disks, real
// qemu boots. Each test has its own data directory; only the catalog of base
// images is shared, through $IMAGESMITH_TEST_CACHE, which setup.sh makes
// fresh for every test run.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "base/json.h"
#include "base/sha256.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

void Write(const std::string& path, const std::string& text) {
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, text).ok()) << path;
}

// Processes whose command line contains `marker`.
int ProcessesWith(const std::string& marker) { return static_cast<int>(PidsWith(marker).size()); }

// Waits (up to 5 minutes: the base image may be built first) until a
// process with `marker` runs.
bool WaitForProcess(const std::string& marker) {
  for (int i = 0; i < 1200; ++i) {
    if (ProcessesWith(marker) > 0) return true;
    Env::Default()->SleepFor(std::chrono::milliseconds(250));
  }
  return false;
}

class BuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = MakeTempDir();
    env_ = DataDirWithSharedCatalog(&home_);
  }

  // A template for the Debian 12 base with the given customize array.
  std::string Template(const std::string& customize, const std::string& extra = "",
                       const std::string& sku = "12") {
    return R"({"type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2022-07-01",
  "location": "eastus", "properties": {
    "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": ")" +
           sku + R"(", "version": "latest"},
    "customize": )" +
           customize + extra + "}}";
  }

  CliResult Build(const std::string& file, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"build", file};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args, work_, env_);
  }

  Json Show(const std::string& name) {
    CliResult r = RunCli({"image-template", "show", "-g", "imagesmith", "-n", name}, "", env_);
    auto j = ParseJson(r.out);
    return j.ok() ? *j : Json();
  }

  std::string Log(const std::string& name) {
    return RunCli({"image-template", "logs", "-g", "imagesmith", "-n", name}, "", env_).out;
  }

  // Nothing of a run may outlive it: mounts, loop devices, processes.
  void ExpectNothingLeftBehind(const std::string& marker) {
    std::string mounts = ReadOrEmpty("/proc/self/mountinfo");
    EXPECT_EQ(mounts.find(home_), std::string::npos) << "a mount is left under " << home_;
    ProcessOptions o;
    o.argv = {"losetup", "-a"};
    auto loops = Env::Default()->RunProcess(o);
    ASSERT_TRUE(loops.ok());
    EXPECT_EQ(loops->stdout_data.find(home_), std::string::npos) << loops->stdout_data;
    bool gone = false;
    for (int i = 0; i < 50 && !gone; ++i) {
      gone = ProcessesWith(marker) == 0;
      if (!gone) Env::Default()->SleepFor(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(gone) << "processes with " << marker << " are still running";
  }

  std::map<std::string, std::string> env_;
  std::string home_;
  std::string work_;
};

TEST_F(BuildTest, FailingScriptFailsTheRunNamingTheStepWithItsOutput) {
  Write(work_ + "/fail.json",
        Template(R"([{"type": "Shell", "name": "ok", "inline": ["echo first-step-ran"]},
                     {"type": "Shell", "name": "breaks", "inline": ["echo output-before-failure", "exit 3"]},
                     {"type": "Shell", "name": "never", "inline": ["echo must-not-run"]}])"));
  CliResult r = Build("fail.json");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("customize[1] 'breaks' (Shell) failed: exit status 3"), std::string::npos)
      << r.err;
  std::string log = Log("fail");
  EXPECT_NE(log.find("first-step-ran"), std::string::npos);
  EXPECT_NE(log.find("[customize[1]:out] output-before-failure"), std::string::npos) << log;
  EXPECT_EQ(log.find("must-not-run\n"), std::string::npos);
  Json t = Show("fail");
  const Json* status = t.Find("properties")->Find("lastRunStatus");
  EXPECT_EQ(status->Find("runState")->string_value(), "Failed");
  EXPECT_EQ(status->Find("runSubState")->string_value(), "Customizing");
  // cleanup (the default) removes the workspace.
  EXPECT_EQ(t.Find("properties")->Find("lastRun")->Find("workspace"), nullptr);
}

TEST_F(BuildTest, AbortKeepsTheWorkspaceAndSaysWhere) {
  Write(work_ + "/abort.json",
        Template(R"([{"type": "Shell", "inline": ["echo kept > /root/evidence", "false"]}])",
                 R"(, "errorHandling": {"onCustomizerError": "abort"})"));
  CliResult r = Build("abort.json");
  EXPECT_EQ(r.exit_code, 1);
  Json t = Show("abort");
  const Json* ws = t.Find("properties")->Find("lastRun")->Find("workspace");
  ASSERT_NE(ws, nullptr) << t.Dump();
  EXPECT_NE(r.err.find("the workspace is kept for inspection: " + ws->string_value()),
            std::string::npos)
      << r.err;
  EXPECT_EQ(ReadOrEmpty(ws->string_value() + "/step-0/upper/root/evidence"), "kept\n");
}

TEST_F(BuildTest, ChecksumMismatchStopsBeforeAnythingRunsAndShowsBothDigests) {
  Write(work_ + "/script.sh", "#!/bin/sh\necho script-ran\n");
  std::string wrong(64, 'a');
  Write(work_ + "/sum.json",
        Template(R"([{"type": "Shell", "scriptUri": "script.sh", "sha256Checksum": ")" + wrong +
                 R"("}])"));
  CliResult r = Build("sum.json");
  EXPECT_EQ(r.exit_code, 1);
  std::string actual = Sha256Of("#!/bin/sh\necho script-ran\n").ToHex();
  EXPECT_NE(r.err.find("expected " + wrong + ", got " + actual), std::string::npos) << r.err;
  EXPECT_EQ(Log("sum").find("script-ran"), std::string::npos);
}

TEST_F(BuildTest, WindowsCustomizerIsRejectedBeforeTheBuildStarts) {
  Write(work_ + "/win.json", Template(R"([{"type": "Shell", "inline": ["true"]},
                     {"type": "PowerShell", "name": "setup", "inline": ["Get-Date"]}])"));
  CliResult r = Build("win.json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("customize[1] 'setup' (PowerShell): PowerShell customizers run only on "
                       "Windows images"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(Env::Default()->FileExists(home_ + "/runs"));
}

TEST_F(BuildTest, SmallerOsDiskThanTheSourceIsAnError) {
  Write(work_ + "/small.json", Template(R"([])", R"(, "vmProfile": {"osDiskSizeGB": 1})"));
  CliResult r = Build("small.json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("osDiskSizeGB is 1 GiB, smaller than the source image's disk"),
            std::string::npos)
      << r.err;
}

TEST_F(BuildTest, FileDestinationFolderMustExist) {
  Write(work_ + "/f.txt", "x");
  Write(
      work_ + "/file.json",
      Template(R"([{"type": "File", "sourceUri": "f.txt", "destination": "/no/such/dir/f.txt"}])"));
  CliResult r = Build("file.json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(Log("file").find("the destination folder /no/such/dir does not exist"),
            std::string::npos);
}

TEST_F(BuildTest, RebuildAfterEditingTheLastStepHitsTheCacheForEveryStepBefore) {
  Write(work_ + "/script.sh", "#!/bin/sh\necho v1 > /etc/from-script\n");
  auto make = [&](const std::string& last) {
    std::string sum = Sha256Of(ReadOrEmpty(work_ + "/script.sh")).ToHex();
    Write(work_ + "/cache.json",
          Template(R"([{"type": "Shell", "name": "a", "inline": ["date +%s%N > /etc/a"]},
                       {"type": "Shell", "name": "s", "scriptUri": "script.sh", "sha256Checksum": ")" +
                   sum + R"("},
                       {"type": "Shell", "name": "last", "inline": [")" +
                   last + R"("]}])"));
  };
  make("echo one > /tmp/t");
  CliResult first = Build("cache.json");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  make("echo two > /tmp/t");
  CliResult second = Build("cache.json");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  std::string log = Log("cache");
  EXPECT_NE(log.find("cache hit for customize[0] 'a'"), std::string::npos) << log;
  EXPECT_NE(log.find("cache hit for customize[1] 's'"), std::string::npos);
  EXPECT_NE(log.find("cache miss for customize[2] 'last' (Shell): definition changed"),
            std::string::npos);
  Json t = Show("cache");
  EXPECT_EQ(t.Find("properties")->Find("lastRun")->Find("cacheHits")->AsInt64(), 2);

  // Changing the script's content (and its checksum) misses from that step on.
  Write(work_ + "/script.sh", "#!/bin/sh\necho v2 > /etc/from-script\n");
  make("echo two > /tmp/t");
  ASSERT_EQ(Build("cache.json").exit_code, 0);
  log = Log("cache");
  EXPECT_NE(log.find("cache hit for customize[0] 'a'"), std::string::npos);
  EXPECT_NE(log.find("cache miss for customize[1] 's' (Shell): scriptUri content changed"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("cache miss for customize[2] 'last' (Shell): parent changed"),
            std::string::npos);

  // --no-cache runs everything.
  ASSERT_EQ(Build("cache.json", {"--no-cache"}).exit_code, 0);
  log = Log("cache");
  EXPECT_EQ(log.find("cache hit"), std::string::npos);
  EXPECT_NE(log.find("cache miss for customize[0] 'a' (Shell): the cache is off (--no-cache)"),
            std::string::npos);
}

// Every customizer is a layer of the tree it runs on: 200 of them (more than
// one page of overlay options if the layers were named by their paths)
// build, the image has what each step wrote, and a rebuild takes all 200
// from the step cache.
TEST_F(BuildTest, TemplateWithTwoHundredShellStepsBuildsAndRebuildsFromTheCache) {
  std::string steps = "[";
  for (int i = 0; i < 200; ++i) {
    if (i > 0) steps += ",";
    steps += R"({"type": "Shell", "name": "step)" + std::to_string(i) + R"(", "inline": ["echo )" +
             std::to_string(i) + " > /etc/step-" + std::to_string(i) + R"("]})";
  }
  Write(work_ + "/many.json", Template(steps + "]"));
  CliResult first = Build("many.json");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto j = ParseJson(first.out);
  ASSERT_TRUE(j.ok()) << first.out;
  std::string disk = j->Find("properties")->Find("lastRun")->Find("disk")->string_value();
  for (int i : {0, 117, 199}) {
    ProcessOptions o;
    o.argv = {"debugfs", "-R", "cat /etc/step-" + std::to_string(i),
              disk + "?offset=" + std::to_string(135168 * 512)};
    auto r = Env::Default()->RunProcess(o);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stdout_data, std::to_string(i) + "\n") << "step " << i << ": " << r->stderr_data;
  }
  CliResult second = Build("many.json");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(Log("many").find("customization done: 200 cached, 0 run"), std::string::npos);
}

TEST_F(BuildTest, CancelFromAnotherShellStopsWithinSecondsAndLeavesNothing) {
  Write(
      work_ + "/slow.json",
      Template(R"([{"type": "Shell", "inline": ["sh -c 'sleep 600' imagesmith-cancel-marker"]}])"));
  CliResult r;
  std::thread build([&] { r = Build("slow.json"); });
  bool running = WaitForProcess("imagesmith-cancel-marker");
  int64_t asked = Env::Default()->MonotonicMicros();
  CliResult c = RunCli({"image-template", "cancel", "-g", "imagesmith", "-n", "slow"}, "", env_);
  build.join();
  ASSERT_TRUE(running) << "the step never started";
  EXPECT_EQ(c.exit_code, 0) << c.err;
  double seconds = static_cast<double>(Env::Default()->MonotonicMicros() - asked) / 1e6;
  EXPECT_LT(seconds, 10.0);
  EXPECT_EQ(r.exit_code, 6) << r.err;
  Json t = Show("slow");
  EXPECT_EQ(t.Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
            "Canceled");
  ExpectNothingLeftBehind("imagesmith-cancel-marker");
}

// kill -9 of the build: what it ran dies with it, the template says the run
// Failed and why (not "Running" forever), and the next run may start and
// clears the killed run's workspace.
TEST_F(BuildTest, KilledBuildIsReportedFailedAndTheNextRunCanStart) {
  Write(work_ + "/killed.json",
        Template(R"([{"type": "Shell", "inline": ["sh -c 'sleep 600' imagesmith-kill-marker"]}])"));
  CliResult r;
  std::thread build([&] { r = Build("killed.json"); });
  bool running = WaitForProcess("imagesmith-kill-marker");
  std::vector<int> builders = PidsWith("killed.json");
  for (int pid : builders) ::kill(pid, SIGKILL);
  build.join();
  ASSERT_TRUE(running) << "the step never started";
  ASSERT_FALSE(builders.empty());
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  ExpectNothingLeftBehind("imagesmith-kill-marker");

  Json t = Show("killed");
  const Json* last = t.Find("properties")->Find("lastRunStatus");
  EXPECT_EQ(last->Find("runState")->string_value(), "Failed") << t.Dump();
  EXPECT_NE(last->Find("message")->string_value().find("killed or crashed"), std::string::npos)
      << t.Dump();
  CliResult table = RunCli({"image-template", "list", "-g", "imagesmith", "-o", "table"}, "", env_);
  EXPECT_NE(table.out.find("Failed"), std::string::npos) << table.out;
  CliResult c = RunCli({"image-template", "cancel", "-g", "imagesmith", "-n", "killed"}, "", env_);
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("has no run in progress"), std::string::npos) << c.err;
  std::string runs = home_ + "/runs";

  // The next run starts (no "already running") and removes the killed run's
  // work/ but keeps its log.
  Write(work_ + "/killed.json", Template(R"([{"type": "Shell", "inline": ["true"]}])"));
  CliResult again = Build("killed.json");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  ProcessOptions find;
  find.argv = {"find", runs, "-maxdepth", "3", "-name", "work"};
  auto left = Env::Default()->RunProcess(find);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->stdout_data, "") << "a killed run's workspace was left behind";
  find.argv = {"find", runs, "-maxdepth", "3", "-name", "customization.log"};
  auto logs = Env::Default()->RunProcess(find);
  ASSERT_TRUE(logs.ok());
  EXPECT_EQ(std::count(logs->stdout_data.begin(), logs->stdout_data.end(), '\n'), 2)
      << logs->stdout_data;
}

TEST_F(BuildTest, BuildTimeoutStopsTheRunAndLeavesNothing) {
  // 6 minutes is the shortest timeout Image Builder accepts.
  Write(
      work_ + "/timeout.json",
      Template(R"([{"type": "Shell", "inline": ["sh -c 'sleep 3600' imagesmith-timeout-marker"]}])",
               R"(, "buildTimeoutInMinutes": 6)"));
  int64_t start = Env::Default()->MonotonicMicros();
  CliResult r = Build("timeout.json");
  double seconds = static_cast<double>(Env::Default()->MonotonicMicros() - start) / 1e6;
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("buildTimeoutInMinutes (6 minutes) was reached"), std::string::npos)
      << r.err;
  EXPECT_LT(seconds, 6 * 60 + 60);
  Json t = Show("timeout");
  EXPECT_EQ(t.Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
            "Failed");
  ExpectNothingLeftBehind("imagesmith-timeout-marker");
}

}  // namespace
}  // namespace imagesmith::e2e
