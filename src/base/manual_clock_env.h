// An Env whose clocks move only when told to (tests of controllers that
// decide from the time: node health deadlines, rollout pauses, retries after
// 24 hours). Everything else is Env::Default()'s. Thread-safe.
#pragma once

#include <atomic>

#include "base/env.h"

namespace imagesmith {

class ManualClockEnv final : public Env {
 public:
  explicit ManualClockEnv(int64_t start_us = 1'700'000'000'000'000) : now_us_(start_us) {}

  StatusOr<std::string> ReadFile(const std::string& p, uint64_t m) override {
    return base_->ReadFile(p, m);
  }
  Status WriteFileAtomic(const std::string& p, std::string_view d) override {
    return base_->WriteFileAtomic(p, d);
  }
  bool FileExists(const std::string& p) override { return base_->FileExists(p); }
  bool IsDirectory(const std::string& p) override { return base_->IsDirectory(p); }
  Status CreateDirs(const std::string& p) override { return base_->CreateDirs(p); }
  StatusOr<std::vector<std::string>> ListDir(const std::string& p) override {
    return base_->ListDir(p);
  }
  Status RemoveAll(const std::string& p) override { return base_->RemoveAll(p); }
  Status Rename(const std::string& a, const std::string& b) override { return base_->Rename(a, b); }
  int64_t NowMicros() override { return now_us_.load(); }
  int64_t MonotonicMicros() override { return now_us_.load(); }
  // Sleeping is the clock moving on.
  void SleepFor(std::chrono::milliseconds d) override { now_us_ += d.count() * 1000; }
  StatusOr<ProcessResult> RunProcess(const ProcessOptions& o) override {
    return base_->RunProcess(o);
  }

  void Advance(std::chrono::microseconds d) { now_us_ += d.count(); }

 private:
  Env* base_ = Env::Default();
  std::atomic<int64_t> now_us_;
};

}  // namespace imagesmith
