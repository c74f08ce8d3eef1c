// The POSIX Env. Child processes are started with posix_spawn in a new process
// group so a timeout can kill everything they started.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

#include "base/env.h"

extern char** environ;

namespace imagesmith {

std::string ProcessResult::Describe() const {
  if (timed_out) return "timed out and was killed";
  if (term_signal != 0) {
    return std::string("killed by signal ") + std::to_string(term_signal) + " (" +
           strsignal(term_signal) + ")";
  }
  return "exit status " + std::to_string(exit_code);
}

StatusOr<std::string> SelfExePath() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ErrnoError("readlink /proc/self/exe", errno);
  return std::string(buf, static_cast<size_t>(n));
}

std::string Dirname(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (!b.empty() && b[0] == '/') return std::string(b);
  if (a.empty()) return std::string(b);
  std::string out(a);
  if (out.back() != '/') out.push_back('/');
  out += b;
  return out;
}

namespace {

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

Status RemoveTree(int parent_fd, const std::string& name, const std::string& display,
                  dev_t root_dev) {
  struct stat st {};
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoError("stat " + display, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != root_dev) {
      return FailedPreconditionError("refusing to remove " + display +
                                     ": it is on another filesystem (still mounted?)");
    }
    int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open " + display, errno);
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      ::close(fd);
      return ErrnoError("opendir " + display, errno);
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dir)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    Status status;
    for (const std::string& n : names) {
      status = RemoveTree(::dirfd(dir), n, display + "/" + n, root_dev);
      if (!status.ok()) break;
    }
    ::closedir(dir);
    RETURN_IF_ERROR(status);
    if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return ErrnoError("rmdir " + display, errno);
    }
    return Status::Ok();
  }
  if (::unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoError("unlink " + display, errno);
  }
  return Status::Ok();
}

class PosixEnv final : public Env {
 public:
  StatusOr<std::string> ReadFile(const std::string& path, uint64_t max_bytes) override {
    FdCloser fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoError(path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoError(path, errno);
    if (S_ISDIR(st.st_mode)) return InvalidArgumentError(path + ": is a directory, not a file");
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes) {
      return ResourceExhaustedError(path + ": file is " + std::to_string(st.st_size) +
                                    " bytes; the limit is " + std::to_string(max_bytes));
    }
    std::string out;
    char buf[65536];
    while (true) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("read " + path, errno);
      }
      if (n == 0) break;
      if (out.size() + static_cast<size_t>(n) > max_bytes) {
        return ResourceExhaustedError(path + ": more than " + std::to_string(max_bytes) +
                                      " bytes; the limit is " + std::to_string(max_bytes));
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    FdCloser fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return ErrnoError("create " + tmp, errno);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::unlink(tmp.c_str());
        return ErrnoError("write " + tmp, err);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoError("fsync " + tmp, err);
    }
    ::close(fd.release());
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoError("rename to " + path, err);
    }
    return Status::Ok();
  }

  bool FileExists(const std::string& path) override {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
  }

  bool IsDirectory(const std::string& path) override {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Status CreateDirs(const std::string& path) override {
    if (path.empty()) return InvalidArgumentError("CreateDirs: empty path");
    std::string partial;
    for (const std::string& part : SplitPath(path)) {
      partial += part;
      if (!partial.empty() && partial != "/") {
        if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
          return ErrnoError("mkdir " + partial, errno);
        }
      }
      if (partial.back() != '/') partial.push_back('/');
    }
    if (!IsDirectory(path)) return FailedPreconditionError(path + " exists and is not a directory");
    return Status::Ok();
  }

  StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return ErrnoError(path, errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(dir)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status RemoveAll(const std::string& path) override {
    std::string parent = Dirname(path);
    FdCloser pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (pfd.get() < 0) {
      if (errno == ENOENT) return Status::Ok();
      return ErrnoError(parent, errno);
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return ErrnoError(path, errno);
    }
    return RemoveTree(pfd.get(), Basename(path), path, st.st_dev);
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoError("rename " + from + " to " + to, errno);
    }
    return Status::Ok();
  }

  int64_t NowMicros() override {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  }

  int64_t MonotonicMicros() override {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  }

  void SleepFor(std::chrono::milliseconds d) override { std::this_thread::sleep_for(d); }

  StatusOr<ProcessResult> RunProcess(const ProcessOptions& options) override;

 private:
  static std::vector<std::string> SplitPath(const std::string& path) {
    std::vector<std::string> parts;
    if (path[0] == '/') parts.emplace_back("/");
    size_t start = 0;
    while (start < path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      if (slash > start) parts.push_back(path.substr(start, slash - start));
      start = slash + 1;
    }
    return parts;
  }
};

