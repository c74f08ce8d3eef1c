// Crash safety of publishing, end to end: the imagesmith binary is killed
// with SIGKILL (IMAGESMITH_CRASH_AT, base/crash_point.h) at every named
// point of importing a managed image, publishing a gallery version and
// replicating it to three regions, one point per run. After each kill:
//   - `store fsck` is clean;
//   - nothing is visible half-done: the managed image is absent or
//     Succeeded; the version is absent, or Creating with `latest` resolving
//     to it only in regions whose replica is Completed;
//   - re-running the same command completes the work.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "base/json.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

constexpr int kKilled = 128 + 9;

class CrashE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    env_ = {{"IMAGESMITH_HOME", dir_ + "/home"}};
    // A small real disk: ext4 with a few MiB of incompressible files, so
    // puts and copies have many objects to crash between.
    ASSERT_TRUE(Env::Default()->CreateDirs(dir_ + "/tree/data").ok());
    ProcessOptions o;
    o.argv = {"sh", "-c",
              "set -e; for i in 1 2 3 4 5 6; do head -c 1500000 /dev/urandom > " + dir_ +
                  "/tree/data/f$i; done; mke2fs -q -t ext4 -d " + dir_ + "/tree " + dir_ +
                  "/disk.raw 32M"};
    auto r = Env::Default()->RunProcess(o);
    ASSERT_TRUE(r.ok() && r->success()) << (r.ok() ? r->stderr_data : r.status().ToString());
    ASSERT_EQ(Cli({"group", "create", "-n", "rg", "-l", "eastus"}).exit_code, 0);
    ASSERT_EQ(Cli({"sig", "create", "-g", "rg", "-r", "gal"}).exit_code, 0);
    CliResult d = Cli({"sig", "image-definition", "create", "-g", "rg", "-r", "gal", "-i", "def",
                       "--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux"});
    ASSERT_EQ(d.exit_code, 0) << d.err;
  }
  CliResult Cli(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& extra = {}) {
    std::map<std::string, std::string> env = env_;
    for (const auto& [k, v] : extra) env[k] = v;
    return RunCli(args, dir_, env);
  }
  void ExpectFsckClean(const std::string& after) {
    CliResult f = Cli({"store", "fsck"});
    EXPECT_EQ(f.exit_code, 0) << "after " << after << ": " << f.out << f.err;
  }
  std::vector<std::string> ImportArgs() {
    return {"image",    "create",           "-g",        "rg",    "-n", "img",
            "--source", dir_ + "/disk.raw", "--os-type", "Linux", "-l", "eastus"};
  }
  std::vector<std::string> PublishArgs() {
    return {"sig",
            "image-version",
            "create",
            "-g",
            "rg",
            "-r",
            "gal",
            "-i",
            "def",
            "-e",
            "1.0.0",
            "--managed-image",
            "img",
            "--target-regions",
            "eastus westus2 northeurope"};
  }
  // `latest` of the definition in `region`, or "none".
  std::string Latest(const std::string& region) {
    CliResult r = Cli({"sig", "image-version", "show", "-g", "rg", "-r", "gal", "-i", "def", "-e",
                       "latest", "-l", region});
    if (r.exit_code != 0) return "none";
    return ParseJson(r.out)->Find("name")->string_value();
  }

  std::string dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(CrashE2E, KilledAnywhereInPublishingLeavesNothingHalfDoneAndARerunCompletes) {
  // Points of `image create` (import: convert, put the disk, write the
  // resource) and of `sig image-version create` (record, then per region:
  // copy objects, manifest, marker, mark Completed). "#N": the N-th time.
  const std::vector<std::string> import_points = {
      "gallery.import.converted",    "store.pin.created",          "store.object.temp_written",
      "store.object.temp_written#3", "store.object.before_rename", "store.object.renamed",
      "store.batch.synced",          "store.batch.mid_rename",     "store.disk.mid",
      "store.put.before_manifest",   "store.put.before_marker",    "store.marker.before_rename",
      "gallery.import.stored",       "gallery.image.copied",       "gallery.image.created"};
  const std::vector<std::string> publish_points = {
      "gallery.publish.created",         "gallery.replicate.before_copy",
      "gallery.replicate.before_copy#2", "store.replicate.started",
      "store.replicate.object_copied",   "store.replicate.object_copied#4",
      "store.replicate.committed",       "store.replicate.before_manifest",
      "store.replicate.before_marker",   "store.replicate.before_marker#2",
      "gallery.replicate.after_copy",    "gallery.replicate.after_copy#2",
      "gallery.replicate.marked",        "gallery.replicate.marked#3",
      "gallery.replicate.finished"};
  std::set<std::string> reached;

  for (const std::string& point : import_points) {
    SCOPED_TRACE("import, killed at " + point);
    CliResult c = Cli(ImportArgs(), {{"IMAGESMITH_CRASH_AT", point}});
    if (c.exit_code == kKilled) reached.insert(point.substr(0, point.find('#')));
    ExpectFsckClean(point);
    CliResult show = Cli({"image", "show", "-g", "rg", "-n", "img"});
    if (show.exit_code == 0) {
      EXPECT_EQ(ParseJson(show.out)->Find("properties")->Find("provisioningState")->string_value(),
                "Succeeded");
    } else {
      EXPECT_EQ(show.exit_code, 3) << show.err;  // absent, not half there
      CliResult again = Cli(ImportArgs());
      ASSERT_EQ(again.exit_code, 0) << again.err;
    }
    ExpectFsckClean(point + ", rerun");
    ASSERT_EQ(Cli({"image", "delete", "-g", "rg", "-n", "img"}).exit_code, 0);
    // Start the next point from an empty store, so the put writes again.
    ASSERT_EQ(Cli({"store", "gc"}).exit_code, 0);
  }

  ASSERT_EQ(Cli(ImportArgs()).exit_code, 0);
  for (const std::string& point : publish_points) {
    SCOPED_TRACE("publish, killed at " + point);
    CliResult c = Cli(PublishArgs(), {{"IMAGESMITH_CRASH_AT", point}});
    if (c.exit_code == kKilled) reached.insert(point.substr(0, point.find('#')));
    ExpectFsckClean(point);
    CliResult show = Cli({"sig", "image-version", "show", "-g", "rg", "-r", "gal", "-i", "def",
                          "-e", "1.0.0", "--expand", "ReplicationStatus"});
    if (show.exit_code == 0) {
      Json props = *ParseJson(show.out)->Find("properties");
      const std::string state = props.Find("provisioningState")->string_value();
      bool all_completed = true;
      for (const Json& s : props.Find("replicationStatus")->Find("summary")->array_items()) {
        const bool completed = s.Find("state")->string_value() == "Completed";
        all_completed = all_completed && completed;
        // Usable for `latest` exactly where the replica is complete.
        EXPECT_EQ(Latest(s.Find("region")->string_value()), completed ? "1.0.0" : "none")
            << s.Dump(-1);
      }
      if (!all_completed) {
        EXPECT_EQ(state, "Creating") << props.Dump();
      }
    } else {
      EXPECT_EQ(show.exit_code, 3) << show.err;
    }
    CliResult again = Cli(PublishArgs());
    // A finished version is taken (AlreadyExists); otherwise the rerun completes it.
    if (again.exit_code != 0) {
      EXPECT_EQ(again.exit_code, 4) << again.err;
    }
    CliResult done =
        Cli({"sig", "image-version", "show", "-g", "rg", "-r", "gal", "-i", "def", "-e", "1.0.0"});
    ASSERT_EQ(done.exit_code, 0) << done.err;
    EXPECT_EQ(ParseJson(done.out)->Find("properties")->Find("provisioningState")->string_value(),
              "Succeeded");
    for (const char* region : {"eastus", "westus2", "northeurope"}) {
      EXPECT_EQ(Latest(region), "1.0.0") << region;
    }
    ExpectFsckClean(point + ", rerun");
    ASSERT_EQ(
        Cli({"sig", "image-version", "delete", "-g", "rg", "-r", "gal", "-i", "def", "-e", "1.0.0"})
            .exit_code,
        0);
  }
  // Garbage from the crashes goes at the next gc, and what is live stays.
  CliResult gc = Cli({"store", "gc"});
  EXPECT_EQ(gc.exit_code, 0) << gc.err;
  ExpectFsckClean("gc");
  EXPECT_EQ(Cli({"image", "show", "-g", "rg", "-n", "img"}).exit_code, 0);

  std::printf("crash points reached: %zu of %zu\n", reached.size(),
              import_points.size() + publish_points.size());
  EXPECT_GE(reached.size(), 20u) << "distinct crash points reached: "
                                 << Join(std::vector<std::string>(reached.begin(), reached.end()),
                                         ", ");
}

}  // namespace
}  // namespace imagesmith::e2e
