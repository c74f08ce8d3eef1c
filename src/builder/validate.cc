#include "builder/validate.h"

#include <cstdio>
#include <cstdlib>

#include "base/crash_point.h"
#include "base/strings.h"
#include "builder/fetch.h"
#include "vm/qemu_vm.h"

namespace imagesmith::build {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A validator that runs longer than this is killed, unless the run's
// deadline comes first.
// $IMAGESMITH_VALIDATOR_TIMEOUT (seconds) overrides it for this host.
milliseconds ValidatorTimeout() {
  const char* e = std::getenv("IMAGESMITH_VALIDATOR_TIMEOUT");
  if (e != nullptr && std::atoi(e) > 0) return seconds(std::atoi(e));
  return std::chrono::minutes(15);
}
// Qemu's start to the agent's answer. Under TCG on a busy 2-core host a
// Debian boot reaches the agent in 15-70 s; a guest that takes longer is
// treated as stuck.
constexpr milliseconds kReadyTimeout = std::chrono::minutes(4);
// Waiting for the guest's boot to finish (systemctl is-system-running --wait).
constexpr milliseconds kBootTimeout = std::chrono::minutes(5);

std::string Label(size_t i, const tmpl::Step& s) {
  std::string l = "validate[" + std::to_string(i) + "]";
  if (!s.name.empty()) l += " '" + s.name + "'";
  return l + " (" + tmpl::StepTypeName(s.type()) + ")";
}

const std::map<std::string, std::string>& GuestEnv() {
  static const auto* env = new std::map<std::string, std::string>{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", "/root"},
      {"LANG", "C.UTF-8"},
      {"TERM", "dumb"},
      {"DEBIAN_FRONTEND", "noninteractive"}};
  return *env;
}

class Validator {
 public:
  Validator(Env& env, const tmpl::ImageTemplate& t, const ValidateOptions& o, RunLog& log)
      : env_(env),
        t_(t),
        o_(o),
        log_(log),
        deadline_us_(env.MonotonicMicros() + o.time_left.count() * 1000) {}

  ValidateResult Run();

 private:
  bool Cancelled() const { return o_.cancel != nullptr && o_.cancel->load(); }
  milliseconds Left() const {
    return milliseconds(std::max<int64_t>(0, (deadline_us_ - env_.MonotonicMicros()) / 1000));
  }
  Status OutOfTime(const std::string& what) const {
    return DeadlineExceededError("buildTimeoutInMinutes (" +
                                 std::to_string(t_.build_timeout_minutes) +
                                 " minutes) was reached " + what);
  }
  Status FetchInputs();
  Status WaitForBoot(vm::Vm& v);
  Status RunOne(vm::Vm& v, size_t i);
  void CopyConsole(const vm::Vm& v);