// Accumulates a stream, bounded, and splits it into lines for the callback.
struct StreamState {
  int fd = -1;
  bool is_stderr = false;
  std::string* sink = nullptr;
  std::string partial;
};

StatusOr<ProcessResult> PosixEnv::RunProcess(const ProcessOptions& options) {
  if (options.argv.empty()) return InvalidArgumentError("RunProcess: empty argv");
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  FdCloser in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  FdCloser out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  FdCloser err_r(err_pipe[0]), err_w(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  if (!options.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_dir.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  sigaddset(&default_signals, SIGINT);
  sigaddset(&default_signals, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    std::string key(kv.substr(0, kv.find('=')));
    if (options.extra_env.count(key) == 0) env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : options.extra_env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = options.argv;
  std::vector<char*> argv;
  for (std::string& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError("cannot start " + options.argv[0], rc);
  ::close(in_r.release());
  ::close(out_w.release());
  ::close(err_w.release());

  ProcessResult result;
  // Feed stdin without blocking on a child that never reads it.
  std::string_view pending_in = options.stdin_data;
  int in_fd = in_w.release();
  if (pending_in.empty()) {
    ::close(in_fd);
    in_fd = -1;
  } else {
    ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }

  StreamState streams[2] = {{out_r.get(), false, &result.stdout_data, {}},
                            {err_r.get(), true, &result.stderr_data, {}}};
  const int64_t start = MonotonicMicros();
  const int64_t limit_us = options.timeout.count() * 1000;
  bool killed = false;
  auto flush_lines = [&](StreamState& s, bool final) {
    if (!options.on_line) return;
    size_t nl;
    while ((nl = s.partial.find('\n')) != std::string::npos) {
      options.on_line(std::string_view(s.partial).substr(0, nl), s.is_stderr);
      s.partial.erase(0, nl + 1);
    }
    if (final && !s.partial.empty()) {
      options.on_line(s.partial, s.is_stderr);
      s.partial.clear();
    }
  };

  while (streams[0].fd >= 0 || streams[1].fd >= 0) {
    pollfd fds[3];
    int n = 0;
    int idx[3];
    for (int i = 0; i < 2; ++i) {
      if (streams[i].fd >= 0) {
        fds[n] = {streams[i].fd, POLLIN, 0};
        idx[n++] = i;
      }
    }
    if (in_fd >= 0) {
      fds[n] = {in_fd, POLLOUT, 0};
      idx[n++] = 2;
    }
    int wait_ms = 200;
    if (limit_us > 0) {
      int64_t left = limit_us - (MonotonicMicros() - start);
      if (left <= 0) {
        ::kill(-pid, SIGKILL);
        killed = true;
        result.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(std::min<int64_t>(left / 1000 + 1, 200));
    }
    int pr = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (pr < 0 && errno != EINTR) return ErrnoError("poll", errno);
    for (int k = 0; k < n && pr > 0; ++k) {
      if (fds[k].revents == 0) continue;
      if (idx[k] == 2) {
        ssize_t w = ::write(in_fd, pending_in.data(), pending_in.size());
        if (w > 0) pending_in.remove_prefix(static_cast<size_t>(w));
        if (w < 0 && errno != EAGAIN && errno != EINTR) pending_in = {};
        if (pending_in.empty()) {
          ::close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      StreamState& s = streams[idx[k]];
      char buf[65536];
      ssize_t r = ::read(s.fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        s.fd = -1;  // closed by FdCloser below
        flush_lines(s, true);
        continue;
      }
      size_t room = options.max_capture_bytes > s.sink->size()
                        ? options.max_capture_bytes - s.sink->size()
                        : 0;
      size_t take = std::min(room, static_cast<size_t>(r));
      if (take < static_cast<size_t>(r)) result.output_truncated = true;
      s.sink->append(buf, take);
      if (options.on_line) {
        s.partial.append(buf, static_cast<size_t>(r));
        flush_lines(s, false);
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);

  int status = 0;
  while (true) {
    pid_t w = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return ErrnoError("waitpid", errno);
    if (w == 0) {
      // Output closed but the child has not exited yet; keep honouring the deadline.
      if (limit_us > 0 && MonotonicMicros() - start >= limit_us) {
        ::kill(-pid, SIGKILL);
        killed = true;
        result.timed_out = true;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (killed) ::kill(-pid, SIGKILL);  // anything left in the group
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

}  // namespace imagesmith
