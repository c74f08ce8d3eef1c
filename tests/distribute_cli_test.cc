// End-to-end: builds that publish to the gallery, managed images and the
// staging area, and builds whose source is a published image -- driven
// through the imagesmith binary, with real Debian images and a real store.
//
// Each test has its own data directory; the Debian base is shared.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/json.h"
#include "base/sha256.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

Json ParseOut(const CliResult& r) {
  auto j = ParseJson(r.out);
  EXPECT_TRUE(j.ok()) << r.out << r.err;
  return j.ok() ? *j : Json();
}

std::string Digest(const std::string& path) {
  auto data = Env::Default()->ReadFile(path, 8ull << 30);
  EXPECT_TRUE(data.ok()) << path;
  return data.ok() ? Sha256Of(*data).ToHex() : "";
}

class DistributeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    delete env_;
    env_ = new std::map<std::string, std::string>(DataDirWithSharedCatalog(&home_));
    dir_ = MakeTempDir();
    CliResult r = Cli({"account", "show"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    sub_ = ParseOut(r).Find("id")->string_value();
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"group", "create", "-n", "imgs", "-l", "eastus"},
             {"sig", "create", "-g", "imgs", "-r", "gal"},
             {"sig", "image-definition", "create", "-g", "imgs", "-r", "gal", "-i", "deb",
              "--publisher", "me", "--offer", "debian", "--sku", "12", "--os-type", "Linux",
              "--hyper-v-generation", "V2"},
             {"sig", "image-definition", "create", "-g", "imgs", "-r", "gal", "-i", "deb-gen1",
              "--publisher", "me", "--offer", "debian", "--sku", "12-gen1", "--os-type", "Linux",
              "--hyper-v-generation", "V1"}}) {
      CliResult c = Cli(args);
      ASSERT_EQ(c.exit_code, 0) << Join(args, " ") << "\n" << c.err;
    }
  }
  static CliResult Cli(const std::vector<std::string>& args) { return RunCli(args, dir_, *env_); }
  static std::string Gallery(const std::string& definition) {
    return "/subscriptions/" + sub_ +
           "/resourceGroups/imgs/providers/Microsoft.Compute/galleries/gal/images/" + definition;
  }
  static std::string ManagedImage(const std::string& name) {
    return "/subscriptions/" + sub_ + "/resourceGroups/imgs/providers/Microsoft.Compute/images/" +
           name;
  }
  // A template from gen2 Debian (or `source`) with one Shell step and the
  // given distribute[] array.
  static std::string WriteTemplate(const std::string& name, const std::string& inline_cmd,
                                   const std::string& distribute, const std::string& source = "",
                                   const std::string& extra = "") {
    std::string src = source.empty()
                          ? R"({"type": "PlatformImage", "publisher": "Debian", "offer": )"
                            R"("debian-12", "sku": "12-gen2", "version": "latest"})"
                          : source;
    std::string text = R"({"type": "Microsoft.VirtualMachineImages/imageTemplates",
      "apiVersion": "2022-07-01", "location": "eastus", "properties": {
      "source": )" + src +
                       R"(,
      "customize": [{"type": "Shell", "name": "step", "inline": [")" +
                       inline_cmd + R"("]}],)" + extra + R"(
      "distribute": )" +
                       distribute + "}}";
    const std::string path = dir_ + "/" + name + ".json";
    EXPECT_TRUE(Env::Default()->WriteFileAtomic(path, text).ok());
    return path;
  }
  static Json RunOutputs(const std::string& name) {
    CliResult r = Cli({"image-template", "show-runs", "-g", "imgs", "-n", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseOut(r);
  }
  static const Json* Output(const Json& outs, const std::string& name) {
    for (const Json& o : outs.array_items()) {
      if (o.Find("name")->string_value() == name) return o.Find("properties");
    }
    ADD_FAILURE() << "no runOutput " << name << " in " << outs.Dump();
    return nullptr;
  }

  static std::string home_;
  static std::string dir_;
  static std::string sub_;
  static std::map<std::string, std::string>* env_;
};
std::string DistributeE2E::home_;
std::string DistributeE2E::dir_;
std::string DistributeE2E::sub_;
std::map<std::string, std::string>* DistributeE2E::env_ = nullptr;

TEST_F(DistributeE2E, PublishesVersionManagedImageAndStagedVhdThenBuildsOnLatest) {
  const std::string v1 =
      WriteTemplate("v1", "echo one > /etc/imagesmith-v1",
                    R"([{"type": "SharedImage", "runOutputName": "gal", "galleryImageId": ")" +
                        Gallery("deb") + R"(", "versioning": {"scheme": "Latest", "major": 1},
           "targetRegions": [{"name": "eastus"},
             {"name": "westus2", "replicaCount": 2, "storageAccountType": "Standard_ZRS"}]},
          {"type": "ManagedImage", "runOutputName": "mi", "imageId": ")" +
                        ManagedImage("deb-v1") + R"(", "location": "eastus"},
          {"type": "VHD", "runOutputName": "vhd"}])");
  CliResult b = Cli({"build", v1, "-g", "imgs", "-n", "v1"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  Json shown = ParseOut(b);
  const std::string disk = shown.Find("properties")->Find("lastRun")->Find("disk")->string_value();

  Json outs = RunOutputs("v1");
  ASSERT_EQ(outs.array_items().size(), 3u) << outs.Dump();
  const Json* gal = Output(outs, "gal");
  ASSERT_NE(gal, nullptr);
  EXPECT_EQ(gal->Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(gal->Find("artifactId")->string_value(), Gallery("deb") + "/versions/1.0.0");
  const Json* mi = Output(outs, "mi");
  ASSERT_NE(mi, nullptr);
  EXPECT_EQ(mi->Find("artifactId")->string_value(), ManagedImage("deb-v1"));
  const Json* vhd = Output(outs, "vhd");
  ASSERT_NE(vhd, nullptr);
  const std::string vhd_path = vhd->Find("artifactUri")->string_value();
  EXPECT_TRUE(StartsWith(vhd_path, home_ + "/staging/it_imgs_v1_")) << vhd_path;
  EXPECT_TRUE(Env::Default()->FileExists(vhd_path));

  // The version is replicated to both regions, with what the template asked.
  CliResult v = Cli({"sig", "image-version", "show", "-g", "imgs", "-r", "gal", "-i", "deb", "-e",
                     "1.0.0", "--expand", "ReplicationStatus"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  Json version = ParseOut(v);
  const Json& props = *version.Find("properties");
  EXPECT_EQ(props.Find("provisioningState")->string_value(), "Succeeded");
  const Json& summary = *props.Find("replicationStatus")->Find("summary");
  ASSERT_EQ(summary.array_items().size(), 2u) << props.Dump();
  for (const Json& s : summary.array_items()) {
    EXPECT_EQ(s.Find("state")->string_value(), "Completed") << s.Dump();
  }
  EXPECT_NE(props.Dump(-1).find("\"Standard_ZRS\""), std::string::npos) << props.Dump();

  // The managed image's disk, made again from the store, is the build's disk.
  const std::string exported = dir_ + "/v1.raw";
  CliResult e =
      Cli({"image", "export", "-g", "imgs", "-n", "deb-v1", "-f", exported, "--format", "raw"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(Digest(exported), Digest(disk));
  ::unlink(exported.c_str());

  // v2 starts from .../versions/latest (v1's tree, marker and all).
  const std::string v2 = WriteTemplate(
      "v2", "test -f /etc/imagesmith-v1 && echo two > /etc/imagesmith-v2",
      R"([{"type": "SharedImage", "runOutputName": "gal", "galleryImageId": ")" + Gallery("deb") +
          R"(", "targetRegions": [{"name": "eastus"}, {"name": "westus2"}]}])",
      R"({"type": "SharedImageVersion", "imageVersionId": ")" + Gallery("deb") +
          R"(/versions/latest"})");
  b = Cli({"build", v2, "-g", "imgs", "-n", "v2"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  Json v2_outs = RunOutputs("v2");
  gal = Output(v2_outs, "gal");
  ASSERT_NE(gal, nullptr);
  EXPECT_EQ(gal->Find("artifactId")->string_value(), Gallery("deb") + "/versions/1.0.1");
  CliResult logs = Cli({"image-template", "logs", "-g", "imgs", "-n", "v2"});
  EXPECT_NE(logs.out.find("source " + Gallery("deb") + "/versions/1.0.0"), std::string::npos)
      << logs.out;
  // Only what changed is stored again: far fewer objects than v1 had.
  size_t at = logs.out.find("stored the image tree in eastus");
  ASSERT_NE(at, std::string::npos) << logs.out;
  std::string line = logs.out.substr(at, logs.out.find('\n', at) - at);
  EXPECT_NE(line.find("already stored"), std::string::npos) << line;

  // An explicit version must be new.
  const std::string t = WriteTemplate(
      "again", "true",
      R"([{"type": "SharedImage", "runOutputName": "gal", "galleryImageId": ")" + Gallery("deb") +
          R"(/versions/1.0.0", "targetRegions": [{"name": "eastus"}]}])");
  b = Cli({"build", t, "-g", "imgs", "-n", "again"});
  EXPECT_EQ(b.exit_code, 1) << b.err;
  Json again = RunOutputs("again");
  gal = Output(again, "gal");
  ASSERT_NE(gal, nullptr);
  EXPECT_EQ(gal->Find("provisioningState")->string_value(), "Failed");
  EXPECT_NE(gal->Find("error")->string_value().find("1.0.0"), std::string::npos) << gal->Dump();

  // Deleting v1 takes its staging group and staged VHD with it; the
  // published version and managed image stay.
  CliResult d = Cli({"image-template", "delete", "-g", "imgs", "-n", "v1"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_FALSE(Env::Default()->FileExists(vhd_path));
  CliResult groups = Cli({"group", "list"});
  EXPECT_EQ(groups.out.find("IT_imgs_v1_"), std::string::npos) << groups.out;
  EXPECT_NE(groups.out.find("IT_imgs_v2_"), std::string::npos) << groups.out;
  EXPECT_EQ(Cli({"image", "show", "-g", "imgs", "-n", "deb-v1"}).exit_code, 0);

  CliResult fsck = Cli({"store", "fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
}

TEST_F(DistributeE2E, AGenerationMismatchFailsTheTargetAndNamesIt) {
  const std::string t =
      WriteTemplate("gen", "true",
                    R"([{"type": "SharedImage", "runOutputName": "gal", "galleryImageId": ")" +
                        Gallery("deb-gen1") + R"(", "targetRegions": [{"name": "eastus"}]},
          {"type": "VHD", "runOutputName": "vhd"}])");
  CliResult b = Cli({"build", t, "-g", "imgs", "-n", "gen"});
  EXPECT_EQ(b.exit_code, 1) << b.err;
  Json outs = RunOutputs("gen");
  const Json* gal = Output(outs, "gal");
  ASSERT_NE(gal, nullptr);
  EXPECT_EQ(gal->Find("provisioningState")->string_value(), "Failed");
  EXPECT_NE(gal->Find("error")->string_value().find("V2"), std::string::npos) << gal->Dump();
  EXPECT_NE(gal->Find("error")->string_value().find("V1"), std::string::npos) << gal->Dump();
  const Json* vhd = Output(outs, "vhd");
  ASSERT_NE(vhd, nullptr);
  EXPECT_EQ(vhd->Find("provisioningState")->string_value(), "Succeeded");
  CliResult show = Cli({"image-template", "show", "-g", "imgs", "-n", "gen"});
  EXPECT_EQ(
      ParseOut(show).Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
      "PartiallySucceeded");
  // Nothing was published to the gen1 definition.
  CliResult list =
      Cli({"sig", "image-version", "list", "-g", "imgs", "-r", "gal", "-i", "deb-gen1"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(ParseOut(list).array_items().size(), 0u) << list.out;
}

TEST_F(DistributeE2E, AStagingGroupMustBeEmptyAndNothingIsCreatedWhenItIsNot) {
  ASSERT_EQ(Cli({"group", "create", "-n", "busy", "-l", "eastus"}).exit_code, 0);
  ASSERT_EQ(Cli({"sig", "create", "-g", "busy", "-r", "other"}).exit_code, 0);
  const std::string t = WriteTemplate(
      "staged", "true", R"([{"type": "VHD", "runOutputName": "vhd"}])", "",
      R"("stagingResourceGroup": "/subscriptions/)" + sub_ + R"(/resourceGroups/busy",)");
  CliResult c =
      Cli({"image-template", "create", "-g", "imgs", "-n", "staged", "--image-template", t});
  EXPECT_EQ(c.exit_code, 4) << c.err;  // FailedPrecondition: a conflict with what exists
  EXPECT_NE(c.err.find("properties.stagingResourceGroup"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("must be empty"), std::string::npos) << c.err;
  EXPECT_EQ(Cli({"image-template", "show", "-g", "imgs", "-n", "staged"}).exit_code, 3);
  // An empty group in the region is taken, tagged, and kept at delete.
  ASSERT_EQ(Cli({"group", "create", "-n", "empty", "-l", "eastus"}).exit_code, 0);
  const std::string ok = WriteTemplate(
      "staged2", "true", R"([{"type": "VHD", "runOutputName": "vhd"}])", "",
      R"("stagingResourceGroup": "/subscriptions/)" + sub_ + R"(/resourceGroups/empty",)");
  c = Cli({"image-template", "create", "-g", "imgs", "-n", "staged2", "--image-template", ok});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("/resourceGroups/empty"), std::string::npos) << c.out;
  CliResult g = Cli({"group", "show", "-n", "empty"});
  EXPECT_NE(g.out.find("\"usedBy\": \"AzureVMImageBuilder\""), std::string::npos) << g.out;
  ASSERT_EQ(Cli({"image-template", "delete", "-g", "imgs", "-n", "staged2"}).exit_code, 0);
  g = Cli({"group", "show", "-n", "empty"});
  EXPECT_EQ(g.exit_code, 0);
  EXPECT_EQ(g.out.find("usedBy"), std::string::npos) << g.out;
}

}  // namespace
}  // namespace imagesmith::e2e
