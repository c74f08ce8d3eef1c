// End-to-end: `imagesmith backup create` while a real build runs and
// publishes, then `backup restore` of every backup taken into a fresh data
// directory: store fsck is clean, nothing comes back half-published, and
// every version that was Succeeded at backup time exports the same bytes as
// the live data directory. Plus the CLI's refusals. (doc/backup.md)
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "base/json.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

Json ParseOut(const CliResult& r) {
  auto j = ParseJson(r.out);
  EXPECT_TRUE(j.ok()) << r.out << r.err;
  return j.ok() ? *j : Json();
}

std::map<std::string, std::string> Home(const std::string& home) {
  return {{"IMAGESMITH_HOME", home}};
}

// SHA-256 of a file, streamed (exports are large).
std::string FileDigest(const std::string& path) {
  ProcessOptions o;
  o.argv = {"sha256sum", path};
  auto r = Env::Default()->RunProcess(o);
  EXPECT_TRUE(r.ok() && r->success()) << path;
  return r.ok() ? r->stdout_data.substr(0, 64) : "";
}

class BackupE2E : public ::testing::Test {
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
  CliResult Cli(const std::vector<std::string>& args) { return RunCli(args, dir_, env_); }

  // A Gen2 Debian template with one Shell step that publishes the next 1.x
  // version to eastus and westus2.
  std::string WriteTemplate(const std::string& name, const std::string& inline_cmd) {
    std::string text =
        R"({"type": "Microsoft.VirtualMachineImages/imageTemplates",
      "apiVersion": "2022-07-01", "location": "eastus", "properties": {
      "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
                 "sku": "12-gen2", "version": "latest"},
      "customize": [{"type": "Shell", "name": "step", "inline": [")" +
        inline_cmd + R"("]}],
      "distribute": [{"type": "SharedImage", "runOutputName": "gal", "galleryImageId":
        "/subscriptions/)" +
        sub_ +
        R"(/resourceGroups/imgs/providers/Microsoft.Compute/galleries/gal/images/deb",
        "versioning": {"scheme": "Latest", "major": 1},
        "targetRegions": [{"name": "eastus"}, {"name": "westus2"}]}]}})";
    const std::string path = dir_ + "/" + name + ".json";
    EXPECT_TRUE(Env::Default()->WriteFileAtomic(path, text).ok());
    return path;
  }

  // The versions of gal/deb in the data directory `home`: name -> state.
  static std::map<std::string, std::string> Versions(const std::string& home) {
    CliResult r = RunCli({"sig", "image-version", "list", "-g", "imgs", "-r", "gal", "-i", "deb"},
                         "", Home(home));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::string> out;
    const Json list = ParseOut(r);
    if (!list.is_array()) return out;
    for (const Json& v : list.array_items()) {
      out[v.Find("name")->string_value()] =
          v.Find("properties")->Find("provisioningState")->string_value();
    }
    return out;
  }

  // The digest of version `v` exported as qcow2 from the data directory `home`.
  std::string Export(const std::string& home, const std::string& v) {
    const std::string out = MakeTempDir() + "/v.qcow2";
    CliResult r = RunCli({"sig", "image-version", "export", "-g", "imgs", "-r", "gal", "-i", "deb",
                          "-e", v, "-f", out, "--format", "qcow2"},
                         "", Home(home));
    EXPECT_EQ(r.exit_code, 0) << home << " " << v << ": " << r.err;
    std::string d = r.exit_code == 0 ? FileDigest(out) : "";
    ::unlink(out.c_str());
    return d;
  }

  std::map<std::string, std::string> env_;
  std::string home_, dir_, sub_;
};

