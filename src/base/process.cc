#include "base/process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace imagesmith {

uint64_t ProcessStartTicks(int pid) {
  int fd = ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return 0;
  std::string_view s(buf, static_cast<size_t>(n));
  // The command name may contain spaces and parentheses: count from the last ')'.
  size_t p = s.rfind(')');
  if (p == std::string_view::npos) return 0;
  s.remove_prefix(p + 1);
  // Fields after ')' start at field 3; the start time is field 22.
  int field = 2;
  size_t i = 0;
  while (i < s.size() && field < 22) {
    while (i < s.size() && s[i] == ' ') ++i;
    ++field;
    if (field == 22) break;
    while (i < s.size() && s[i] != ' ') ++i;
  }
  uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9')
    v = v * 10 + static_cast<uint64_t>(s[i++] - '0');
  return v;
}

namespace {

// Whether /proc/PID/stat says the process has exited and waits to be reaped
// (state Z) or is dying (X): killed, but its parent (often init, for a
// detached worker) has not collected it yet.
bool Exited(int pid) {
  int fd = ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return false;
  std::string_view s(buf, static_cast<size_t>(n));
  size_t p = s.rfind(')');
  if (p == std::string_view::npos || p + 2 >= s.size()) return false;
  return s[p + 2] == 'Z' || s[p + 2] == 'X';
}

}  // namespace

bool ProcessAlive(int pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  if (Exited(pid)) return false;
  if (start_ticks == 0) return ::kill(pid, 0) == 0 || errno == EPERM;
  uint64_t now = ProcessStartTicks(pid);
  return now != 0 && now == start_ticks;
}

int SelfPidInProc() {
  char buf[32];
  ssize_t n = ::readlink("/proc/self", buf, sizeof buf - 1);
  if (n <= 0 || n > 9) return getpid();
  int pid = 0;
  for (ssize_t i = 0; i < n; ++i) {
    if (buf[i] < '0' || buf[i] > '9') return getpid();
    pid = pid * 10 + (buf[i] - '0');
  }
  return pid > 0 ? pid : getpid();
}

std::string SelfTag() {
  auto make = [] {
    const int pid = SelfPidInProc();
    return std::to_string(pid) + "." + std::to_string(ProcessStartTicks(pid));
  };
  static const pid_t made_by = getpid();
  static const std::string tag = make();
  // After fork() the cached tag belongs to the parent.
  if (made_by != getpid()) return make();
  return tag;
}

}  // namespace imagesmith
