// The validate phase of a build: boots the built disk (or the source's, for
// sourceValidationOnly) in a throwaway qemu VM and runs the template's
// validate.inVMValidations in it, in order, through the guest agent
// (doc/vm.md, doc/build.md "Validation").
//
// The disk is only ever read: the VM runs on a qcow2 overlay in
// <run_dir>/validate/, which is deleted afterwards, or kept (and named in the
// log) when errorHandling.onValidationError is abort and validation failed.
// Thread-compatible: one call per run.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "base/env.h"
#include "builder/run_log.h"
#include "template/model.h"

namespace imagesmith::build {

struct ValidateOptions {
  std::string disk;          // the raw disk to boot; never opened for writing
  bool uefi = false;         // generation 2: OVMF; otherwise SeaBIOS
  std::string template_dir;  // relative scriptUri/sourceUri resolve here
  std::string run_dir;
  std::string accel_cache;     // vm::ProbeAccel's cache file; may be empty
  std::string ssh_keys_cache;  // vm::VmConfig::ssh_keys_cache; may be empty
  int cpus = 2;
  uint64_t memory_mb = 2048;
  // Everything (VM boot, each validator) ends by then: the run's deadline.
  std::chrono::milliseconds time_left{0};
  const std::atomic<bool>* cancel = nullptr;  // borrowed; may be null
};

// How the phase ended.
struct ValidateResult {
  // OK: every validator passed. Aborted: a validator failed or timed out
  // (the message names it). DeadlineExceeded / Cancelled: the run's timeout
  // or a cancel. Other codes: the VM could not be set up or never became
  // ready (the message says which, with the console's tail).
  Status status;
  std::string kept_dir;  // the overlay directory when kept for inspection
};

// Fetches every validator input (checksums verified) before the VM starts,
// then boots, waits for the guest's boot to finish, and runs the validators;
// each one's output lines and its exit status go to `log`, as does the
// serial console at the end.
ValidateResult RunValidation(Env& env, const tmpl::ImageTemplate& t, const ValidateOptions& options,
                             RunLog& log);

}  // namespace imagesmith::build
