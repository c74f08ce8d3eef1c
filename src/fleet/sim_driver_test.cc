#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <thread>

#include "base/manual_clock_env.h"
#include "fleet/node_driver.h"

namespace imagesmith::fleet {
namespace {

using std::chrono::milliseconds;
using Machine = NodeObservation::Machine;

NodeSpec Spec(const std::string& id, bool low_priority = false) {
  NodeSpec spec;
  spec.node_id = id;
  spec.hostname = id + "-host";
  spec.low_priority = low_priority;
  spec.size = *LookupVmSize("Standard_D2s_v3");
  return spec;
}

class SimDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sim_driver_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)Env::Default()->RemoveAll(dir_); }
  std::string dir_;
  ManualClockEnv env_;
};

TEST_F(SimDriverTest, NodeBootsWithinBootTimeAndSaysHelloWithDebian12) {
  SimSettings settings;
  settings.boot_min = milliseconds(1000);
  settings.boot_max = milliseconds(2000);
  auto driver = MakeSimDriver(env_, settings);
  EXPECT_EQ(driver->Name(), "sim");
  StatusOr<NodeRuntime> runtime = driver->Create(Spec("n1"));
  ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
  EXPECT_EQ(runtime->driver, "sim");
  EXPECT_EQ(runtime->created_us, env_.NowMicros());
  env_.Advance(milliseconds(999));
  EXPECT_EQ(driver->Observe("n1").machine, Machine::kBooting);
  EXPECT_FALSE(driver->Observe("n1").guest.has_value());
  env_.Advance(milliseconds(1001));
  NodeObservation obs = driver->Observe("n1");
  ASSERT_EQ(obs.machine, Machine::kReady);
  ASSERT_TRUE(obs.guest.has_value());
  EXPECT_EQ(obs.guest->os_release.at("ID"), "debian");
  EXPECT_EQ(obs.guest->os_release.at("VERSION_ID"), "12");
  EXPECT_EQ(obs.guest->hostname, "n1-host");
  EXPECT_GT(obs.last_heartbeat_us, runtime->created_us);
  EXPECT_LE(obs.last_heartbeat_us, env_.NowMicros());
}

