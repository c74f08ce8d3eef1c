// A client for qemu's machine protocol (QMP) on a unix socket: enough to ask
// the monitor questions while a VM boots (doc/vm.md, "Where a stalled boot
// stopped"). QMP is line-delimited JSON; events that arrive between a
// command and its answer are skipped.
//
// One command at a time; not safe for concurrent use from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/statusor.h"

namespace imagesmith::vm {

class QmpClient {
 public:
  // Connects to `socket_path` (retrying while qemu creates it, until
  // `deadline_us` on the monotonic clock), reads the greeting and enters
  // command mode. DeadlineExceeded when qemu never answered.
  static StatusOr<std::unique_ptr<QmpClient>> Connect(const std::string& socket_path,
                                                      int64_t deadline_us);
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Runs a human-monitor command ("info registers -a") and returns its text.
  // Unavailable when qemu went away; DeadlineExceeded at `deadline_us`.
  StatusOr<std::string> Hmp(const std::string& command_line, int64_t deadline_us);

 private:
  explicit QmpClient(int fd) : fd_(fd) {}
  // Sends one JSON command and returns the "return" member's JSON text of
  // its answer, skipping events.
  StatusOr<std::string> Execute(const std::string& command_json, int64_t deadline_us);
  StatusOr<std::string> ReadLine(int64_t deadline_us);

  int fd_;
  std::string buffered_;
};

// The instruction pointers of every vCPU in the text of "info registers -a"
// (one per "RIP=" (long mode) or "EIP=" (real and protected mode) it shows).
std::vector<uint64_t> InstructionPointers(const std::string& info_registers);

// Whether `rip` is in the x86-64 kernel's half of the address space: Linux
// runs there from its first C code on, and firmware and GRUB never do.
inline bool InKernelSpace(uint64_t rip) { return rip >= 0xffff800000000000ULL; }

}  // namespace imagesmith::vm
