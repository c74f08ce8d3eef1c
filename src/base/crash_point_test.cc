#include "base/crash_point.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

namespace imagesmith {
namespace {

// Runs `hits` CrashPoint("p") calls in a child with IMAGESMITH_CRASH_AT=spec
// and returns how the child ended: the signal, or 0 for a normal exit.
int RunChild(const char* spec, int hits) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("IMAGESMITH_CRASH_AT", spec, 1);
    for (int i = 0; i < hits; ++i) CrashPoint("p");
    CrashPoint("other");
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

TEST(CrashPointTest, KillsAtTheNamedPoint) { EXPECT_EQ(RunChild("p", 1), SIGKILL); }

TEST(CrashPointTest, OtherNamesAndUnsetDoNothing) {
  EXPECT_EQ(RunChild("q", 3), 0);
  EXPECT_EQ(RunChild("", 3), 0);
}

TEST(CrashPointTest, NthHitCountsCalls) {
  EXPECT_EQ(RunChild("p#3", 2), 0);
  EXPECT_EQ(RunChild("p#3", 3), SIGKILL);
}

}  // namespace
}  // namespace imagesmith
