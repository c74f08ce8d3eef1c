// End-to-end with real VMs: a CycleCloud template with a [[node]] and a
// nodearray, whose ImageName is a gallery image version made from the
// cached Debian 12 base, starts under the qemu node driver (TCG here); both
// nodes reach Ready with the guest agent's hello, and terminate_cluster
// leaves no qemu process, no node directory and no regional disk.
//
// The version's disk is made as the fleet layer's e2e test makes its own:
// the catalog's Debian 12 tree (built once into $IMAGESMITH_TEST_CACHE) made
// bootable, then `image create` and `sig image-version create` through the
// real binary.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "base/json.h"
#include "base/process.h"
#include "base/strings.h"
#include "catalog/boot_disk.h"
#include "catalog/catalog.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

double Since(int64_t start_us) {
  return static_cast<double>(Env::Default()->MonotonicMicros() - start_us) / 1e6;
}

// A bootable raw disk of the cached Debian 12 base at `path`.
Status MakeDebianDisk(const std::string& cache, const std::string& scratch,
                      const std::string& path) {
  Env& env = *Env::Default();
  catalog::Catalog cat(env, cache);
  tmpl::PlatformImageSource source{"Debian", "debian-12", "12", "latest", std::nullopt};
  ASSIGN_OR_RETURN(catalog::BaseImage base, cat.Ensure(source, [](std::string_view) {}));
  std::string tree = scratch + "/tree";
  ProcessOptions cp;
  cp.argv = {"cp", "-a", base.rootfs_dir, tree};
  ASSIGN_OR_RETURN(ProcessResult copied, env.RunProcess(cp));
  if (!copied.success()) return InternalError("cp -a: " + copied.stderr_data);
  ASSIGN_OR_RETURN(uint64_t size, catalog::DefaultDiskSize(env, tree));
  Status s = catalog::MakeBootableDisk(env, catalog::NewBootConfig(catalog::Generation::kV1), tree,
                                       size, path);
  (void)env.RemoveAll(tree);
  return s;
}

// qemu processes whose command line names the data directory `home`.
int QemuUnder(const std::string& home) {
  return static_cast<int>(PidsWhere([&](const std::string& cmd) {
                            return cmd.find("qemu-system") != std::string::npos &&
                                   cmd.find(home) != std::string::npos;
                          }).size());
}

TEST(CycleCloudQemu, NodeAndNodearrayBootFromAGalleryVersionAndTerminateLeavesNothing) {
  const int64_t t0 = Env::Default()->MonotonicMicros();
  std::string home;
  std::map<std::string, std::string> env = DataDirWithSharedCatalog(&home);
  auto run = [&](const std::vector<std::string>& args) {
    CliResult r = RunCli(args, "", env);
    EXPECT_EQ(r.exit_code, 0) << Join(args, " ") << ": " << r.err;
    return r;
  };
  const std::string scratch = MakeTempDir();
  Status disk = MakeDebianDisk(home + "/catalog", scratch, scratch + "/disk.raw");
  ASSERT_TRUE(disk.ok()) << disk.ToString();
  std::cout << "disk made after " << Since(t0) << " s" << std::endl;

  run({"group", "create", "-n", "cyclecloud", "-l", "eastus", "-o", "none"});
  run({"image", "create", "-g", "cyclecloud", "-n", "deb", "--source", scratch + "/disk.raw",
       "--os-type", "Linux", "-o", "none"});
  (void)Env::Default()->RemoveAll(scratch + "/disk.raw");
  run({"sig", "create", "-g", "cyclecloud", "-r", "gal", "-o", "none"});
  run({"sig", "image-definition", "create", "-g", "cyclecloud", "-r", "gal", "-i", "deb",
       "--publisher", "P", "--offer", "O", "--sku", "S", "--os-type", "Linux", "-o", "none"});
  CliResult version = run({"sig", "image-version", "create", "-g", "cyclecloud", "-r", "gal", "-i",
                           "deb", "-e", "1.0.0", "--managed-image", "deb"});
  auto vj = ParseJson(version.out);
  ASSERT_TRUE(vj.ok()) << version.out;
  const std::string version_id = vj->Find("id")->string_value();
  std::cout << "gallery version after " << Since(t0) << " s" << std::endl;

  run({"cyclecloud", "import_cluster", "q", "-f", SourceDir() + "/tests/cyclecloud/qemu.txt", "-P",
       "ImageName=" + version_id, "-o", "none"});
  const int64_t start = Env::Default()->MonotonicMicros();
  CliResult started = run({"cyclecloud", "start_cluster", "q"});
  std::cout << "start_cluster took " << Since(start) << " s" << std::endl;
  auto sj = ParseJson(started.out);
  ASSERT_TRUE(sj.ok()) << started.out;
  EXPECT_EQ(sj->Find("state")->string_value(), "Started");
  const Json::Array& nodes = sj->Find("nodes")->array_items();
  ASSERT_EQ(nodes.size(), 2u) << started.out;
  for (const Json& n : nodes) {
    SCOPED_TRACE(n.Dump());
    EXPECT_EQ(n.Find("state")->string_value(), "Ready");
    EXPECT_EQ(n.Find("image")->string_value(), version_id);
    // The hostname comes from the guest agent's hello.
    EXPECT_EQ(n.Find("hostname")->string_value(), "q-" + n.Find("name")->string_value());
  }
  EXPECT_EQ(nodes[0].Find("name")->string_value(), "head");
  EXPECT_EQ(nodes[1].Find("name")->string_value(), "execute-1");
  EXPECT_EQ(nodes[1].Find("nodearray")->string_value(), "execute");
  EXPECT_EQ(QemuUnder(home), 2);

  CliResult terminated = run({"cyclecloud", "terminate_cluster", "q"});
  auto tj = ParseJson(terminated.out);
  ASSERT_TRUE(tj.ok()) << terminated.out;
  EXPECT_EQ(tj->Find("state")->string_value(), "Terminated");
  ASSERT_EQ(tj->Find("nodes")->array_items().size(), 1u) << terminated.out;
  EXPECT_EQ(tj->Find("nodes")->array_items()[0].Find("state")->string_value(), "Off");
  EXPECT_EQ(QemuUnder(home), 0) << "a node's qemu outlived terminate_cluster";
  auto left = Env::Default()->ListDir(home + "/fleet/nodes");
  EXPECT_TRUE(!left.ok() || left->empty()) << Join(*left, ", ");
  auto disks = Env::Default()->ListDir(home + "/fleet/disks");
  size_t disk_dirs = 0;
  if (disks.ok()) {
    for (const std::string& d : *disks) disk_dirs += EndsWith(d, ".lock") ? 0 : 1;
  }
  EXPECT_EQ(disk_dirs, 0u) << "the regional disk outlived its last node";
  run({"cyclecloud", "delete_cluster", "q"});
  std::cout << "total " << Since(t0) << " s" << std::endl;
}

}  // namespace
}  // namespace imagesmith::e2e
