// Watches a booting VM from the host, through qemu's monitor (QMP) and the
// serial console, to tell how far the boot got: firmware and bootloader, or
// the kernel. A guest's kernel is silent on the console (validation boots
// with `quiet`), so "the kernel runs" is read from the vCPUs' instruction
// pointers: Linux runs in the upper half of the address space, firmware and
// GRUB never do. See doc/vm.md, "A boot that stalls".
//
// Used from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "base/env.h"
#include "vm/qmp.h"

namespace imagesmith::vm {

class BootWatch {
 public:
  // `qmp_socket` is qemu's -qmp socket, `console` its serial log; the clock
  // starts at `started_us` (qemu's start, monotonic).
  BootWatch(Env& env, std::string qmp_socket, std::string console, int64_t started_us);

  // Samples the console and the vCPUs, at most every `interval`. Monitor
  // errors only leave the watch with less to say; they are not fatal.
  void Poll(std::chrono::milliseconds interval = std::chrono::milliseconds(1000));

  // GRUB printed "Booting `...'": the bootloader is loading the kernel.
  bool bootloader_done() const { return bootloader_us_ != 0; }
  // A vCPU was seen in kernel space.
  bool kernel_started() const { return kernel_us_ != 0; }
  // Seconds from qemu's start; negative while not seen.
  double seconds_to_bootloader() const;
  double seconds_to_kernel() const;

  // True once the bootloader handed over `limit` ago (or more) and no vCPU
  // has been seen in the kernel since: the boot stalled before the kernel.
  bool StalledBeforeKernel(int64_t now_us, std::chrono::milliseconds limit) const;

  // One line on how far the boot got, with the last sampled instruction
  // pointers, for logs and errors.
  std::string Describe() const;
  // Every sample so far, one "T s: IP IP ..." line each (T from qemu's
  // start; "T1-T2 s:" for consecutive samples at the same instruction
  // pointers), for telling where a boot spent its time. One sample a second
  // until the kernel runs, then one every 5 s.
  const std::string& timeline() const { return timeline_; }
  // The last full "info registers -a" text (empty if none was read).
  const std::string& last_registers() const { return last_registers_; }

 private:
  Env& env_;
  std::string qmp_socket_;
  std::string console_;
  int64_t started_us_;
  std::unique_ptr<QmpClient> qmp_;
  bool qmp_failed_ = false;
  std::string qmp_error_;
  int64_t next_poll_us_ = 0;
  int64_t bootloader_us_ = 0;
  int64_t kernel_us_ = 0;
  int samples_ = 0;
  std::string last_ips_;
  std::string last_registers_;
  std::string timeline_;
  double run_start_s_ = 0;  // when the timeline's last line's samples began
};

}  // namespace imagesmith::vm
