#include "builder/run_log.h"

#include <ctime>

namespace imagesmith::build {

std::string FormatTime(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1000000);
  struct tm tm_utc {};
  gmtime_r(&secs, &tm_utc);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm_utc);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>((micros / 1000) % 1000));
  return buf;
}

StatusOr<std::unique_ptr<RunLog>> RunLog::Open(Env& env, const std::string& path,
                                               std::function<void(std::string_view)> echo) {
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) return ErrnoError("open " + path, errno);
  return std::unique_ptr<RunLog>(new RunLog(env, path, f, std::move(echo)));
}

RunLog::~RunLog() { std::fclose(file_); }

void RunLog::Write(std::string_view line) {
  std::string full = FormatTime(env_.NowMicros()) + " " + std::string(line);
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(full.data(), 1, full.size(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
  if (echo_) echo_(full);
}

void RunLog::Info(std::string_view text) { Write("[imagesmith] " + std::string(text)); }

void RunLog::Header(std::string_view text) {
  Write("[imagesmith] ==== " + std::string(text) + " ====");
}

void RunLog::Output(std::string_view step, std::string_view line, bool is_stderr) {
  Write("[" + std::string(step) + (is_stderr ? ":err] " : ":out] ") + std::string(line));
}

}  // namespace imagesmith::build
