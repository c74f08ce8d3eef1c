#include "fleet/host_capacity.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "fleet/node_driver.h"
#include "fleet/regional_disks.h"

namespace imagesmith::fleet {
namespace {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fleet_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    (void)Env::Default()->RemoveAll(dir_);
    unsetenv("IMAGESMITH_FLEET_HOST_MEMORY_MB");
    unsetenv("IMAGESMITH_FLEET_HOST_CPUS");
  }
  std::string dir_;
};

using HostCapacityTest = TempDirTest;

TEST_F(HostCapacityTest, RefusesANodeThatDoesNotFitWithTheNumbers) {
  setenv("IMAGESMITH_FLEET_HOST_MEMORY_MB", "2048", 1);
  setenv("IMAGESMITH_FLEET_HOST_CPUS", "8", 1);
  HostCapacity capacity(*Env::Default(), dir_);
  ASSERT_TRUE(capacity.Reserve("a", 2, 1024).ok());
  ASSERT_TRUE(capacity.Reserve("b", 2, 1024).ok());
  Status full = capacity.Reserve("c", 1, 512);
  ASSERT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("asks for 1 vCPUs and 512 MiB"), std::string::npos)
      << full.message();
  EXPECT_NE(full.message().find("2 qemu nodes on this host use 4 vCPUs and 2048 MiB"),
            std::string::npos)
      << full.message();
  EXPECT_NE(full.message().find("limit is 8 vCPUs and 2048 MiB"), std::string::npos)
      << full.message();
  // CPUs are counted too.
  ASSERT_TRUE(capacity.Release("b").ok());
  EXPECT_EQ(capacity.Reserve("c", 7, 256).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(capacity.Reserve("c", 6, 1024).ok());
}

TEST_F(HostCapacityTest, AnEntryWhoseMachineDiedIsNotCounted) {
  setenv("IMAGESMITH_FLEET_HOST_MEMORY_MB", "1024", 1);
  HostCapacity capacity(*Env::Default(), dir_);
  ASSERT_TRUE(capacity.Reserve("a", 1, 1024).ok());
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);  // a pid that no longer runs
  ASSERT_TRUE(capacity.SetProcess("a", child, 12345).ok());
  EXPECT_TRUE(capacity.Reserve("b", 1, 1024).ok());
  EXPECT_FALSE(Env::Default()->FileExists(dir_ + "/ledger/a"));
  // A live process keeps its entry.
  ASSERT_TRUE(capacity.SetProcess("b", getpid(), 0).ok());
  EXPECT_EQ(capacity.Reserve("c", 1, 1).code(), StatusCode::kResourceExhausted);
}

