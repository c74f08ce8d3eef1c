// The qemu node driver with real VMs (TCG here): a node from a Debian 12
// disk says hello, runs two tasks at once and a task past its wall clock,
// outlives the driver object that made it and is adopted by a new one
// without a reboot (and not by a wrong start time), then is deleted without a
// trace, and its regional disk goes with its last user.
//
// Pools of such nodes, tasks as root and as the auto-user, exit codes,
// stderr, and adoption by a restarted `imagesmith serve` are covered end to
// end by tests/batch_qemu_cli_test.cc (e2e_batch_qemu_test); this test keeps
// what only the driver's interface shows, on one node to keep the suite short.
//
// The disk is made from the Debian 12 base in $IMAGESMITH_TEST_CACHE (built
// once, as the catalog and validation tests do) through a RegionalDisks
// entry, as pools make theirs from the store.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "base/process.h"
#include "base/strings.h"
#include "catalog/boot_disk.h"
#include "catalog/catalog.h"
#include "catalog/test_util.h"
#include "fleet/node_driver.h"
#include "fleet/regional_disks.h"

namespace imagesmith::fleet {
namespace {

using catalog::testing::TempDir;
using std::chrono::milliseconds;
using Machine = NodeObservation::Machine;

tmpl::PlatformImageSource Debian12() {
  tmpl::PlatformImageSource s;
  s.publisher = "Debian";
  s.offer = "debian-12";
  s.sku = "12";
  s.version = "latest";
  return s;
}

// Whether qemu still runs: alive and not a zombie that init has yet to reap.
bool Runs(const NodeRuntime& r) {
  if (!ProcessAlive(static_cast<int>(r.pid), r.start_ticks)) return false;
  auto stat = Env::Default()->ReadFile("/proc/" + std::to_string(r.pid) + "/stat", 4096);
  if (!stat.ok()) return false;
  size_t p = stat->rfind(')');
  return p != std::string::npos && p + 2 < stat->size() && (*stat)[p + 2] != 'Z';
}

double SecondsSince(int64_t start_us) {
  return static_cast<double>(Env::Default()->MonotonicMicros() - start_us) / 1e6;
}

class QemuDriverE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("IMAGESMITH_AGENT", IMAGESMITH_AGENT_BINARY, 1);
    const char* shared = std::getenv("IMAGESMITH_TEST_CACHE");
    if (shared != nullptr && *shared != '\0') {
      cache_dir_ = new std::string(shared);
    } else {
      own_cache_ = new TempDir();
      cache_dir_ = new std::string(own_cache_->path());
    }
    catalog::Catalog cat(*Env::Default(), *cache_dir_);
    auto image = cat.Ensure(Debian12(), [](std::string_view) {});
    if (!image.ok()) {
      error_ = new std::string(image.status().ToString());
      return;
    }
    rootfs_ = new std::string(image->rootfs_dir);
  }
  static void TearDownTestSuite() {
    delete cache_dir_;
    delete own_cache_;
    delete rootfs_;
    delete error_;
  }
  void SetUp() override { ASSERT_EQ(error_, nullptr) << *error_; }

  // Makes a bootable raw disk of the base at `path` (the regional disk's
  // materialize function).
  static Status MakeDisk(const std::string& path, const std::string& scratch) {
    Env& env = *Env::Default();
    std::string tree = scratch + "/tree";
    ProcessOptions cp;
    cp.argv = {"cp", "-a", *rootfs_, tree};
    ASSIGN_OR_RETURN(ProcessResult copied, env.RunProcess(cp));
    if (!copied.success()) return InternalError("cp -a: " + copied.stderr_data);
    ASSIGN_OR_RETURN(uint64_t size, catalog::DefaultDiskSize(env, tree));
    Status s = catalog::MakeBootableDisk(env, catalog::NewBootConfig(catalog::Generation::kV1),
                                         tree, size, path);
    (void)env.RemoveAll(tree);
    return s;
  }

  static inline std::string* cache_dir_ = nullptr;
  static inline TempDir* own_cache_ = nullptr;
  static inline std::string* rootfs_ = nullptr;
  static inline std::string* error_ = nullptr;
};