  Env& env_;
  const tmpl::ImageTemplate& t_;
  const ValidateOptions& o_;
  RunLog& log_;
  int64_t deadline_us_;
  std::vector<std::string> inputs_;  // per validator: fetched file, or ""
};

Status Validator::FetchInputs() {
  std::string dir = o_.run_dir + "/inputs";
  RETURN_IF_ERROR(env_.CreateDirs(dir));
  for (size_t i = 0; i < t_.validate.in_vm_validations.size(); ++i) {
    const tmpl::Step& s = t_.validate.in_vm_validations[i];
    std::string uri;
    std::optional<Sha256Digest> expected;
    if (const auto* sh = std::get_if<tmpl::ShellStep>(&s.spec)) {
      uri = sh->script_uri;
      expected = sh->sha256;
    } else if (const auto* f = std::get_if<tmpl::FileStep>(&s.spec)) {
      uri = f->source_uri;
      expected = f->sha256;
    } else {
      return FailedPreconditionError(Label(i, s) + " cannot run on a Linux image");
    }
    inputs_.emplace_back();
    if (uri.empty()) continue;
    auto got = FetchInput(env_, o_.template_dir, uri, expected,
                          dir + "/validate-" + std::to_string(i) + ".input");
    if (!got.ok()) return got.status().WithContext(Label(i, s));
    log_.Info("fetched " + uri + " for " + Label(i, s) + ": " + std::to_string(got->bytes) +
              " bytes, sha256 " + got->digest.ToHex() +
              (expected ? " (matches sha256Checksum)" : ""));
    inputs_.back() = got->path;
  }
  return Status::Ok();
}

Status Validator::WaitForBoot(vm::Vm& v) {
  // Validators see the system as a user would: booted, with its services
  // (nginx, ...) started. "degraded" (a unit failed) still runs them; the
  // failed units are listed in the log.
  vm::ExecRequest req;
  req.argv = {"/bin/sh", "-c",
              "if ! command -v systemctl >/dev/null; then echo no-systemd; exit 0; fi; "
              "state=$(systemctl is-system-running --wait); echo \"$state\"; "
              "if [ \"$state\" = degraded ]; then systemctl --failed --no-legend --plain; fi; "
              "case $state in running|degraded) exit 0;; *) exit 1;; esac"};
  req.env = GuestEnv();
  req.timeout = std::min(kBootTimeout, Left());
  req.on_line = [this](std::string_view line, bool is_stderr) {
    log_.Output("boot", line, is_stderr);
  };
  int64_t t0 = env_.MonotonicMicros();
  auto r = v.agent().Exec(req, deadline_us_, [this] { return Cancelled(); });
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kCancelled)
      return CancelledError("the build was canceled");
    return r.status().WithContext("waiting for the guest to finish booting");
  }
  // Where the boot's time went, for whoever wonders why validation is slow:
  // systemd's one-line summary costs ~0.1 s under TCG. When the boot did not
  // finish, what it still waits for; and the slowest units (blame costs
  // ~3 s under TCG, so only then).
  auto diagnose = [&](const std::string& tag, const std::string& command) {
    vm::ExecRequest d;
    d.argv = {"/bin/sh", "-c", command};
    d.env = GuestEnv();
    d.timeout = seconds(30);
    d.on_line = [this, tag](std::string_view line, bool is_stderr) {
      log_.Output(tag, line, is_stderr);
    };
    (void)v.agent().Exec(d, deadline_us_, [this] { return Cancelled(); });
  };
  char buf[96];
  std::snprintf(buf, sizeof buf, "guest boot finished after another %.1f s",
                static_cast<double>(env_.MonotonicMicros() - t0) / 1e6);
  if (!r->success()) {
    diagnose("boot:pending", "systemctl list-jobs --no-pager 2>&1 | head -n 20");
    diagnose("boot:slowest", "systemd-analyze blame --no-pager 2>&1 | head -n 10");
    return UnavailableError("the guest's boot did not finish: systemctl is-system-running " +
                            r->Describe(req.timeout) +
                            " (see the [boot] lines and the console in " + log_.path() + ")");
  }
  log_.Info(buf);
  diagnose("boot:time", "systemd-analyze time --no-pager 2>/dev/null | head -n 1");
  return Status::Ok();
}

Status Validator::RunOne(vm::Vm& v, size_t i) {
  const tmpl::Step& s = t_.validate.in_vm_validations[i];
  std::string label = Label(i, s);
  std::string tag = "validate[" + std::to_string(i) + "]";
  log_.Header(label);
  if (Cancelled()) return CancelledError("the build was canceled");
  milliseconds left = Left();
  if (left.count() <= 0) return OutOfTime("before " + label);
  int64_t put_deadline = std::min(deadline_us_, env_.MonotonicMicros() + 300000000);

  vm::ExecRequest req;
  req.env = GuestEnv();
  req.cwd = "/root";
  req.timeout = std::min(ValidatorTimeout(), left);
  req.on_line = [this, tag](std::string_view line, bool is_stderr) {
    log_.Output(tag, line, is_stderr);
  };
  std::string guest_script = "/run/imagesmith-validate-" + std::to_string(i);
  if (const auto* f = std::get_if<tmpl::FileStep>(&s.spec)) {
    ASSIGN_OR_RETURN(std::string data, env_.ReadFile(inputs_[i], kMaxInputBytes));
    Status put = v.agent().Put(f->destination, data, 0644, put_deadline);
    if (!put.ok()) return AbortedError(label + " failed: " + put.message());
    log_.Info(label + " copied " + std::to_string(data.size()) + " bytes to " + f->destination);
    return Status::Ok();
  }
  const auto& sh = std::get<tmpl::ShellStep>(s.spec);
  std::string script;
  if (sh.script_uri.empty()) {
    script = Join(sh.inline_commands, "\n") + "\n";
    log_.Info("inline commands:");
    for (const std::string& c : sh.inline_commands) log_.Info("  " + c);
    req.argv = {"/bin/sh", "-e", guest_script};
  } else {
    ASSIGN_OR_RETURN(script, env_.ReadFile(inputs_[i], kMaxInputBytes));
    // The #! line is honoured by starting its interpreter ourselves, as the
    // kernel would ("#!/bin/bash -e" -> /bin/bash -e SCRIPT), because /run
    // is mounted noexec on Debian.
    req.argv = {"/bin/sh", guest_script};
    if (script.size() >= 2 && script[0] == '#' && script[1] == '!') {
      std::string line(TrimWhitespace(script.substr(2, script.find('\n') - 2)));
      size_t sp = line.find_first_of(" \t");
      if (!line.empty()) {
        req.argv = {line.substr(0, sp)};
        if (sp != std::string::npos) {
          std::string arg(TrimWhitespace(line.substr(sp)));
          if (!arg.empty()) req.argv.push_back(arg);
        }
        req.argv.push_back(guest_script);
      }
    }
  }
  Status put = v.agent().Put(guest_script, script, 0755, put_deadline);
  if (!put.ok()) return put.WithContext(label);
  int64_t t0 = env_.MonotonicMicros();
  auto r = v.agent().Exec(req, deadline_us_, [this] { return Cancelled(); });
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kCancelled)
      return CancelledError("the build was canceled");
    return r.status().WithContext(label);
  }
  char took[32];
  std::snprintf(took, sizeof took, " (%.1f s)",
                static_cast<double>(env_.MonotonicMicros() - t0) / 1e6);
  std::string how = r->Describe(req.timeout);
  log_.Info(label + " ended: " + how + took);
  if (r->success()) return Status::Ok();
  if (r->timed_out && req.timeout < ValidatorTimeout()) {
    return OutOfTime("while " + label + " ran; it was killed");
  }
  return AbortedError(label + " failed: " + how + " (its output is in " + log_.path() + ")");
}