TEST_F(HostCapacityTest, QemuCreateRefusesBeforeStartingAnythingWhenTheHostIsFull) {
  setenv("IMAGESMITH_FLEET_HOST_MEMORY_MB", "1000", 1);
  Env& env = *Env::Default();
  ASSERT_TRUE(env.WriteFileAtomic(dir_ + "/disk.raw", "not a disk").ok());
  ASSERT_TRUE(env.CreateDirs(dir_ + "/work").ok());
  auto driver = MakeQemuDriver(env, dir_ + "/state");
  NodeSpec spec;
  spec.node_id = "tvmps_1";
  spec.mac = "52:54:00:00:00:01";
  spec.image.disk = dir_ + "/disk.raw";
  spec.size = *LookupVmSize("Standard_D2s_v3");  // 2048 MiB under qemu
  spec.work_dir = dir_ + "/work";
  StatusOr<NodeRuntime> made = driver->Create(spec);
  ASSERT_EQ(made.status().code(), StatusCode::kResourceExhausted) << made.status().ToString();
  EXPECT_NE(made.status().message().find("2048 MiB"), std::string::npos);
  EXPECT_TRUE(env.ListDir(dir_ + "/work")->empty());
  EXPECT_TRUE(env.ListDir(dir_ + "/state/ledger")->empty());
  EXPECT_EQ(driver->Observe("tvmps_1").machine, NodeObservation::Machine::kGone);

  spec.image.disk = dir_ + "/missing.raw";
  EXPECT_EQ(driver->Create(spec).status().code(), StatusCode::kNotFound);
  spec.node_id = "Bad Id";
  EXPECT_EQ(driver->Create(spec).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(driver->Delete("tvmps_1").ok());
}

using RegionalDisksTest = TempDirTest;

TEST_F(RegionalDisksTest, MadeOnceSharedAndRemovedWithItsLastUser) {
  Env& env = *Env::Default();
  RegionalDisks disks(env, dir_);
  int made = 0;
  auto make = [&](const std::string& path) {
    ++made;
    return env.WriteFileAtomic(path, "disk bytes");
  };
  const std::string image =
      "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/i";
  auto a = disks.Acquire(image, "eastus", "node-a", make);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = disks.Acquire(image, "eastus", "node-b", make);
  auto again = disks.Acquire(image, "eastus", "node-b", make);
  ASSERT_TRUE(b.ok() && again.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(*env.ReadFile(*a, 100), "disk bytes");
  // Another region is another disk.
  auto west = disks.Acquire(image, "westus2", "node-c", make);
  ASSERT_TRUE(west.ok());
  EXPECT_NE(*west, *a);
  EXPECT_EQ(made, 2);
  EXPECT_EQ(*disks.Users(image, "eastus"), (std::vector<std::string>{"node-a", "node-b"}));
  // A new object (a restarted process) sees the same counts.
  RegionalDisks reopened(env, dir_);
  ASSERT_TRUE(reopened.Release(image, "eastus", "node-a").ok());
  EXPECT_TRUE(env.FileExists(*a));
  ASSERT_TRUE(reopened.Release(image, "eastus", "node-b").ok());
  EXPECT_FALSE(env.FileExists(*a));
  EXPECT_TRUE(reopened.Users(image, "eastus")->empty());
  EXPECT_TRUE(reopened.Release(image, "eastus", "node-b").ok());  // idempotent
  EXPECT_TRUE(env.FileExists(*west));
}

TEST_F(RegionalDisksTest, HeldByListsAUsersDisksSoTheyCanBeReleased) {
  Env& env = *Env::Default();
  RegionalDisks disks(env, dir_);
  auto make = [&](const std::string& path) { return env.WriteFileAtomic(path, "disk"); };
  const std::string v1 =
      "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/"
      "gal/images/d/versions/1.0.0";
  const std::string v2 = v1.substr(0, v1.size() - 5) + "2.0.0";
  EXPECT_TRUE(disks.HeldBy("nt1")->empty());
  ASSERT_TRUE(disks.Acquire(v1, "eastus", "nt1", make).ok());
  ASSERT_TRUE(disks.Acquire(v2, "eastus", "nt1", make).ok());
  ASSERT_TRUE(disks.Acquire(v2, "eastus", "nt2", make).ok());
  auto held = disks.HeldBy("nt1");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  ASSERT_EQ(held->size(), 2u);
  std::set<std::string> images;
  for (const RegionalDisks::Held& h : *held) {
    EXPECT_EQ(h.region, "eastus");
    images.insert(h.image_id);
  }
  EXPECT_EQ(images, (std::set<std::string>{v1, v2}));
  for (const RegionalDisks::Held& h : *held) {
    ASSERT_TRUE(disks.Release(h.image_id, h.region, "nt1").ok());
  }
  EXPECT_TRUE(disks.HeldBy("nt1")->empty());
  EXPECT_FALSE(env.FileExists(disks.DirFor(v1, "eastus")));               // nt1 was its only user
  EXPECT_TRUE(env.FileExists(disks.DirFor(v2, "eastus") + "/disk.raw"));  // nt2 still holds it
  EXPECT_EQ(disks.HeldBy("../x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RegionalDisksTest, AFailedMaterializeLeavesNothing) {
  Env& env = *Env::Default();
  RegionalDisks disks(env, dir_);
  auto failed = disks.Acquire("/img", "eastus", "node-a", [&](const std::string& path) {
    (void)env.WriteFileAtomic(path, "half");
    return DataLossError("the store object is corrupt");
  });
  ASSERT_EQ(failed.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(failed.status().message().find("/img in eastus"), std::string::npos);
  EXPECT_FALSE(env.FileExists(disks.DirFor("/img", "eastus")));
  EXPECT_EQ(disks.Acquire("/img", "eastus", "../x", [](const std::string&) { return Status(); })
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace imagesmith::fleet
