// Killed builds, end to end (issue 17 item 2): a real `imagesmith build` is
// killed with SIGKILL (IMAGESMITH_CRASH_AT, base/crash_point.h) at one named
// point of the build path per case -- customizing, the disk, validation,
// ingest, publishing and replication to two regions. After each kill:
//   - `latest` resolves, in each region, only to a version whose replica there
//     is Completed (looked at before anything takes the dead run over);
//   - the run shows Failed with the reason, and its durable operation is
//     Failed (WorkerLost when the build process itself died: the next look at
//     the template takes the dead worker's operation over, doc/operations.md);
//   - no gallery version is left Creating (the worker was on this host, so it
//     is taken over at once rather than after its 30 s lease);
//   - no process of the run is left (sandbox steps, qemu, put-tree);
//   - `store fsck` is clean;
//   - a re-run succeeds, publishes the killed run's version number, and
//     `latest` points at it in both regions.
// Points inside `internal put-tree` (the ingest's child process) kill only
// that child: the build then fails the run itself, with the reason.
//
// Each case is its own test (ctest runs them in parallel with -j) on a fresh
// data directory; the Debian base is shared through $IMAGESMITH_TEST_CACHE.
// Only the validation cases boot a VM.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

constexpr int kKilled = 128 + 9;

struct CrashCase {
  const char* point;  // IMAGESMITH_CRASH_AT: NAME or NAME#N
  const char* phase;
  bool validate;  // the template has inVMValidations (boots a VM)
  bool child;     // reached in a child process (internal put-tree), not the build's
};

const CrashCase kCases[] = {
    {"build.step.ran", "customizing", false, false},
    {"build.step.committed", "customizing", false, false},
    {"build.generalize.ran", "customizing", false, false},
    {"build.disk.rootfs_made", "disk", false, false},
    {"build.disk.assembled", "disk", false, false},
    {"build.validate.booted", "validation", true, false},
    {"build.validate.passed", "validation", true, false},
    {"store.put.walked", "ingest", false, true},
    {"store.put.half_files", "ingest", false, true},
    {"build.ingest.put", "ingest", false, true},
    {"build.ingest.stored", "ingest", false, false},
    {"gallery.publish.created", "publish", false, false},
    {"gallery.replicate.before_copy", "replication", false, false},
    {"store.replicate.object_copied#3", "replication", false, false},
    {"store.replicate.before_marker", "replication", false, false},
    {"gallery.replicate.marked", "replication", false, false},
    {"gallery.replicate.after_copy#2", "replication", false, false},
    {"gallery.replicate.finished", "replication", false, false},
};

// Test names and failure messages show the point, not the struct's bytes.
void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.point << " (" << c.phase << ")"; }

Json ParseOut(const CliResult& r) {
  auto j = ParseJson(r.out);
  EXPECT_TRUE(j.ok()) << r.out << r.err;
  return j.ok() ? *j : Json();
}

class BuildCrashE2E : public ::testing::TestWithParam<CrashCase> {
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
  std::string WriteTemplate(bool validate) {
    const std::string definition =
        "/subscriptions/" + sub_ +
        "/resourceGroups/imgs/providers/Microsoft.Compute/galleries/gal/images/deb";
    std::string text = R"({"type": "Microsoft.VirtualMachineImages/imageTemplates",
      "apiVersion": "2022-07-01", "location": "eastus", "properties": {
      "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
                 "sku": "12-gen2", "version": "latest"},
      "customize": [{"type": "Shell", "name": "step", "inline": ["echo hi > /etc/crash-test"]}],)";
    if (validate) {
      text += R"("validate": {"inVMValidations": [{"type": "Shell", "name": "check",
                 "inline": ["test -f /etc/crash-test"]}]},)";
    }
    text += R"("distribute": [{"type": "SharedImage", "runOutputName": "gal",
        "galleryImageId": ")" +
            definition + R"(", "targetRegions": [{"name": "eastus"}, {"name": "westus2"}]}]}})";
    std::string path = dir_ + "/t.json";
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
  // `latest` of the definition in `region`, or "none".
  std::string Latest(const std::string& region) {
    CliResult r = Cli({"sig", "image-version", "show", "-g", "imgs", "-r", "gal", "-i", "deb", "-e",
                       "latest", "-l", region});
    if (r.exit_code != 0) return "none";
    return ParseOut(r).Find("name")->string_value();
  }
  // The replica state of `version` in `region` ("" when it has none).
  std::string ReplicaState(const std::string& version, const std::string& region) {
    CliResult r = Cli({"sig", "image-version", "show", "-g", "imgs", "-r", "gal", "-i", "deb", "-e",
                       version, "--expand", "ReplicationStatus"});
    if (r.exit_code != 0) return "";
    const Json v = ParseOut(r);  // kept: `summary` points into it
    const Json* status = v.Find("properties")->Find("replicationStatus");
    if (status == nullptr || status->Find("summary") == nullptr) return "";
    for (const Json& s : status->Find("summary")->array_items()) {
      // The summary names regions as Azure displays them ("West US 2").
      std::string name = s.Find("region")->string_value();
      name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
      if (EqualsIgnoreCase(name, region)) {
        return s.Find("state")->string_value();
      }
    }
    return "";
  }
  void ExpectFsckClean(const std::string& when) {
    CliResult f = Cli({"store", "fsck"});
    EXPECT_EQ(f.exit_code, 0) << when << ": " << f.out << f.err;
  }
  bool NothingOfTheRunLeft(int seconds) {
    for (int i = 0; i < seconds * 4; ++i) {
      if (PidsWith(home_).empty()) return true;
      Env::Default()->SleepFor(std::chrono::milliseconds(250));
    }
    return PidsWith(home_).empty();
  }

  std::string home_;
  std::string dir_;
  std::string sub_;
  std::map<std::string, std::string> env_;
};

