// Env: everything imagesmith needs from outside the process -- files, the
// clock and child processes -- behind one interface that tests can wrap
// (e.g. to inject a disk that fails on write). Env::Default() is the real
// POSIX implementation; it is safe to use from several threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/statusor.h"

namespace imagesmith {

struct ProcessOptions {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH
  // Variables added to (or overriding) the inherited environment.
  std::map<std::string, std::string> extra_env;
  std::string working_dir;  // empty: inherit
  std::string stdin_data;   // written to the child's stdin, then closed
  // Kill the child's whole process group after this long. Zero: no limit.
  std::chrono::milliseconds timeout{0};
  // Cap on captured stdout/stderr each; output beyond it is dropped (the
  // result says so). Protects memory from a runaway child.
  size_t max_capture_bytes = 64 << 20;
  // When set, called with each complete line (without '\n') as it arrives,
  // from the calling thread; `is_stderr` tells which stream.
  std::function<void(std::string_view line, bool is_stderr)> on_line;
};

struct ProcessResult {
  int exit_code = -1;   // valid when term_signal == 0
  int term_signal = 0;  // the signal that ended the child, or 0
  bool timed_out = false;
  bool output_truncated = false;
  std::string stdout_data;
  std::string stderr_data;

  bool success() const { return term_signal == 0 && !timed_out && exit_code == 0; }
  // "exit status 3", "killed by signal 9", "timed out after 5s".
  std::string Describe() const;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX implementation. Never null; not owned by caller.
  static Env* Default();

  // Reads a whole file. Fails with NotFound if it does not exist and with
  // ResourceExhausted if it is larger than `max_bytes` (oversized input is
  // rejected before it is read into memory).
  virtual StatusOr<std::string> ReadFile(const std::string& path, uint64_t max_bytes) = 0;
  // Writes `data` to a temporary file beside `path`, fsyncs it and renames it
  // over `path`, so readers see the old or the new content, never a mix.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual bool IsDirectory(const std::string& path) = 0;
  // Creates `path` and missing parents (mode 0755). OK if it already exists.
  virtual Status CreateDirs(const std::string& path) = 0;
  // Names (not paths) of the entries in `path`, sorted, without . and ..
  virtual StatusOr<std::vector<std::string>> ListDir(const std::string& path) = 0;
  // Removes a file or a whole tree. OK if it does not exist. Does not follow
  // symlinks and does not cross into other mounted filesystems.
  virtual Status RemoveAll(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;

  // Wall-clock time in microseconds since the Unix epoch.
  virtual int64_t NowMicros() = 0;
  // A monotonic clock for measuring durations.
  virtual int64_t MonotonicMicros() = 0;
  virtual void SleepFor(std::chrono::milliseconds d) = 0;

  // Runs a child process to completion in its own process group, capturing
  // its output. Fails only if it could not be started (NotFound when argv[0]
  // is not found); a child that exits non-zero, is killed or times out is
  // an OK result whose fields say so. On timeout the whole process group is
  // killed with SIGKILL before returning, so nothing it started outlives it.
  virtual StatusOr<ProcessResult> RunProcess(const ProcessOptions& options) = 0;
};

// The absolute path of the running program (/proc/self/exe), for finding
// the files installed beside it and for starting it again.
StatusOr<std::string> SelfExePath();

// The directory part of `path` ("." if there is none) and the last part.
std::string Dirname(std::string_view path);
std::string Basename(std::string_view path);
// Joins two path pieces with exactly one '/'. An absolute `b` wins.
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace imagesmith
