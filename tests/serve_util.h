// `imagesmith serve` as a child process for end-to-end tests: started on
// port 0 in a fresh data directory, with the address it printed, stopped
// with a signal, and its exit status.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace imagesmith::e2e {

// The data directory's owner's bearer token (account get-access-token); "" if none.
std::string OwnerToken(const std::string& home);

class ServeProcess {
 public:
  // Starts `imagesmith serve --listen 127.0.0.1:0 EXTRA...` with IMAGESMITH_HOME=home and waits
  // for the line it prints when ready (ok() is false if it exits first).
  ServeProcess(const std::string& home, const std::vector<std::string>& extra = {},
               const std::map<std::string, std::string>& env = {});
  ~ServeProcess();  // SIGKILL if still running
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  bool ok() const { return !address_.empty(); }
  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  const std::string& ready_line() const { return ready_; }
  int pid() const { return pid_; }
  // Sends `sig`; then Wait returns the exit code (128+N for a signal), or -1 on timeout.
  void Signal(int sig);
  int Wait(int timeout_ms = 30000);
  // What it wrote on stderr so far (the access log unless --access-log).
  std::string Stderr() const;

 private:
  int pid_ = -1;
  std::string address_;
  std::string ready_;
  std::string stderr_path_;
  bool exited_ = false;
  int exit_code_ = -1;
};

}  // namespace imagesmith::e2e