TEST_P(BuildCrashE2E, KilledBuildFailsWithTheReasonLeavesNothingCreatingAndARerunPublishes) {
  const CrashCase& c = GetParam();
  const std::string file = WriteTemplate(c.validate);
  const int64_t t0 = Env::Default()->MonotonicMicros();
  CliResult killed =
      Cli({"build", file, "-g", "imgs", "-n", "t"}, {{"IMAGESMITH_CRASH_AT", c.point}});
  if (c.child) {
    // The build process survives its child and fails the run itself.
    ASSERT_NE(killed.exit_code, 0) << "the crash point was not reached\n" << killed.err;
    ASSERT_NE(killed.exit_code, kKilled) << killed.err;
  } else {
    ASSERT_EQ(killed.exit_code, kKilled) << "the crash point was not reached\n" << killed.err;
  }

  // Before anything takes the dead run over: `latest` only where complete.
  const std::map<std::string, std::string> left = Versions();
  for (const char* region : {"eastus", "westus2"}) {
    const std::string latest = Latest(region);
    if (latest != "none") {
      EXPECT_EQ(ReplicaState(latest, region), "Completed")
          << "latest in " << region << " is " << latest << ", whose replica there is incomplete";
    }
  }
  std::string number;
  for (const auto& [name, state] : left) {
    if (state == "Creating") number = name;
  }

  // The run is Failed with the reason; looking at it takes the dead worker over.
  CliResult shown = Cli({"image-template", "show", "-g", "imgs", "-n", "t"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  Json t = ParseOut(shown);
  const Json* last = t.Find("properties")->Find("lastRunStatus");
  ASSERT_NE(last, nullptr) << t.Dump();
  EXPECT_EQ(last->Find("runState")->string_value(), "Failed") << t.Dump();
  const std::string message = last->Find("message")->string_value();
  if (c.child) {
    // The run says to look at its outputs; the output says what happened.
    EXPECT_NE(message.find("see runOutputs"), std::string::npos) << message;
    CliResult outputs = Cli({"image-template", "show-runs", "-g", "imgs", "-n", "t"});
    ASSERT_EQ(outputs.exit_code, 0) << outputs.err;
    EXPECT_NE(outputs.out.find("ingesting the image into the store failed: killed by signal 9"),
              std::string::npos)
        << outputs.out;
  } else {
    EXPECT_NE(message.find("killed or crashed"), std::string::npos) << message;
    if (!number.empty()) {
      EXPECT_NE(message.find("versions/" + number + " it left Creating was removed"),
                std::string::npos)
          << message;
    }
  }
  CliResult ops = Cli({"operation", "list", "--target", t.Find("id")->string_value()});
  ASSERT_EQ(ops.exit_code, 0) << ops.err;
  Json list = ParseOut(ops);
  ASSERT_EQ(list.array_items().size(), 1u) << list.Dump();
  const Json& op = list.array_items()[0];
  EXPECT_EQ(op.Find("status")->string_value(), "Failed") << op.Dump();
  EXPECT_EQ(op.Find("error")->Find("code")->string_value(), c.child ? "BuildFailed" : "WorkerLost")
      << op.Dump();

  // Nothing stays Creating, nor running; the store is consistent.
  // A kill after the version was finished (gallery.replicate.finished) leaves
  // it Succeeded and complete: the run failed, its output did not.
  std::map<std::string, std::string> after = Versions();
  for (const auto& [name, state] : after) {
    EXPECT_EQ(state, "Succeeded") << "version " << name << " is " << state
                                  << " after its run failed";
  }
  EXPECT_EQ(Latest("eastus"), after.empty() ? "none" : after.rbegin()->first);
  if (!NothingOfTheRunLeft(30)) {
    std::string left_over;
    for (int pid : PidsWith(home_)) {
      std::string cmd = ReadOrEmpty("/proc/" + std::to_string(pid) + "/cmdline");
      for (char& ch : cmd) ch = ch == '\0' ? ' ' : ch;
      left_over += "\n  " + std::to_string(pid) + ": " + cmd.substr(0, 200);
    }
    ADD_FAILURE() << "processes of the killed run are left 30 s after it:" << left_over;
  }
  ExpectFsckClean("after the kill at " + std::string(c.point));

  // A re-run publishes, with the killed run's number if it had taken one.
  CliResult again = Cli({"image-template", "run", "-g", "imgs", "-n", "t"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  std::map<std::string, std::string> now = Versions();
  ASSERT_EQ(now.size(), after.size() + 1);
  std::string published;
  for (const auto& [name, state] : now) {
    EXPECT_EQ(state, "Succeeded") << name;
    if (after.count(name) == 0) published = name;
  }
  if (!number.empty()) {
    EXPECT_EQ(published, number) << "the re-run skipped the killed run's version number";
  }
  for (const char* region : {"eastus", "westus2"}) {
    EXPECT_EQ(Latest(region), published) << region;
  }
  ExpectFsckClean("after the re-run");
  CliResult gc = Cli({"store", "gc"});
  EXPECT_EQ(gc.exit_code, 0) << gc.err;
  ExpectFsckClean("after gc");
  std::printf("%s (%s): %.1f s\n", c.point, c.phase,
              static_cast<double>(Env::Default()->MonotonicMicros() - t0) / 1e6);
}

std::string CaseName(const ::testing::TestParamInfo<CrashCase>& info) {
  std::string name = info.param.point;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Points, BuildCrashE2E, ::testing::ValuesIn(kCases), CaseName);

}  // namespace
}  // namespace imagesmith::e2e