TEST_F(BackupE2E, BackupsTakenDuringABuildRestoreCleanWithTheSameBytes) {
  CliResult v1 = Cli(
      {"build", WriteTemplate("v1", "echo one > /etc/imagesmith-one"), "-g", "imgs", "-n", "v1"});
  ASSERT_EQ(v1.exit_code, 0) << v1.err;

  // The second build runs in the background; backups are taken from the
  // moment its step runs until it has published, each into its own DIR.
  const std::string v2 = WriteTemplate(
      "v2", "sh -c 'sleep 4' imagesmith-backup-marker; echo two > /etc/imagesmith-two");
  std::atomic<bool> done{false};
  CliResult built;
  std::thread build([&] {
    built = Cli({"build", v2, "-g", "imgs", "-n", "v2"});
    done = true;
  });
  bool step_ran = false;
  for (int i = 0; i < 1200 && !step_ran && !done; ++i) {
    step_ran = !PidsWith("imagesmith-backup-marker").empty();
    if (!step_ran) Env::Default()->SleepFor(std::chrono::milliseconds(250));
  }
  std::vector<std::string> backups;
  std::vector<Json> results;
  while (step_ran && !done && backups.size() < 8) {
    const std::string bk = dir_ + "/bk" + std::to_string(backups.size());
    CliResult b = Cli({"backup", "create", bk});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    if (b.exit_code != 0) break;
    backups.push_back(bk);
    results.push_back(ParseOut(b));
    Env::Default()->SleepFor(std::chrono::milliseconds(1500));
  }
  build.join();
  ASSERT_TRUE(step_ran) << "the build's step never ran: " << built.err;
  ASSERT_EQ(built.exit_code, 0) << built.err;
  ASSERT_FALSE(backups.empty());
  // The first backup was taken while the run was in its step: the backup
  // records that run as interrupted.
  bool run_interrupted = false;
  for (const Json& id : results[0].Find("interrupted")->array_items()) {
    run_interrupted |= EndsWith(id.string_value(), "/imageTemplates/v2");
  }
  EXPECT_TRUE(run_interrupted) << results[0].Dump();

  std::map<std::string, std::string> live = Versions(home_);
  ASSERT_EQ(live["1.0.0"], "Succeeded");
  ASSERT_EQ(live["1.0.1"], "Succeeded");
  std::map<std::string, std::string> live_digest;
  for (const auto& [v, state] : live) live_digest[v] = Export(home_, v);

  int versions_checked = 0, in_flight = 0;
  for (size_t i = 0; i < backups.size(); ++i) {
    SCOPED_TRACE("backup " + std::to_string(i) + ": " + results[i].Dump(-1));
    const std::string home = MakeTempDir() + "/restored";
    CliResult r = RunCli({"backup", "restore", backups[i]}, "", Home(home));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    CliResult fsck = RunCli({"store", "fsck"}, "", Home(home));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
    EXPECT_TRUE(ParseOut(fsck).Find("ok")->bool_value());
    // Nothing comes back looking as if it were still being published or run.
    for (const auto& [v, state] : Versions(home)) {
      EXPECT_TRUE(state == "Succeeded" || state == "Failed") << v << " is " << state;
      if (state == "Failed") ++in_flight;
      if (state != "Succeeded") continue;
      EXPECT_EQ(Export(home, v), live_digest[v]) << "version " << v;
      ++versions_checked;
    }
    CliResult t = RunCli({"image-template", "show", "-g", "imgs", "-n", "v2"}, "", Home(home));
    if (t.exit_code == 0) {
      std::string state =
          ParseOut(t).Find("properties")->Find("lastRunStatus")->Find("runState")->string_value();
      EXPECT_NE(state, "Running");
    }
    // A store gc in the restored directory finds nothing to remove: the
    // backup holds exactly what its resources name.
    CliResult gc = RunCli({"store", "gc"}, "", Home(home));
    EXPECT_EQ(gc.exit_code, 0) << gc.err;
    EXPECT_EQ(ParseOut(gc).Find("objectsRemoved")->AsInt64(), 0);
  }
  EXPECT_GE(versions_checked, static_cast<int>(backups.size()));  // 1.0.0 in each at least
  std::cout << "backups during the build: " << backups.size()
            << ", Succeeded versions exported and compared: " << versions_checked
            << ", versions restored as Failed (in flight): " << in_flight << "\n";

  // Incremental: backing up into the first DIR again copies only what the
  // build added since (1.0.1), and once more copies nothing.
  CliResult again = Cli({"backup", "create", backups[0]});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  CliResult third = Cli({"backup", "create", backups[0]});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(ParseOut(third).Find("copiedObjects")->AsInt64(), 0) << third.out;
  EXPECT_GT(ParseOut(third).Find("presentObjects")->AsInt64(), 0) << third.out;
}