NodeSpec Spec(const std::string& id, const std::string& mac, const std::string& disk,
              const std::string& work) {
  NodeSpec spec;
  spec.node_id = id;
  spec.hostname = id + "-host";
  spec.mac = mac;
  spec.image.image_id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/img";
  spec.image.disk = disk;
  spec.size = *LookupVmSize("Standard_A1_v2");
  spec.task_slots = 2;
  spec.work_dir = work;
  return spec;
}

// Waits until every node is ready (or gone, or the time is up).
void WaitReady(NodeDriver& driver, const std::vector<std::string>& ids, int seconds) {
  int64_t start = Env::Default()->MonotonicMicros();
  for (const std::string& id : ids) {
    while (driver.Observe(id).machine == Machine::kBooting && SecondsSince(start) < seconds) {
      Env::Default()->SleepFor(milliseconds(200));
    }
    NodeObservation obs = driver.Observe(id);
    ASSERT_EQ(obs.machine, Machine::kReady) << id << ": " << obs.detail;
  }
  std::cout << "ready after " << SecondsSince(start) << " s" << std::endl;
}

std::string ReadAll(const std::string& path) {
  auto text = Env::Default()->ReadFile(path, 1 << 20);
  return text.ok() ? *text : "";
}

TEST_F(QemuDriverE2E, NodesBootRunTasksSurviveTheDriverAndAreDeletedCleanly) {
  Env& env = *Env::Default();
  TempDir dir;
  const std::string state = dir.File("state");
  ASSERT_TRUE(env.CreateDirs(state).ok());
  RegionalDisks disks(env, state);
  const std::string image_id =
      "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/img";
  auto disk = disks.Acquire(image_id, "eastus", "tvmps-a",
                            [&](const std::string& path) { return MakeDisk(path, dir.path()); });
  ASSERT_TRUE(disk.ok()) << disk.status().ToString();
  int materialized = 0;
  auto again = disks.Acquire(image_id, "eastus", "tvmps-b", [&](const std::string&) {
    ++materialized;
    return Status::Ok();
  });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *disk);
  EXPECT_EQ(materialized, 0) << "the regional disk was made twice";

  std::vector<NodeSpec> specs;
  std::vector<std::string> ids = {"tvmps-a"};
  {
    std::string work = dir.File(ids[0]);
    ASSERT_TRUE(env.CreateDirs(work).ok());
    specs.push_back(Spec(ids[0], "52:54:00:12:34:50", *disk, work));
  }
  // The second user of the regional disk lets go; the node keeps it.
  ASSERT_TRUE(disks.Release(image_id, "eastus", "tvmps-b").ok());
  EXPECT_TRUE(env.FileExists(*disk));
  auto driver = MakeQemuDriver(env, state);
  EXPECT_EQ(driver->Name(), "qemu");
  std::vector<NodeRuntime> runtimes;
  int64_t start = env.MonotonicMicros();
  for (const NodeSpec& spec : specs) {
    auto runtime = driver->Create(spec);
    ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
    EXPECT_EQ(runtime->driver, "qemu");
    EXPECT_TRUE(ProcessAlive(static_cast<int>(runtime->pid), runtime->start_ticks));
    runtimes.push_back(*runtime);
  }
  std::cout << "created in " << SecondsSince(start) << " s" << std::endl;
  WaitReady(*driver, ids, 300);
  for (const NodeSpec& spec : specs) {
    NodeObservation obs = driver->Observe(spec.node_id);
    ASSERT_TRUE(obs.guest.has_value());
    EXPECT_EQ(obs.guest->os_release.at("ID"), "debian");
    EXPECT_EQ(obs.guest->os_release.at("VERSION_ID"), "12");
    EXPECT_EQ(obs.guest->hostname, spec.hostname);
    EXPECT_GT(obs.last_heartbeat_us, 0);
  }

  // The guest's boot id, to tell an adoption from a reboot later.
  std::vector<std::string> boot_ids;
  for (const NodeSpec& spec : specs) {
    TaskSpec task;
    task.command_line = "cat /proc/sys/kernel/random/boot_id";
    task.stdout_path = spec.work_dir + "/boot.txt";
    task.stderr_path = spec.work_dir + "/boot-err.txt";
    auto result = driver->RunTask(spec.node_id, task, nullptr);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->exit_code, 0);
    boot_ids.push_back(Split(ReadAll(task.stdout_path), '\n')[0]);
    EXPECT_EQ(boot_ids.back().size(), 36u) << boot_ids.back();
  }

  // Two tasks at once on one node (two task slots): each prints the guest's
  // clock when it starts and ends, and the two intervals overlap.
  {
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        TaskSpec task;
        task.command_line = "cat /proc/uptime; sleep 3; cat /proc/uptime";
        task.stdout_path = specs[0].work_dir + "/par" + std::to_string(i) + ".txt";
        task.stderr_path = specs[0].work_dir + "/par" + std::to_string(i) + "-err.txt";
        auto r = driver->RunTask(specs[0].node_id, task, nullptr);
        if (r.ok() && r->exit_code == 0) ++ok;
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(ok.load(), 2);
    double begin[2], end[2];
    for (int i = 0; i < 2; ++i) {
      std::vector<std::string> lines =
          Split(ReadAll(specs[0].work_dir + "/par" + std::to_string(i) + ".txt"), '\n');
      ASSERT_GE(lines.size(), 2u);
      begin[i] = std::atof(lines[0].c_str());
      end[i] = std::atof(lines[1].c_str());
    }
    EXPECT_LT(begin[1], end[0]) << "the tasks did not run at the same time";
    EXPECT_LT(begin[0], end[1]) << "the tasks did not run at the same time";
  }
  // A task past its max wall clock is killed and says so.
  {
    TaskSpec task;
    task.command_line = "sleep 60";
    task.max_wall_clock = milliseconds(1500);
    task.stdout_path = specs[0].work_dir + "/slow.txt";
    task.stderr_path = specs[0].work_dir + "/slow-err.txt";
    auto r = driver->RunTask(specs[0].node_id, task, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->timed_out);
  }

  // The driver object goes away without Delete; a new one adopts the nodes.
  driver.reset();
  for (const NodeRuntime& r : runtimes) {
    EXPECT_TRUE(ProcessAlive(static_cast<int>(r.pid), r.start_ticks))
        << "qemu died with its driver";
  }
  auto adopter = MakeQemuDriver(env, state);
  NodeRuntime bogus = runtimes[0];
  bogus.start_ticks += 1;
  EXPECT_EQ(adopter->Adopt(specs[0], bogus).code(), StatusCode::kNotFound);
  for (size_t i = 0; i < specs.size(); ++i) {
    Status s = adopter->Adopt(specs[i], runtimes[i]);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  WaitReady(*adopter, ids, 60);
  for (size_t i = 0; i < specs.size(); ++i) {
    TaskSpec task;
    task.command_line = "cat /proc/sys/kernel/random/boot_id";
    task.stdout_path = specs[i].work_dir + "/after.txt";
    task.stderr_path = specs[i].work_dir + "/after-err.txt";
    auto result = adopter->RunTask(specs[i].node_id, task, nullptr);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(ReadAll(task.stdout_path), boot_ids[i] + "\n") << "node " << i << " was rebooted";
    EXPECT_EQ(adopter->Runtime(specs[i].node_id)->pid, runtimes[i].pid);
  }

  // Delete leaves no qemu and none of the driver's files.
  for (size_t i = 0; i < specs.size(); ++i) {
    ASSERT_TRUE(adopter->Delete(specs[i].node_id).ok());
    EXPECT_FALSE(Runs(runtimes[i]));
    EXPECT_FALSE(env.FileExists(specs[i].work_dir + "/machine"));
    EXPECT_FALSE(env.FileExists(Dirname(runtimes[i].agent_socket)));
    EXPECT_EQ(adopter->Observe(specs[i].node_id).machine, Machine::kGone);
    ASSERT_TRUE(adopter->Delete(specs[i].node_id).ok());  // idempotent
    ASSERT_TRUE(disks.Release(image_id, "eastus", specs[i].node_id).ok());
  }
  EXPECT_TRUE(env.ListDir(state + "/ledger")->empty());
  EXPECT_FALSE(env.FileExists(*disk)) << "the regional disk outlived its last user";
}

}  // namespace
}  // namespace imagesmith::fleet
