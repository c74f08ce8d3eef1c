#include "serve_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "e2e_util.h"

namespace imagesmith::e2e {

std::string OwnerToken(const std::string& home) {
  // The owner's token, as `account get-access-token` prints it.
  CliResult r = RunCli({"account", "get-access-token"}, "", {{"IMAGESMITH_HOME", home}});
  size_t key = r.out.find("\"accessToken\"");
  if (r.exit_code == 0 && key != std::string::npos) {
    size_t start = r.out.find('"', r.out.find(':', key)) + 1;
    return r.out.substr(start, r.out.find('"', start) - start);
  }
  return "";
}

ServeProcess::ServeProcess(const std::string& home, const std::vector<std::string>& extra,
                           const std::map<std::string, std::string>& env) {
  stderr_path_ = home + "/serve-stderr." + std::to_string(::getpid()) + "." +
                 std::to_string(reinterpret_cast<uintptr_t>(this));
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return;
  std::vector<std::string> args = {IMAGESMITH_BINARY, "serve", "--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], 1);
    int err = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(err, 2);
    ::setenv("IMAGESMITH_HOME", home.c_str(), 1);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  ready_ = line.substr(0, line.find('\n'));
  size_t key = ready_.find("\"listen\":\"");
  if (key == std::string::npos) return;
  size_t start = key + 10;
  address_ = ready_.substr(start, ready_.find('"', start) - start);
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ::unlink(stderr_path_.c_str());
}

void ServeProcess::Signal(int sig) {
  if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

int ServeProcess::Wait(int timeout_ms) {
  if (exited_) return exit_code_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ServeProcess::Stderr() const { return ReadOrEmpty(stderr_path_); }

}  // namespace imagesmith::e2e