void Validator::CopyConsole(const vm::Vm& v) {
  auto text = env_.ReadFile(v.console_path(), 64 << 20);
  if (!text.ok()) return;
  log_.Info("serial console of the validation VM:");
  for (std::string line : Split(*text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) log_.Output("console", line, false);
  }
}

ValidateResult Validator::Run() {
  ValidateResult out;
  std::string work = o_.run_dir + "/validate";
  auto finish = [&](Status s) {
    out.status = s;
    bool keep = !s.ok() && s.code() != StatusCode::kCancelled &&
                t_.error_handling.on_validation_error == tmpl::ErrorAction::kAbort;
    if (keep) {
      out.kept_dir = work;
      log_.Info(
          "errorHandling.onValidationError is abort: the validation VM's overlay and "
          "console are kept in " +
          work);
    } else {
      (void)env_.RemoveAll(work);
    }
    return out;
  };
  Status f = FetchInputs();
  if (!f.ok()) return finish(f);
  (void)env_.RemoveAll(work);
  Status s = env_.CreateDirs(work);
  if (!s.ok()) return finish(s);

  vm::VmConfig c;
  c.disk = o_.disk;
  c.accel_cache = o_.accel_cache;
  c.ssh_keys_cache = o_.ssh_keys_cache;
  c.firmware = o_.uefi ? vm::Firmware::kUefi : vm::Firmware::kBios;
  c.work_dir = work;
  c.cpus = o_.cpus;
  c.memory_mb = o_.memory_mb;
  c.ready_timeout = std::min(kReadyTimeout, Left());
  c.lifetime = Left() + seconds(30);
  c.cancel = o_.cancel;
  c.progress = [this](std::string_view line) { log_.Info("vm: " + std::string(line)); };
  if (c.ready_timeout.count() <= 0) return finish(OutOfTime("before the validation VM started"));
  auto started = vm::Vm::Start(env_, c);
  if (!started.ok()) {
    Status e = started.status();
    if (e.code() == StatusCode::kDeadlineExceeded && c.ready_timeout < kReadyTimeout) {
      e = OutOfTime("while the validation VM booting: " + e.message());
    }
    log_.Info("validation VM: " + e.message());
    return finish(e.WithContext("validate"));
  }
  vm::Vm& v = **started;
  Status result = WaitForBoot(v);
  if (result.ok()) CrashPoint("build.validate.booted");  // qemu is running
  for (size_t i = 0; result.ok() && i < t_.validate.in_vm_validations.size(); ++i) {
    result = RunOne(v, i);
  }
  Status down = v.Shutdown();
  if (!down.ok()) log_.Info("validation VM shutdown: " + down.message());
  CopyConsole(v);
  started->reset();  // qemu is gone before the overlay is removed
  if (result.ok()) {
    log_.Info("validation passed: " + std::to_string(t_.validate.in_vm_validations.size()) +
              " validator(s)");
  }
  return finish(result);
}

}  // namespace

ValidateResult RunValidation(Env& env, const tmpl::ImageTemplate& t, const ValidateOptions& options,
                             RunLog& log) {
  Validator v(env, t, options, log);
  return v.Run();
}

}  // namespace imagesmith::build