TEST_F(SimDriverTest, HealthyNodesKeepHeartbeating) {
  auto driver = MakeSimDriver(env_, SimSettings());
  ASSERT_TRUE(driver->Create(Spec("n1")).ok());
  env_.Advance(milliseconds(1000));
  int64_t first = driver->Observe("n1").last_heartbeat_us;
  env_.Advance(milliseconds(60'000));
  int64_t later = driver->Observe("n1").last_heartbeat_us;
  EXPECT_GE(later - first, 55'000'000);
  EXPECT_LE(env_.NowMicros() - later, 5'000'000);
}

TEST_F(SimDriverTest, BootFailureRateOneMeansNoNodeSaysHello) {
  SimSettings settings;
  settings.boot_failure_rate = 1;
  auto driver = MakeSimDriver(env_, settings);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(driver->Create(Spec("n" + std::to_string(i))).ok());
  env_.Advance(milliseconds(3'600'000));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(driver->Observe("n" + std::to_string(i)).machine, Machine::kBooting);
  }
}

TEST_F(SimDriverTest, BootFailureRateIsRoughlyHonoured) {
  SimSettings settings;
  settings.boot_failure_rate = 0.25;
  auto driver = MakeSimDriver(env_, settings);
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(driver->Create(Spec("n" + std::to_string(i))).ok());
  env_.Advance(milliseconds(1000));
  int booting = 0;
  for (int i = 0; i < 2000; ++i) {
    booting += driver->Observe("n" + std::to_string(i)).machine == Machine::kBooting;
  }
  EXPECT_GT(booting, 400);
  EXPECT_LT(booting, 600);
}

TEST_F(SimDriverTest, LostHeartbeatsStopAtHello) {
  SimSettings settings;
  settings.heartbeat_loss_rate = 1;
  auto driver = MakeSimDriver(env_, settings);
  ASSERT_TRUE(driver->Create(Spec("n1")).ok());
  env_.Advance(milliseconds(1000));
  int64_t first = driver->Observe("n1").last_heartbeat_us;
  ASSERT_GT(first, 0);
  env_.Advance(milliseconds(120'000));
  EXPECT_EQ(driver->Observe("n1").last_heartbeat_us, first);
  TaskSpec task;
  task.command_line = "true";
  EXPECT_EQ(driver->RunTask("n1", task, nullptr).status().code(), StatusCode::kUnavailable);
}

TEST_F(SimDriverTest, OnlyLowPriorityNodesArePreempted) {
  SimSettings settings;
  settings.preemption_rate = 1;  // per node and minute
  auto driver = MakeSimDriver(env_, settings);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(driver->Create(Spec("low" + std::to_string(i), true)).ok());
    ASSERT_TRUE(driver->Create(Spec("ded" + std::to_string(i), false)).ok());
  }
  env_.Advance(milliseconds(30 * 60'000));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(driver->Observe("low" + std::to_string(i)).machine, Machine::kPreempted);
    EXPECT_EQ(driver->Observe("ded" + std::to_string(i)).machine, Machine::kReady);
  }
}

TEST_F(SimDriverTest, RunTaskWritesStdoutAndReturnsExitCodes) {
  SimSettings settings;
  settings.task_duration = milliseconds(500);
  auto driver = MakeSimDriver(env_, settings);
  ASSERT_TRUE(driver->Create(Spec("n1")).ok());
  TaskSpec task;
  task.command_line = "echo hello";
  task.stdout_path = dir_ + "/stdout.txt";
  task.stderr_path = dir_ + "/stderr.txt";
  EXPECT_EQ(driver->RunTask("n1", task, nullptr).status().code(), StatusCode::kFailedPrecondition);
  env_.Advance(milliseconds(1000));
  int64_t before = env_.MonotonicMicros();
  StatusOr<TaskResult> result = driver->RunTask("n1", task, nullptr);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_FALSE(result->timed_out);
  EXPECT_GE(env_.MonotonicMicros() - before, 500'000);
  EXPECT_EQ(*Env::Default()->ReadFile(task.stdout_path, 1 << 20), "hello\n");
  EXPECT_TRUE(Env::Default()->FileExists(task.stderr_path));

  task.command_line = "exit 3";
  EXPECT_EQ(driver->RunTask("n1", task, nullptr)->exit_code, 3);
  task.command_line = "false && exit 0";
  EXPECT_EQ(driver->RunTask("n1", task, nullptr)->exit_code, 1);
  task.command_line = "false; echo after";
  EXPECT_EQ(driver->RunTask("n1", task, nullptr)->exit_code, 0);
  task.command_line = "/bin/bash -c 'make'";
  EXPECT_EQ(driver->RunTask("n1", task, nullptr)->exit_code, 0);
  EXPECT_EQ(*Env::Default()->ReadFile(task.stdout_path, 1 << 20),
            "hello\nafter\nsim: /bin/bash -c 'make'\n");
}

TEST_F(SimDriverTest, RunTaskTimesOutAndCancels) {
  auto driver = MakeSimDriver(env_, SimSettings());
  ASSERT_TRUE(driver->Create(Spec("n1")).ok());
  env_.Advance(milliseconds(1000));
  TaskSpec task;
  task.command_line = "sleep 600";
  task.max_wall_clock = milliseconds(10'000);
  StatusOr<TaskResult> result = driver->RunTask("n1", task, nullptr);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->timed_out);
  std::atomic<bool> cancel{true};
  EXPECT_EQ(driver->RunTask("n1", task, &cancel).status().code(), StatusCode::kCancelled);
}

TEST_F(SimDriverTest, ATaskOnADeletedNodeIsUnavailable) {
  // Real clock: one thread runs a long task while another deletes the node.
  SimSettings settings;
  settings.boot_min = settings.boot_max = milliseconds(0);
  auto driver = MakeSimDriver(*Env::Default(), settings);
  ASSERT_TRUE(driver->Create(Spec("n1")).ok());
  TaskSpec task;
  task.command_line = "sleep 30";
  std::thread deleter([&] {
    Env::Default()->SleepFor(milliseconds(100));
    EXPECT_TRUE(driver->Delete("n1").ok());
  });
  EXPECT_EQ(driver->RunTask("n1", task, nullptr).status().code(), StatusCode::kUnavailable);
  deleter.join();
  EXPECT_EQ(driver->Observe("n1").machine, Machine::kGone);
  EXPECT_TRUE(driver->Delete("n1").ok());  // idempotent
}

TEST_F(SimDriverTest, SeveralTasksRunAtOnceOnOneNode) {
  SimSettings settings;
  settings.boot_min = settings.boot_max = milliseconds(0);
  settings.task_duration = milliseconds(300);
  auto driver = MakeSimDriver(*Env::Default(), settings);
  ASSERT_TRUE(driver->Create(Spec("n1")).ok());
  int64_t start = Env::Default()->MonotonicMicros();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      TaskSpec task;
      task.command_line = "exit " + std::to_string(i);
      StatusOr<TaskResult> r = driver->RunTask("n1", task, nullptr);
      if (r.ok() && r->exit_code == i) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_LT(Env::Default()->MonotonicMicros() - start, 8 * 300'000 / 2);
}

TEST_F(SimDriverTest, ThousandsOfNodesAreCheap) {
  auto driver = MakeSimDriver(env_, SimSettings());
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(driver->Create(Spec("n" + std::to_string(i))).ok());
  env_.Advance(milliseconds(1000));
  int ready = 0;
  for (int round = 0; round < 10; ++round) {
    ready = 0;
    for (int i = 0; i < 5000; ++i) {
      ready += driver->Observe("n" + std::to_string(i)).machine == Machine::kReady;
    }
  }
  EXPECT_EQ(ready, 5000);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(SimDriverTest, ANewDriverAdoptsNodesWithTheSameFate) {
  SimSettings settings;
  settings.boot_min = milliseconds(1000);
  settings.boot_max = milliseconds(9000);
  auto first = MakeSimDriver(env_, settings);
  std::vector<NodeRuntime> runtimes;
  for (int i = 0; i < 20; ++i) runtimes.push_back(*first->Create(Spec("n" + std::to_string(i))));
  env_.Advance(milliseconds(5000));
  std::vector<Machine> seen;
  for (int i = 0; i < 20; ++i) seen.push_back(first->Observe("n" + std::to_string(i)).machine);
  first.reset();
  auto second = MakeSimDriver(env_, settings);
  NodeRuntime qemu_runtime;
  qemu_runtime.driver = "qemu";
  EXPECT_EQ(second->Adopt(Spec("n0"), qemu_runtime).code(), StatusCode::kInvalidArgument);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(second->Adopt(Spec("n" + std::to_string(i)), runtimes[i]).ok());
    EXPECT_EQ(second->Observe("n" + std::to_string(i)).machine, seen[i]) << i;
  }
}

TEST_F(SimDriverTest, CreateRejectsBadAndDuplicateIds) {
  auto driver = MakeSimDriver(env_, SimSettings());
  EXPECT_EQ(driver->Create(Spec("Bad/Id")).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(driver->Create(Spec("n1")).ok());
  EXPECT_EQ(driver->Create(Spec("n1")).status().code(), StatusCode::kAlreadyExists);
}

TEST_F(SimDriverTest, RebootAndReimageBootAgain) {
  SimSettings settings;
  settings.boot_min = settings.boot_max = milliseconds(1000);
  auto driver = MakeSimDriver(env_, settings);
  ASSERT_TRUE(driver->Create(Spec("n1")).ok());
  env_.Advance(milliseconds(2000));
  ASSERT_EQ(driver->Observe("n1").machine, Machine::kReady);
  ASSERT_TRUE(driver->Reboot("n1").ok());
  EXPECT_EQ(driver->Observe("n1").machine, Machine::kBooting);
  env_.Advance(milliseconds(2000));
  ASSERT_EQ(driver->Observe("n1").machine, Machine::kReady);
  NodeImage image;
  image.image_id = "/x";
  ASSERT_TRUE(driver->Reimage("n1", image).ok());
  EXPECT_EQ(driver->Observe("n1").machine, Machine::kBooting);
  EXPECT_EQ(driver->Reboot("nope").code(), StatusCode::kNotFound);
}

TEST(SimSettingsTest, ParsesEnvironmentAndNamesBadVariables) {
  setenv("IMAGESMITH_SIM_BOOT_MIN_MS", "10", 1);
  setenv("IMAGESMITH_SIM_BOOT_MAX_MS", "20", 1);
  setenv("IMAGESMITH_SIM_BOOT_FAILURE_RATE", "0.5", 1);
  setenv("IMAGESMITH_SIM_OS_RELEASE", "ID=ubuntu,VERSION_ID=22.04", 1);
  StatusOr<SimSettings> s = SimSettings::ParseEnv();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->boot_min, milliseconds(10));
  EXPECT_EQ(s->boot_max, milliseconds(20));
  EXPECT_EQ(s->boot_failure_rate, 0.5);
  EXPECT_EQ(s->os_release.at("ID"), "ubuntu");
  setenv("IMAGESMITH_SIM_BOOT_FAILURE_RATE", "lots", 1);
  s = SimSettings::ParseEnv();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("IMAGESMITH_SIM_BOOT_FAILURE_RATE"), std::string::npos);
  EXPECT_EQ(SimSettings::FromEnv().boot_failure_rate, 0);
  for (const char* v : {"IMAGESMITH_SIM_BOOT_MIN_MS", "IMAGESMITH_SIM_BOOT_MAX_MS",
                        "IMAGESMITH_SIM_BOOT_FAILURE_RATE", "IMAGESMITH_SIM_OS_RELEASE"}) {
    unsetenv(v);
  }
}

}  // namespace
}  // namespace imagesmith::fleet
