#include "vm/boot_watch.h"

#include <cstdio>

namespace imagesmith::vm {

namespace {

// GRUB's line when it starts a menu entry; the kernel is loaded after it.
constexpr const char kGrubBooting[] = "Booting `";

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

BootWatch::BootWatch(Env& env, std::string qmp_socket, std::string console, int64_t started_us)
    : env_(env),
      qmp_socket_(std::move(qmp_socket)),
      console_(std::move(console)),
      started_us_(started_us) {}

void BootWatch::Poll(std::chrono::milliseconds interval) {
  int64_t now = env_.MonotonicMicros();
  if (now < next_poll_us_) return;
  // Once the kernel runs, a sample every 5 s is enough to say where it is.
  next_poll_us_ = now + (kernel_us_ != 0 ? 5000000 : interval.count() * 1000);
  if (bootloader_us_ == 0) {
    auto text = env_.ReadFile(console_, 16 << 20);
    if (text.ok() && text->find(kGrubBooting) != std::string::npos) bootloader_us_ = now;
  }
  if (qmp_failed_) return;
  if (qmp_ == nullptr) {
    auto c = QmpClient::Connect(qmp_socket_, now + 2000000);
    if (!c.ok()) {
      qmp_error_ = c.status().message();
      return;  // tried again at the next poll
    }
    qmp_ = std::move(*c);
  }
  auto regs = qmp_->Hmp("info registers -a", env_.MonotonicMicros() + 5000000);
  if (!regs.ok()) {
    // qemu went away, or its monitor is stuck; the watch has no more to say.
    qmp_failed_ = true;
    qmp_error_ = regs.status().message();
    qmp_.reset();
    return;
  }
  ++samples_;
  last_registers_ = *regs;
  std::string previous_ips = last_ips_;
  last_ips_.clear();
  for (uint64_t ip : InstructionPointers(*regs)) {
    if (!last_ips_.empty()) last_ips_ += " ";
    last_ips_ += Hex(ip);
    if (InKernelSpace(ip) && kernel_us_ == 0) kernel_us_ = env_.MonotonicMicros();
  }
  // Consecutive samples at the same place are one line: "FROM-TO s: IPs".
  double at = static_cast<double>(env_.MonotonicMicros() - started_us_) / 1e6;
  char t[48];
  if (last_ips_ == previous_ips && !timeline_.empty()) {
    timeline_.erase(timeline_.rfind('\n', timeline_.size() - 2) + 1);
    std::snprintf(t, sizeof t, "%.1f-%.1f s: ", run_start_s_, at);
  } else {
    run_start_s_ = at;
    std::snprintf(t, sizeof t, "%.1f s: ", at);
  }
  timeline_ += t + last_ips_ + "\n";
}

double BootWatch::seconds_to_bootloader() const {
  return bootloader_us_ == 0 ? -1 : static_cast<double>(bootloader_us_ - started_us_) / 1e6;
}

double BootWatch::seconds_to_kernel() const {
  return kernel_us_ == 0 ? -1 : static_cast<double>(kernel_us_ - started_us_) / 1e6;
}

bool BootWatch::StalledBeforeKernel(int64_t now_us, std::chrono::milliseconds limit) const {
  return bootloader_us_ != 0 && kernel_us_ == 0 && now_us - bootloader_us_ >= limit.count() * 1000;
}

std::string BootWatch::Describe() const {
  char buf[200];
  std::string s;
  if (bootloader_us_ == 0) {
    s = "the bootloader never printed \"Booting\"";
  } else {
    std::snprintf(buf, sizeof buf, "GRUB started the kernel's menu entry %.1f s after qemu started",
                  seconds_to_bootloader());
    s = buf;
  }
  if (kernel_us_ != 0) {
    std::snprintf(buf, sizeof buf, "; the kernel was running %.1f s after qemu started",
                  seconds_to_kernel());
    s += buf;
  } else if (samples_ > 0) {
    s += "; no vCPU was ever seen in the kernel (" + std::to_string(samples_) +
         " samples; last instruction pointers " + last_ips_ + ")";
  } else {
    s += "; qemu's monitor could not be read (" + qmp_error_ + ")";
  }
  return s;
}

}  // namespace imagesmith::vm
