#include "base/env.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

namespace imagesmith {
namespace {

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-env-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(env_->RemoveAll(dir_).ok()); }
  Env* env_ = Env::Default();
  std::string dir_;
};

TEST_F(EnvTest, WritesAtomicallyAndReadsBack) {
  std::string p = dir_ + "/f";
  ASSERT_TRUE(env_->WriteFileAtomic(p, "hello").ok());
  EXPECT_EQ(*env_->ReadFile(p, 100), "hello");
  EXPECT_EQ(*env_->ListDir(dir_), std::vector<std::string>{"f"});
}

TEST_F(EnvTest, RejectsOversizedFileBeforeReading) {
  std::string p = dir_ + "/big";
  ASSERT_TRUE(env_->WriteFileAtomic(p, std::string(1000, 'x')).ok());
  auto r = env_->ReadFile(p, 999);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST_F(EnvTest, MissingFileIsNotFound) {
  auto r = env_->ReadFile(dir_ + "/nope", 10);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST_F(EnvTest, CreateDirsAndRemoveAllHandleTrees) {
  ASSERT_TRUE(env_->CreateDirs(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(env_->WriteFileAtomic(dir_ + "/a/b/c/f", "x").ok());
  ASSERT_TRUE(env_->RemoveAll(dir_ + "/a").ok());
  EXPECT_FALSE(env_->FileExists(dir_ + "/a"));
}

TEST_F(EnvTest, RunProcessCapturesOutputAndExitCode) {
  ProcessOptions o;
  o.argv = {"sh", "-c", "echo out; echo err >&2; cat; exit 3"};
  o.stdin_data = "in\n";
  std::vector<std::string> lines;
  o.on_line = [&](std::string_view l, bool) { lines.emplace_back(l); };
  auto r = env_->RunProcess(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout_data, "out\nin\n");
  EXPECT_EQ(r->stderr_data, "err\n");
  EXPECT_EQ(lines.size(), 3u);
  EXPECT_EQ(r->Describe(), "exit status 3");
}

TEST_F(EnvTest, TimeoutKillsTheWholeProcessGroup) {
  ProcessOptions o;
  std::string pidfile = dir_ + "/pid";
  o.argv = {"sh", "-c", "sleep 30 & echo $! > " + pidfile + "; wait"};
  o.timeout = std::chrono::milliseconds(300);
  auto r = env_->RunProcess(o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  auto pid = env_->ReadFile(pidfile, 100);
  ASSERT_TRUE(pid.ok());
  // The grandchild must be gone; it may linger briefly as a zombie until init reaps it.
  bool alive = true;
  for (int i = 0; i < 100 && alive; ++i) {
    alive = ::kill(std::stoi(*pid), 0) == 0;
    if (alive) env_->SleepFor(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(alive);
}

TEST_F(EnvTest, MissingProgramIsNotFound) {
  ProcessOptions o;
  o.argv = {"imagesmith-no-such-program"};
  auto r = env_->RunProcess(o);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace imagesmith