TEST(BackupCliTest, RefusalsSayWhatIsWrongAndWhatToDo) {
  const std::string dir = MakeTempDir();
  const auto live = Home(dir + "/live");
  ASSERT_EQ(RunCli({"group", "create", "-n", "g", "-l", "eastus"}, "", live).exit_code, 0);
  CliResult b = RunCli({"backup", "create", dir + "/bk"}, "", live);
  ASSERT_EQ(b.exit_code, 0) << b.err;

  // Into the non-empty data directory it came from: exit 4, nothing touched.
  CliResult busy = RunCli({"backup", "restore", dir + "/bk"}, "", live);
  EXPECT_EQ(busy.exit_code, 4);
  EXPECT_NE(busy.err.find("is not empty (it holds meta.db"), std::string::npos) << busy.err;
  EXPECT_NE(busy.err.find("move this one aside"), std::string::npos) << busy.err;

  // Not a backup.
  CliResult none = RunCli({"backup", "restore", dir + "/nothing"}, "", Home(dir + "/r1"));
  EXPECT_EQ(none.exit_code, 3) << none.err;
  EXPECT_FALSE(Env::Default()->FileExists(dir + "/r1"));
  CliResult plain = RunCli({"backup", "restore", dir}, "", Home(dir + "/r1"));
  EXPECT_EQ(plain.exit_code, 4) << plain.err;
  EXPECT_NE(plain.err.find("no backup.json"), std::string::npos) << plain.err;

  // A damaged database file: exit 70 naming it, the target left absent.
  Json made = ParseOut(b);
  const std::string db = dir + "/bk/" + made.Find("metaFile")->string_value();
  std::string bytes = ReadOrEmpty(db);
  ASSERT_FALSE(bytes.empty());
  bytes[100] ^= 0x7f;
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(db, bytes).ok());
  CliResult bad = RunCli({"backup", "restore", dir + "/bk"}, "", Home(dir + "/r2"));
  EXPECT_EQ(bad.exit_code, 70) << bad.err;
  EXPECT_NE(bad.err.find(db), std::string::npos) << bad.err;
  EXPECT_FALSE(Env::Default()->FileExists(dir + "/r2"));

  // A backup into a directory that holds something else is refused.
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(dir + "/other/notes.txt", "mine").ok() ||
              (Env::Default()->CreateDirs(dir + "/other").ok() &&
               Env::Default()->WriteFileAtomic(dir + "/other/notes.txt", "mine").ok()));
  CliResult foreign = RunCli({"backup", "create", dir + "/other"}, "", live);
  EXPECT_EQ(foreign.exit_code, 4) << foreign.err;
  EXPECT_NE(foreign.err.find("notes.txt"), std::string::npos) << foreign.err;
}

