// Needs root and a writable cgroup hierarchy (v1 or v2).
#include "sandbox/cgroup.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace imagesmith::sandbox {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

TEST(SandboxCgroupTest, AppliesLimitsAndRemovesItsDirectories) {
  Limits limits;
  limits.memory_bytes = 64 << 20;
  limits.cpus = 0.5;
  limits.max_pids = 100;
  auto cg = Cgroup::Create(limits);
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  std::vector<std::string> dirs = (*cg)->dirs();
  ASSERT_FALSE(dirs.empty());
  if ((*cg)->v2()) {
    EXPECT_EQ(Slurp((*cg)->DirFor("memory") + "/memory.max"), std::to_string(64 << 20));
    EXPECT_EQ(Slurp((*cg)->DirFor("cpu") + "/cpu.max"), "50000 100000");
  } else {
    EXPECT_EQ(Slurp((*cg)->DirFor("memory") + "/memory.limit_in_bytes"), std::to_string(64 << 20));
    EXPECT_EQ(Slurp((*cg)->DirFor("cpu") + "/cpu.cfs_quota_us"), "50000");
    EXPECT_EQ(Slurp((*cg)->DirFor("cpu") + "/cpu.cfs_period_us"), "100000");
  }
  EXPECT_EQ(Slurp((*cg)->DirFor("pids") + "/pids.max"), "100");
  for (const std::string& d : dirs) EXPECT_TRUE(Exists(d)) << d;
  ASSERT_TRUE((*cg)->Remove().ok());
  for (const std::string& d : dirs) EXPECT_FALSE(Exists(d)) << d;
}

TEST(SandboxCgroupTest, KillAllKillsEveryProcessInside) {
  auto cg = Cgroup::Create(Limits{});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  int go[2], report[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(report), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(1);
    // A grandchild that would outlive its parent.
    pid_t grandchild = ::fork();
    if (grandchild == 0) {
      ::pause();
      ::_exit(0);
    }
    (void)!::write(report[1], &grandchild, sizeof grandchild);
    ::pause();
    ::_exit(0);
  }
  ASSERT_TRUE((*cg)->AddProcess(child).ok());
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  pid_t grandchild = 0;
  ASSERT_EQ(::read(report[0], &grandchild, sizeof grandchild),
            static_cast<ssize_t>(sizeof grandchild));
  ASSERT_TRUE((*cg)->KillAll().ok());
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  // Gone, or a zombie waiting for the host's init to reap it.
  std::string stat = Slurp("/proc/" + std::to_string(grandchild) + "/stat");
  if (!stat.empty()) {
    EXPECT_NE(stat.find(") Z "), std::string::npos) << stat;
  }
  for (int fd : {go[0], go[1], report[0], report[1]}) ::close(fd);
  std::vector<std::string> dirs = (*cg)->dirs();
  cg->reset();  // the destructor removes the directories
  for (const std::string& d : dirs) EXPECT_FALSE(Exists(d)) << d;
}

}  // namespace
}  // namespace imagesmith::sandbox
