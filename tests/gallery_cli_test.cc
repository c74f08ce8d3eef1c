// End-to-end tests of 'imagesmith sig ...' and 'imagesmith image ...': the
// az-style gallery flows on a real data directory with a real store.
#include <gtest/gtest.h>

#include "base/json.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

class GalleryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    env_ = {{"IMAGESMITH_HOME", dir_ + "/data"}};
  }
  CliResult Run(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& extra = {}) {
    auto env = env_;
    env.insert(extra.begin(), extra.end());
    return RunCli(args, "", env);
  }
  Json RunJson(const std::vector<std::string>& args) {
    CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = ParseJson(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }
  // Group, gallery and a Gen2 Linux definition, plus a managed image made
  // from a real ext4 disk converted to qcow2.
  void MakeBasics() {
    ASSERT_EQ(Run({"group", "create", "-n", "images", "-l", "eastus"}).exit_code, 0);
    ASSERT_EQ(Run({"sig", "create", "-g", "images", "-r", "myGallery"}).exit_code, 0);
    CliResult def = Run({"sig", "image-definition", "create", "-g", "images", "-r", "myGallery",
                         "-i", "debian12", "--publisher", "Contoso", "--offer", "Debian", "--sku",
                         "12", "--os-type", "Linux", "--hyper-v-generation", "V2"});
    ASSERT_EQ(def.exit_code, 0) << def.err;
    std::string raw = dir_ + "/disk.raw";
    ProcessOptions mk;
    mk.argv = {"truncate", "-s", "64M", raw};
    ASSERT_TRUE(Env::Default()->RunProcess(mk)->success());
    mk.argv = {"mkfs.ext4", "-q", "-F", raw};
    ASSERT_TRUE(Env::Default()->RunProcess(mk)->success());
    CliResult conv = Run({"disk", "convert", "-f", "qcow2", raw, dir_ + "/disk.qcow2"});
    ASSERT_EQ(conv.exit_code, 0) << conv.err;
    CliResult img = Run({"image", "create", "-g", "images", "-n", "deb-img", "--source",
                         dir_ + "/disk.qcow2", "--os-type", "Linux", "--hyper-v-generation", "V2"});
    ASSERT_EQ(img.exit_code, 0) << img.err;
  }
  std::vector<std::string> Version(const std::string& v) {
    return {"-g", "images", "-r", "myGallery", "-i", "debian12", "-e", v};
  }
  std::vector<std::string> Cmd(std::vector<std::string> head,
                               const std::vector<std::string>& tail) {
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  }
  std::string Latest(const std::string& region) {
    CliResult r = Run(Cmd({"sig", "image-version", "show", "-l", region}, Version("latest")));
    if (r.exit_code != 0) return "none (exit " + std::to_string(r.exit_code) + ")";
    return ParseJson(r.out)->Find("name")->string_value();
  }
  static std::string State(const Json& v, size_t i) {
    return v.Find("properties")
        ->Find("replicationStatus")
        ->Find("summary")
        ->array_items()[i]
        .Find("state")
        ->string_value();
  }

  std::string dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(GalleryCliTest, ManagedImageToVersionInTwoRegions) {
  MakeBasics();
  Json img = RunJson({"image", "show", "-g", "images", "-n", "deb-img"});
  EXPECT_EQ(img.Find("type")->string_value(), "Microsoft.Compute/images");
  const Json* os_disk = img.Find("properties")->Find("storageProfile")->Find("osDisk");
  EXPECT_EQ(os_disk->Find("osType")->string_value(), "Linux");
  EXPECT_EQ(os_disk->Find("osState")->string_value(), "Generalized");
  EXPECT_EQ(img.Find("properties")->Find("hyperVGeneration")->string_value(), "V2");
  EXPECT_EQ(img.Find("properties")->Find("imagesmith")->Find("storeRefs")->array_items().size(),
            1u);

  CliResult create =
      Run(Cmd({"sig", "image-version", "create"},
              Cmd(Version("1.0.0"), {"--managed-image", "deb-img", "--target-regions",
                                     "eastus=2 westus2", "--replica-count", "3"})));
  ASSERT_EQ(create.exit_code, 0) << create.err;
  Json v = *ParseJson(create.out);
  EXPECT_EQ(v.Find("properties")->Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(v.Find("properties")->Find("replicationStatus"), nullptr);  // only with --expand
  const Json& targets = *v.Find("properties")->Find("publishingProfile")->Find("targetRegions");
  ASSERT_EQ(targets.array_items().size(), 2u);
  EXPECT_EQ(targets.array_items()[0].Find("name")->string_value(), "East US");
  EXPECT_EQ(targets.array_items()[0].Find("regionalReplicaCount")->AsInt64(), 2);
  EXPECT_EQ(targets.array_items()[1].Find("name")->string_value(), "West US 2");
  // A region without its own count takes --replica-count.
  EXPECT_EQ(targets.array_items()[1].Find("regionalReplicaCount")->AsInt64(), 3);
  EXPECT_EQ(v.Find("properties")->Find("publishingProfile")->Find("replicaCount")->AsInt64(), 3);
  EXPECT_EQ(
      v.Find("properties")->Find("storageProfile")->Find("source")->Find("id")->string_value(),
      img.Find("id")->string_value());

  Json shown = RunJson(Cmd({"sig", "image-version", "show"},
                           Cmd(Version("1.0.0"), {"--expand", "ReplicationStatus"})));
  EXPECT_EQ(
      shown.Find("properties")->Find("replicationStatus")->Find("aggregatedState")->string_value(),
      "Completed");
  EXPECT_EQ(State(shown, 0), "Completed");
  EXPECT_EQ(State(shown, 1), "Completed");
  EXPECT_EQ(shown.Find("properties")->Find("imagesmith")->Find("storeRefs")->array_items().size(),
            2u);
  // The store really holds the image in both regions.
  EXPECT_TRUE(Env::Default()->IsDirectory(dir_ + "/data/store/westus2"));

  CliResult table = Run({"sig", "image-version", "list", "-g", "images", "-r", "myGallery", "-i",
                         "debian12", "-o", "table"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("ExcludeFromLatest  Location  Name   ProvisioningState"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("East US=2, West US 2=3"), std::string::npos) << table.out;
  CliResult sig_table = Run({"sig", "list", "-o", "table"});
  EXPECT_NE(sig_table.out.find("eastus    myGallery  Succeeded          images"), std::string::npos)
      << sig_table.out;
}

TEST_F(GalleryCliTest, LatestAndUpdateRules) {
  MakeBasics();
  auto create = [&](const std::string& v, std::vector<std::string> extra) {
    return Run(Cmd({"sig", "image-version", "create"},
                   Cmd(Version(v), Cmd({"--managed-image", "deb-img"}, extra))));
  };
  ASSERT_EQ(create("1.0.0", {"--target-regions", "eastus", "westus2"}).exit_code, 0);
  ASSERT_EQ(create("1.1.0", {}).exit_code, 0);  // home region only
  ASSERT_EQ(create("2.0.0", {"--exclude-from-latest"}).exit_code, 0);
  EXPECT_EQ(Latest("eastus"), "1.1.0");
  EXPECT_EQ(Latest("westus2"), "1.0.0");
  EXPECT_EQ(Latest("northeurope"), "none (exit 3)");

  // Adding a region replicates it; then 1.1.0 is latest there too.
  CliResult add = Run(Cmd({"sig", "image-version", "update"},
                          Cmd(Version("1.1.0"), {"--target-regions", "eastus", "westus2"})));
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_EQ(Latest("westus2"), "1.1.0");
  // excludeFromLatest can change, through the flag or --set.
  ASSERT_EQ(Run(Cmd({"sig", "image-version", "update"},
                    Cmd(Version("2.0.0"), {"--exclude-from-latest", "false"})))
                .exit_code,
            0);
  EXPECT_EQ(Latest("eastus"), "2.0.0");
  ASSERT_EQ(Run(Cmd({"sig", "image-version", "update"},
                    Cmd(Version("2.0.0"), {"--set", "publishingProfile.excludeFromLatest=true"})))
                .exit_code,
            0);
  EXPECT_EQ(Latest("eastus"), "1.1.0");

  // Nothing else can change.
  CliResult source = Run(Cmd({"sig", "image-version", "update"},
                             Cmd(Version("1.0.0"), {"--set", "storageProfile.source.id=/x"})));
  EXPECT_EQ(source.exit_code, 1);
  EXPECT_NE(source.err.find("property \"storageProfile.source.id\" cannot be updated on an image "
                            "version"),
            std::string::npos)
      << source.err;
  // Removing a completed region needs the safety switch; the home region never goes.
  CliResult drop = Run(Cmd({"sig", "image-version", "update"},
                           Cmd(Version("1.0.0"), {"--target-regions", "eastus"})));
  EXPECT_EQ(drop.exit_code, 4);
  EXPECT_NE(drop.err.find("pass --allow-replicated-location-deletion true"), std::string::npos)
      << drop.err;
  CliResult allowed =
      Run(Cmd({"sig", "image-version", "update"},
              Cmd(Version("1.0.0"),
                  {"--target-regions", "eastus", "--allow-replicated-location-deletion", "true"})));
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  CliResult home = Run(Cmd({"sig", "image-version", "update"},
                           Cmd(Version("1.0.0"), {"--target-regions", "westus2"})));
  EXPECT_EQ(home.exit_code, 1);
  EXPECT_NE(home.err.find("home region eastus cannot be removed"), std::string::npos);

  // Definition identity is fixed; the triple is unique in the gallery.
  CliResult gen = Run({"sig", "image-definition", "create", "-g", "images", "-r", "myGallery", "-i",
                       "debian12", "--publisher", "Contoso", "--offer", "Debian", "--sku", "12",
                       "--os-type", "Linux", "--hyper-v-generation", "V1"});
  EXPECT_EQ(gen.exit_code, 4);
  EXPECT_EQ(gen.err,
            "ERROR: image definition 'debian12': changing property 'hyperVGeneration' from 'V2' "
            "to 'V1' is not allowed; a definition's identity is fixed (create a new definition)\n");
  CliResult triple =
      Run({"sig", "image-definition", "create", "-g", "images", "-r", "myGallery", "-i", "other",
           "--publisher", "contoso", "--offer", "debian", "--sku", "12", "--os-type", "Linux"});
  EXPECT_EQ(triple.exit_code, 4);
  EXPECT_NE(triple.err.find("already used by image definition 'debian12'"), std::string::npos);
  // A V1 image cannot go into a V2 definition.
  ASSERT_EQ(Run({"image", "create", "-g", "images", "-n", "gen1", "--source", dir_ + "/disk.raw",
                 "--os-type", "Linux"})
                .exit_code,
            0);
  CliResult mismatch = Run(
      Cmd({"sig", "image-version", "create"}, Cmd(Version("3.0.0"), {"--managed-image", "gen1"})));
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_NE(mismatch.err.find("hyperVGeneration V1 but image definition 'debian12' is V2"),
            std::string::npos)
      << mismatch.err;
}

TEST_F(GalleryCliTest, DeleteRules) {
  MakeBasics();
  ASSERT_EQ(Run(Cmd({"sig", "image-version", "create"},
                    Cmd(Version("1.0.0"), {"--managed-image", "deb-img", "--end-of-life-date",
                                           "2099-12-31", "--block-deletion-before-end-of-life"})))
                .exit_code,
            0);
  CliResult gallery = Run({"sig", "delete", "-g", "images", "-r", "myGallery"});
  EXPECT_EQ(gallery.exit_code, 4);
  EXPECT_NE(gallery.err.find("gallery 'myGallery' still holds 1 image definition(s)"),
            std::string::npos);
  EXPECT_NE(gallery.err.find("/galleries/myGallery/images/debian12"), std::string::npos);
  CliResult def = Run(
      {"sig", "image-definition", "delete", "-g", "images", "-r", "myGallery", "-i", "debian12"});
  EXPECT_EQ(def.exit_code, 4);
  EXPECT_NE(def.err.find("/images/debian12/versions/1.0.0"), std::string::npos);
  CliResult early = Run(Cmd({"sig", "image-version", "delete"}, Version("1.0.0")));
  EXPECT_EQ(early.exit_code, 4);
  EXPECT_NE(early.err.find("cannot be deleted before its end of life date "
                           "2099-12-31T00:00:00+00:00"),
            std::string::npos)
      << early.err;
  // Moving the date into the past lets it go.
  ASSERT_EQ(Run(Cmd({"sig", "image-version", "update"},
                    Cmd(Version("1.0.0"), {"--end-of-life-date", "2020-01-01"})))
                .exit_code,
            0);
  EXPECT_EQ(Run(Cmd({"sig", "image-version", "delete"}, Version("1.0.0"))).exit_code, 0);
  EXPECT_EQ(Run({"sig", "image-definition", "delete", "-g", "images", "-r", "myGallery", "-i",
                 "debian12"})
                .exit_code,
            0);
  EXPECT_EQ(Run({"sig", "delete", "-g", "images", "-r", "myGallery"}).exit_code, 0);
  EXPECT_EQ(Run({"image", "delete", "-g", "images", "-n", "deb-img"}).exit_code, 0);
  CliResult gone = Run({"image", "show", "-g", "images", "-n", "deb-img"});
  EXPECT_EQ(gone.exit_code, 3);
  EXPECT_NE(gone.err.find("imagesmith image create -g images -n deb-img"), std::string::npos);
  // Now the group is empty and can go too.
  EXPECT_EQ(Run({"group", "delete", "-n", "images", "--yes"}).exit_code, 0);
}

TEST_F(GalleryCliTest, BadNamesAndMissingParentsSayWhatToDo) {
  CliResult no_group = Run({"sig", "create", "-g", "nope", "-r", "g"});
  EXPECT_EQ(no_group.exit_code, 3);
  EXPECT_NE(no_group.err.find("create it with 'imagesmith group create -n nope"),
            std::string::npos);
  ASSERT_EQ(Run({"group", "create", "-n", "images", "-l", "eastus"}).exit_code, 0);
  CliResult bad = Run({"sig", "create", "-g", "images", "-r", "my-gallery"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err,
            "ERROR: gallery name \"my-gallery\" is invalid: a gallery name is 1-80 letters, "
            "digits, underscores and periods, and cannot begin or end with an underscore or a "
            "period\n");
  EXPECT_EQ(Run({"sig", "create", "-g", "images", "-r", "gallery."}).exit_code, 1);
  CliResult no_gallery =
      Run({"sig", "image-definition", "create", "-g", "images", "-r", "g", "-i", "d", "--publisher",
           "p", "--offer", "o", "--sku", "s", "--os-type", "Linux"});
  EXPECT_EQ(no_gallery.exit_code, 3);
  EXPECT_EQ(no_gallery.err,
            "ERROR: gallery 'g' could not be found in resource group 'images'; create it with "
            "'imagesmith sig create -g images -r g'\n");
  ASSERT_EQ(Run({"sig", "create", "-g", "images", "-r", "g"}).exit_code, 0);
  CliResult bad_def =
      Run({"sig", "image-definition", "create", "-g", "images", "-r", "g", "-i", "-d",
           "--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux"});
  EXPECT_NE(bad_def.exit_code, 0);
  CliResult bad_def2 =
      Run({"sig", "image-definition", "create", "-g", "images", "-r", "g", "-i", "d.",
           "--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux"});
  EXPECT_EQ(bad_def2.exit_code, 1);
  EXPECT_NE(bad_def2.err.find("must begin and end with a letter or digit"), std::string::npos);
  CliResult os = Run({"sig", "image-definition", "create", "-g", "images", "-r", "g", "-i", "d",
                      "--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linx"});
  EXPECT_EQ(os.exit_code, 1);
  EXPECT_EQ(os.err,
            "ERROR: --os-type: \"Linx\" is not allowed; use Linux, Windows (did you mean "
            "Linux?)\n");
  ASSERT_EQ(Run({"sig", "image-definition", "create", "-g", "images", "-r", "g", "-i", "d",
                 "--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux"})
                .exit_code,
            0);
  for (const char* v : {"1.2", "1.-1.0", "1.0.2147483648", "01.0.0", "x1.0.0", "1.0.0 "}) {
    CliResult r =
        Run({"sig", "image-version", "show", "-g", "images", "-r", "g", "-i", "d", "-e", v});
    EXPECT_EQ(r.exit_code, 1) << v;
    EXPECT_NE(r.err.find("expected Major.Minor.Patch, e.g. 1.0.0, each part an integer from 0 to "
                         "2147483647"),
              std::string::npos)
        << v << ": " << r.err;
  }
  CliResult no_image = Run({"sig", "image-version", "create", "-g", "images", "-r", "g", "-i", "d",
                            "-e", "1.0.0", "--managed-image", "missing"});
  EXPECT_EQ(no_image.exit_code, 3);
  EXPECT_NE(no_image.err.find("image 'missing' could not be found in resource group 'images'; "
                              "create it with 'imagesmith image create"),
            std::string::npos)
      << no_image.err;
  CliResult regions =
      Run({"sig", "image-version", "create", "-g", "images", "-r", "g", "-i", "d", "-e", "1.0.0",
           "--managed-image", "missing", "--target-regions", "eastus=0"});
  EXPECT_NE(regions.exit_code, 0);
  CliResult no_file = Run({"image", "create", "-g", "images", "-n", "img", "--source",
                           dir_ + "/none.vhd", "--os-type", "Linux"});
  EXPECT_EQ(no_file.exit_code, 3);
  EXPECT_NE(no_file.err.find("does not exist; give a raw, VHD or qcow2 disk image"),
            std::string::npos);
  CliResult bad_image = Run({"image", "create", "-g", "images", "-n", "-img-", "--source",
                             dir_ + "/none.vhd", "--os-type", "Linux"});
  EXPECT_NE(bad_image.exit_code, 0);
  // Nothing half-created by the failures.
  Json images = RunJson({"image", "list"});
  EXPECT_EQ(images.array_items().size(), 0u);
  Json versions = RunJson({"sig", "image-version", "list", "-g", "images", "-r", "g", "-i", "d"});
  EXPECT_EQ(versions.array_items().size(), 0u);
}

TEST_F(GalleryCliTest, InterruptedReplicationResumesWhenRunAgain) {
  MakeBasics();
  auto args = Cmd({"sig", "image-version", "create"},
                  Cmd(Version("1.0.0"), {"--managed-image", "deb-img", "--target-regions",
                                         "eastus westus2 northeurope"}));
  // Killed after copying the second region, before marking it Completed.
  CliResult crashed = Run(args, {{"IMAGESMITH_CRASH_AT", "gallery.replicate.after_copy#2"}});
  EXPECT_EQ(crashed.exit_code, 128 + 9);
  Json v = RunJson(Cmd({"sig", "image-version", "show"},
                       Cmd(Version("1.0.0"), {"--expand", "ReplicationStatus"})));
  EXPECT_EQ(v.Find("properties")->Find("provisioningState")->string_value(), "Creating");
  EXPECT_EQ(State(v, 0), "Completed");
  EXPECT_EQ(State(v, 1), "InProgress");
  EXPECT_EQ(State(v, 2), "InProgress");
  // Usable where it is complete, nowhere else.
  EXPECT_EQ(Latest("eastus"), "1.0.0");
  EXPECT_EQ(Latest("westus2"), "none (exit 3)");

  CliResult again = Run(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  Json done = RunJson(Cmd({"sig", "image-version", "show"},
                          Cmd(Version("1.0.0"), {"--expand", "ReplicationStatus"})));
  EXPECT_EQ(done.Find("properties")->Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(State(done, 1), "Completed");
  EXPECT_EQ(State(done, 2), "Completed");
  EXPECT_EQ(Latest("northeurope"), "1.0.0");
  // Once complete, the same explicit version is taken.
  EXPECT_EQ(Run(args).exit_code, 4);

  // A crash between creating the record and the first copy is resumed by update.
  auto args2 = Cmd(
      {"sig", "image-version", "create"},
      Cmd(Version("1.0.1"), {"--managed-image", "deb-img", "--target-regions", "eastus westus2"}));
  EXPECT_EQ(Run(args2, {{"IMAGESMITH_CRASH_AT", "gallery.publish.created"}}).exit_code, 137);
  CliResult update = Run(Cmd({"sig", "image-version", "update"}, Version("1.0.1")));
  ASSERT_EQ(update.exit_code, 0) << update.err;
  EXPECT_EQ(ParseJson(update.out)->Find("properties")->Find("provisioningState")->string_value(),
            "Succeeded");
}

}  // namespace
}  // namespace imagesmith::e2e