// A version killed half-way through its publish is in flight at backup
// time: it comes back Failed (not latest, nothing pointing at missing
// objects), and `sig image-version update` in the restored directory
// finishes it from the images the backup kept.
TEST(BackupCliTest, VersionCreatingAtBackupTimeComesBackFailedAndUpdateFinishesIt) {
  const std::string dir = MakeTempDir();
  const auto live = Home(dir + "/live");
  auto cli = [&](const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env) { return RunCli(args, "", env); };
  ASSERT_EQ(cli({"group", "create", "-n", "images", "-l", "eastus"}, live).exit_code, 0);
  ASSERT_EQ(cli({"sig", "create", "-g", "images", "-r", "gal"}, live).exit_code, 0);
  ASSERT_EQ(cli({"sig", "image-definition", "create", "-g", "images", "-r", "gal", "-i", "deb",
                 "--publisher", "me", "--offer", "debian", "--sku", "12", "--os-type", "Linux",
                 "--hyper-v-generation", "V2"},
                live)
                .exit_code,
            0);
  ProcessOptions mk;
  mk.argv = {"truncate", "-s", "64M", dir + "/disk.raw"};
  ASSERT_TRUE(Env::Default()->RunProcess(mk)->success());
  mk.argv = {"mkfs.ext4", "-q", "-F", dir + "/disk.raw"};
  ASSERT_TRUE(Env::Default()->RunProcess(mk)->success());
  CliResult img = cli({"image", "create", "-g", "images", "-n", "img", "--source",
                       dir + "/disk.raw", "--os-type", "Linux", "--hyper-v-generation", "V2"},
                      live);
  ASSERT_EQ(img.exit_code, 0) << img.err;
  auto version = [](const std::string& v) {
    return std::vector<std::string>{"-g", "images", "-r", "gal", "-i", "deb", "-e", v};
  };
  auto with = [](std::vector<std::string> head, const std::vector<std::string>& tail) {
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  CliResult v09 = cli(with(with({"sig", "image-version", "create"}, version("0.9.0")),
                           {"--managed-image", "img", "--target-regions", "eastus", "westus2"}),
                      live);
  ASSERT_EQ(v09.exit_code, 0) << v09.err;
  // 1.0.0: killed after the home region's copy, before it is marked.
  auto crash = live;
  crash["IMAGESMITH_CRASH_AT"] = "gallery.replicate.after_copy";
  CliResult killed = cli(with(with({"sig", "image-version", "create"}, version("1.0.0")),
                              {"--managed-image", "img", "--target-regions", "eastus", "westus2"}),
                         crash);
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.err;

  CliResult b = cli({"backup", "create", dir + "/bk"}, live);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  Json made = ParseOut(b);
  // The version, and the replication operation its killed worker held
  // (replication is a durable operation: doc/operations.md).
  ASSERT_EQ(made.Find("interrupted")->array_items().size(), 2u) << b.out;
  EXPECT_TRUE(
      EndsWith(made.Find("interrupted")->array_items()[0].string_value(), "/versions/1.0.0"));
  EXPECT_TRUE(StartsWith(made.Find("interrupted")->array_items()[1].string_value(), "operation "))
      << b.out;

  const auto restored = Home(dir + "/restored");
  CliResult r = cli({"backup", "restore", dir + "/bk"}, restored);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CliResult fsck = cli({"store", "fsck"}, restored);
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out;
  CliResult shown = cli(with(with({"sig", "image-version", "show"}, version("1.0.0")),
                             {"--expand", "ReplicationStatus"}),
                        restored);
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  Json v = ParseOut(shown);
  EXPECT_EQ(v.Find("properties")->Find("provisioningState")->string_value(), "Failed");
  EXPECT_NE(shown.out.find("sig image-version update"), std::string::npos) << shown.out;
  CliResult latest =
      cli(with({"sig", "image-version", "show", "-l", "eastus"}, version("latest")), restored);
  ASSERT_EQ(latest.exit_code, 0) << latest.err;
  EXPECT_EQ(ParseOut(latest).Find("name")->string_value(), "0.9.0");

  // Finishing it in the restored directory needs nothing from the old one.
  CliResult update = cli(with({"sig", "image-version", "update"}, version("1.0.0")), restored);
  ASSERT_EQ(update.exit_code, 0) << update.err;
  shown = cli(with({"sig", "image-version", "show"}, version("1.0.0")), restored);
  EXPECT_EQ(ParseOut(shown).Find("properties")->Find("provisioningState")->string_value(),
            "Succeeded");
  // Both versions hold the same managed image: the same bytes come out.
  auto export_digest = [&](const std::string& name, const std::map<std::string, std::string>& env) {
    // qcow2: a VHD's footer carries a timestamp and a random unique ID.
    const std::string out = MakeTempDir() + "/v.qcow2";
    CliResult e = cli(with(with({"sig", "image-version", "export"}, version(name)),
                           {"-f", out, "--format", "qcow2"}),
                      env);
    EXPECT_EQ(e.exit_code, 0) << e.err;
    return e.exit_code == 0 ? FileDigest(out) : "";
  };
  const std::string live09 = export_digest("0.9.0", live);
  EXPECT_EQ(export_digest("0.9.0", restored), live09);
  EXPECT_EQ(export_digest("1.0.0", restored), live09);
  fsck = cli({"store", "fsck"}, restored);
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out;
}

}  // namespace
}  // namespace imagesmith::e2e
