// The customization.log of one run: every line timestamped, a header before
// each phase and step, and every line of output the steps print. Lines can
// also be echoed to a terminal. Thread-safe (lines from the sandbox's
// callback and the pipeline may interleave).
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/env.h"

namespace imagesmith::build {

class RunLog {
 public:
  // Opens (appending) `path`. `echo`, if set, also receives each formatted line.
  static StatusOr<std::unique_ptr<RunLog>> Open(Env& env, const std::string& path,
                                                std::function<void(std::string_view)> echo);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  // "2026-11-21T22:08:21.123Z [imagesmith] text".
  void Info(std::string_view text);
  // A visible section header for a phase or step.
  void Header(std::string_view text);
  // A line of a step's output ("out" or "err" stream).
  void Output(std::string_view step, std::string_view line, bool is_stderr);

  const std::string& path() const { return path_; }

 private:
  RunLog(Env& env, std::string path, std::FILE* file, std::function<void(std::string_view)> echo)
      : env_(env), path_(std::move(path)), file_(file), echo_(std::move(echo)) {}
  void Write(std::string_view line);

  Env& env_;
  std::string path_;
  std::mutex mu_;
  std::FILE* file_;  // guarded by mu_
  std::function<void(std::string_view)> echo_;
};

// RFC 3339 UTC with milliseconds, as Azure writes times.
std::string FormatTime(int64_t micros);

}  // namespace imagesmith::build
