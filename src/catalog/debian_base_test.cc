#include "catalog/debian_base.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "base/strings.h"
#include "catalog/test_util.h"

namespace imagesmith::catalog {
namespace {

using testing::Put;
using testing::TempDir;

TEST(ParseDpkgStatus, KeepsInstalledPackagesSortedByName) {
  const char* status =
      "Package: zstd\n"
      "Status: install ok installed\n"
      "Architecture: amd64\n"
      "Version: 1.5.4+dfsg2-5\n"
      "Description: fast lossless compression\n"
      " continuation line with Version: 9\n"
      "\n"
      "Package: removed-pkg\n"
      "Status: deinstall ok config-files\n"
      "Version: 1.0\n"
      "\n"
      "Package: base-files\n"
      "Status: install ok installed\n"
      "Architecture: amd64\n"
      "Version: 12.4+deb12u8\n";
  std::vector<DpkgPackage> p = ParseDpkgStatus(status);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "base-files");
  EXPECT_EQ(p[0].version, "12.4+deb12u8");
  EXPECT_EQ(p[1].name, "zstd");
  EXPECT_EQ(p[1].version, "1.5.4+dfsg2-5");
  EXPECT_EQ(p[1].architecture, "amd64");
}

TEST(HostAptSources, TakesNonEmptyListAndSourcesFiles) {
  TempDir dir;
  Put(dir.File("sources.list"), "# only a comment\n\n");
  Put(dir.File("sources.list.d/b.sources"), "Types: deb\nURIs: file:///srv/mirror\n");
  Put(dir.File("sources.list.d/a.list"), "deb file:///srv/mirror bookworm main\n");
  Put(dir.File("sources.list.d/c.list.disabled"), "deb file:///x bookworm main\n");
  auto s = HostAptSources(*Env::Default(), dir.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, (std::vector<std::string>{dir.File("sources.list.d/a.list"),
                                           dir.File("sources.list.d/b.sources")}));
}

TEST(HostAptSources, NoSourcesIsAFailedPrecondition) {
  TempDir dir;
  Put(dir.File("sources.list"), "");
  auto s = HostAptSources(*Env::Default(), dir.path());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find(dir.File("sources.list")), std::string::npos);
}

TEST(MmdebstrapCommand, PassesHostSourceFilesAsMirrors) {
  std::vector<std::string> argv =
      MmdebstrapCommand(Debian12Recipe(), "/out/rootfs", {"/etc/apt/a.sources", "/etc/apt/b.list"});
  ASSERT_GE(argv.size(), 4u);
  // mmdebstrap runs in its own mount namespace, so its mounts die with it.
  ASSERT_GE(argv.size(), 5u);
  EXPECT_EQ(Join(std::vector<std::string>(argv.begin(), argv.begin() + 5), " "),
            "unshare --mount --propagation private mmdebstrap");
  EXPECT_EQ(argv[argv.size() - 4], "bookworm");
  EXPECT_EQ(argv[argv.size() - 3], "/out/rootfs");
  EXPECT_EQ(argv[argv.size() - 2], "/etc/apt/a.sources");
  EXPECT_EQ(argv[argv.size() - 1], "/etc/apt/b.list");
  const std::string all = Join(argv, " ");
  EXPECT_NE(all.find("--variant=minbase"), std::string::npos);
  EXPECT_NE(all.find("linux-image-cloud-amd64"), std::string::npos);
  EXPECT_NE(all.find("FSTYPE=ext4"), std::string::npos);
  // No mirror is ever named: the packages come from the host's sources.
  EXPECT_EQ(all.find("http"), std::string::npos);
  EXPECT_EQ(all.find("debian.org"), std::string::npos);
}

TEST(TreeBytes, CountsFilesAndSymlinksAndHardLinksOnce) {
  TempDir dir;
  Put(dir.File("a/one"), std::string(1000, 'x'));
  Put(dir.File("b/two"), std::string(24, 'y'));
  ASSERT_EQ(::link(dir.File("a/one").c_str(), dir.File("b/hard").c_str()), 0);
  ASSERT_EQ(::symlink("a/one", dir.File("sym").c_str()), 0);  // 5 bytes of target
  auto n = TreeBytes(dir.path());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1000u + 24u + 5u);
}

TEST(TreeBytes, MissingDirectoryIsAnError) {
  auto n = TreeBytes("/nonexistent/catalog/tree");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("/nonexistent/catalog/tree"), std::string::npos);
}

TEST(DescribeTree, ReportsKernelPackagesAndSize) {
  TempDir dir;
  Put(dir.File("boot/vmlinuz-6.1.0-28-cloud-amd64"), "k");
  Put(dir.File("boot/config-6.1.0-28-cloud-amd64"), "c");
  Put(dir.File("var/lib/dpkg/status"),
      "Package: sudo\nStatus: install ok installed\nVersion: 1.9.13p3-1+deb12u1\n"
      "Architecture: amd64\n");
  auto m = DescribeTree(*Env::Default(), dir.path());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->Find("kernel")->string_value(), "6.1.0-28-cloud-amd64");
  ASSERT_EQ(m->Find("packages")->array_items().size(), 1u);
  EXPECT_EQ(m->Find("packages")->array_items()[0].Find("name")->string_value(), "sudo");
  EXPECT_GT(*m->Find("treeBytes")->AsInt64(), 0);
}

TEST(DescribeTree, TreeWithoutKernelIsNotFound) {
  TempDir dir;
  Put(dir.File("var/lib/dpkg/status"), "");
  auto m = DescribeTree(*Env::Default(), dir.path());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
}

TEST(LastLines, KeepsTheLastNonEmptyLines) {
  EXPECT_EQ(LastLines("a\nb\n\nc\nd\n", 2), "c\nd");
  EXPECT_EQ(LastLines("", 3), "");
}

}  // namespace
}  // namespace imagesmith::catalog
