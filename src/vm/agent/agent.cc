// imagesmith-agent: the guest side of in-VM validation and the fleet's node
// agent. imagesmith places this static binary (and a systemd unit that
// starts it early in boot) in the overlay of a validation VM or a node. It
// serves the frames of doc/agent-protocol.md on every virtio-serial port
// whose name starts with proto::kPortPrefix: say hello and what the guest
// is, run a command (streaming its output), copy a file in, power off.
//
// The first process is a supervisor: it finds the ports and forks one
// server per port (and again when a server dies). Each server is
// single-threaded and serves one request at a time, so a node runs as many
// tasks at once as it has ports. It depends on nothing but libc so that it
// runs on any x86-64 Linux image when linked statically.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vm/protocol.h"

namespace proto = imagesmith::vm::proto;

namespace {

int g_port = -1;

void Log(const std::string& s) {
  // The kernel log reaches the serial console even with `quiet` off; stderr
  // goes to the journal. Both help when the agent cannot talk to the host.
  std::string line = "imagesmith-agent: " + s + "\n";
  (void)!write(2, line.data(), line.size());
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        if (errno == EAGAIN) usleep(1000);
        continue;
      }
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void Send(proto::Type type, const std::string& payload) {
  std::string f = proto::EncodeFrame(type, payload);
  if (!WriteAll(g_port, f.data(), f.size())) Log(std::string("write to port: ") + strerror(errno));
}

void SendError(uint32_t id, const std::string& msg) {
  Send(proto::Type::kError, proto::Writer().U32(id).Str(msg).data());
}

// Finds our ports: /sys/class/virtio-ports/vportNpM/name starts with
// kPortPrefix. Returns "name=/dev/vportNpM" entries. The device node
// /dev/vportNpM comes from devtmpfs, so this works before udev has made the
// /dev/virtio-ports/ symlinks.
std::vector<std::string> FindPorts() {
  std::vector<std::string> found;
  DIR* d = opendir("/sys/class/virtio-ports");
  if (d == nullptr) return found;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string p = std::string("/sys/class/virtio-ports/") + e->d_name + "/name";
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[128] = {};
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    std::string name(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\0')) name.pop_back();
    if (name.rfind(proto::kPortPrefix, 0) == 0 && name.find('=') == std::string::npos) {
      found.push_back(name + "=/dev/" + e->d_name);
    }
  }
  closedir(d);
  return found;
}

std::string ReadSmallFile(const char* path, size_t max) {
  std::string out;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  while (out.size() < max) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (out.size() > max) out.resize(max);
  return out;
}

void Info(proto::Reader& r) {
  uint32_t id = 0;
  if (!(r.U32(&id) && r.done())) return SendError(id, "malformed info request");
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string os = ReadSmallFile("/etc/os-release", 64 << 10);
  if (os.empty()) os = ReadSmallFile("/usr/lib/os-release", 64 << 10);
  Send(proto::Type::kInfoReply, proto::Writer().U32(id).Str(host).Str(os).data());
}

uint64_t UptimeMs() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint64_t MonoMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void Exec(proto::Reader& r) {
  uint32_t id = 0, timeout_ms = 0, argc = 0, envc = 0;
  std::vector<std::string> args, envs;
  std::string cwd;
  bool ok = r.U32(&id) && r.U32(&timeout_ms) && r.U32(&argc) && argc > 0 && argc < 4096;
  for (uint32_t i = 0; ok && i < argc; ++i) ok = r.Str(&args.emplace_back());
  ok = ok && r.U32(&envc) && envc < 4096;
  for (uint32_t i = 0; ok && i < envc; ++i) ok = r.Str(&envs.emplace_back());
  ok = ok && r.Str(&cwd) && r.done();
  if (!ok) return SendError(id, "malformed exec request");

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return SendError(id, std::string("pipe: ") + strerror(errno));
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  // PATH for execvpe comes from the request's environment.
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : envs) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  pid_t pid = fork();
  if (pid < 0) return SendError(id, std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    signal(SIGPIPE, SIG_DFL);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      dprintf(2, "imagesmith-agent: cannot enter %s: %s\n", cwd.c_str(), strerror(errno));
      _exit(126);
    }
    setenv("PATH", path.c_str(), 1);  // for execvpe's search only
    execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    dprintf(2, "imagesmith-agent: %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  close(out[1]);
  close(err[1]);
  uint64_t start = MonoMs();
  bool timed_out = false, exited = false;
  int status = 0;
  int fds[2] = {out[0], err[0]};
  bool open_fd[2] = {true, true};
  char buf[proto::kMaxChunk];
  while (open_fd[0] || open_fd[1] || !exited) {
    pollfd p[2];
    int np = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (open_fd[i]) {
        p[np] = {fds[i], POLLIN, 0};
        which[np++] = i;
      }
    }
    int n = poll(p, static_cast<nfds_t>(np), 100);
    for (int k = 0; n > 0 && k < np; ++k) {
      if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      int i = which[k];
      ssize_t got = read(fds[i], buf, sizeof(buf));
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        open_fd[i] = false;
        close(fds[i]);
        continue;
      }
      Send(i == 0 ? proto::Type::kStdout : proto::Type::kStderr,
           proto::Writer().U32(id).Raw(std::string_view(buf, static_cast<size_t>(got))).data());
    }
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      // Background processes the command left behind die with it, so
      // their pipes close and the next request starts clean.
      kill(-pid, SIGKILL);
    }
    if (!exited && timeout_ms > 0 && MonoMs() - start >= timeout_ms) {
      timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
    }
  }
  int code = -1, sig = 0;
  if (WIFEXITED(status)) code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) sig = WTERMSIG(status);
  Send(proto::Type::kExit, proto::Writer().U32(id).I32(code).I32(sig).U8(timed_out ? 1 : 0).data());
}

// The file being copied in (kPutBegin .. kPutEnd).
struct Put {
  uint32_t id = 0;
  int fd = -1;
  std::string path, tmp;
  std::string error;  // the first error; reported at kPutEnd
  bool active = false;
} g_put;

void PutBegin(proto::Reader& r) {
  uint32_t id = 0, mode = 0;
  std::string path;
  if (!(r.U32(&id) && r.U32(&mode) && r.Str(&path) && r.done())) {
    return SendError(id, "malformed put-begin request");
  }
  if (g_put.fd >= 0) close(g_put.fd);
  g_put = Put();
  g_put.id = id;
  g_put.active = true;
  g_put.path = path;
  if (path.empty() || path[0] != '/') {
    g_put.error = "the destination '" + path + "' is not an absolute path";
    return;
  }
  std::string dir = path.substr(0, path.rfind('/'));
  struct stat st {};
  if (!dir.empty() && (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    g_put.error = "the destination folder " + dir + " does not exist";
    return;
  }
  g_put.tmp = path + ".imagesmith-tmp";
  g_put.fd = open(g_put.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
  if (g_put.fd < 0) g_put.error = "open " + g_put.tmp + ": " + strerror(errno);
}

void PutData(proto::Reader& r) {
  uint32_t id = 0;
  if (!r.U32(&id)) return SendError(0, "malformed put-data request");
  std::string_view data = r.Rest();
  if (!g_put.active || id != g_put.id) return SendError(id, "put-data without put-begin");
  if (g_put.fd < 0 || !g_put.error.empty()) return;
  if (!WriteAll(g_put.fd, data.data(), data.size())) {
    g_put.error = "write " + g_put.tmp + ": " + strerror(errno);
  }
}

void PutEnd(proto::Reader& r) {
  uint32_t id = 0;
  if (!(r.U32(&id) && r.done())) return SendError(id, "malformed put-end request");
  if (!g_put.active || id != g_put.id) return SendError(id, "put-end without put-begin");
  if (g_put.fd >= 0) {
    if (g_put.error.empty() && fsync(g_put.fd) != 0)
      g_put.error = "fsync: " + std::string(strerror(errno));
    close(g_put.fd);
    if (g_put.error.empty() && rename(g_put.tmp.c_str(), g_put.path.c_str()) != 0) {
      g_put.error = "rename to " + g_put.path + ": " + strerror(errno);
    }
    if (!g_put.error.empty()) unlink(g_put.tmp.c_str());
  }
  std::string error = g_put.error;
  g_put = Put();
  if (error.empty()) {
    Send(proto::Type::kOk, proto::Writer().U32(id).data());
  } else {
    SendError(id, error);
  }
}

void Handle(proto::Type type, const std::string& payload) {
  proto::Reader r(payload);
  switch (type) {
    case proto::Type::kHello:
      Send(proto::Type::kReady, proto::Writer()
                                    .U32(proto::kProtocolVersion)
                                    .U64(UptimeMs())
                                    .Str("imagesmith-agent 1")
                                    .data());
      return;
    case proto::Type::kInfo:
      return Info(r);
    case proto::Type::kExec:
      return Exec(r);
    case proto::Type::kPutBegin:
      return PutBegin(r);
    case proto::Type::kPutData:
      return PutData(r);
    case proto::Type::kPutEnd:
      return PutEnd(r);
    case proto::Type::kPowerOff: {
      uint32_t id = 0;
      (void)r.U32(&id);
      Send(proto::Type::kOk, proto::Writer().U32(id).data());
      sync();
      reboot(RB_POWER_OFF);
      return SendError(id, std::string("power off: ") + strerror(errno));
    }
    default: {
      uint32_t id = 0;
      (void)r.U32(&id);
      return SendError(id, "unknown message type " + std::to_string(static_cast<int>(type)));
    }
  }
}

}  // namespace

namespace {

// Serves one port until the process dies.
[[noreturn]] void Serve(const std::string& port) {
  Log("serving on " + port);
  proto::Decoder dec;
  uint64_t skip = 0;  // bytes of an oversize frame still to discard
  static char buf[64 << 10];
  for (;;) {
    ssize_t n = read(g_port, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // No host connected (EOF) or a transient error: wait for it.
      usleep(50000);
      continue;
    }
    size_t off = 0;
    if (skip > 0) {
      size_t s =
          skip < static_cast<uint64_t>(n) ? static_cast<size_t>(skip) : static_cast<size_t>(n);
      skip -= s;
      off = s;
    }
    dec.Feed(buf + off, static_cast<size_t>(n) - off);
    proto::Type type{};
    std::string payload;
    uint32_t bad = 0;
    for (;;) {
      proto::Decoder::Result res = dec.Next(&type, &payload, &bad);
      if (res == proto::Decoder::kNeedMore) break;
      if (res == proto::Decoder::kOversize) {
        size_t buffered = dec.Reset();  // includes the 4 length bytes
        uint64_t body_left = bad + 4ull;
        skip = body_left > buffered ? body_left - buffered : 0;
        SendError(0, "frame body of " + std::to_string(bad) + " bytes is outside 1.." +
                         std::to_string(proto::kMaxFrameBody));
        break;
      }
      Handle(type, payload);
    }
  }
}

}  // namespace

int main() {
  signal(SIGPIPE, SIG_IGN);
  // The supervisor: one server process per port, started when the port
  // appears and again when its server dies (a server only ends by a crash).
  std::vector<std::pair<std::string, pid_t>> servers;  // "name=/dev/vportNpM", pid
  for (int i = 0;; ++i) {
    for (const std::string& entry : FindPorts()) {
      bool served = false;
      for (auto& [name, pid] : servers) served = served || name == entry;
      if (served) continue;
      std::string dev = entry.substr(entry.find('=') + 1);
      int fd = open(dev.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) continue;
      pid_t pid = fork();
      if (pid == 0) {
        g_port = fd;
        Serve(entry);
      }
      close(fd);
      if (pid > 0) servers.emplace_back(entry, pid);
    }
    int status = 0;
    for (pid_t dead; (dead = waitpid(-1, &status, WNOHANG)) > 0;) {
      for (size_t k = 0; k < servers.size(); ++k) {
        if (servers[k].second == dead) {
          Log("the server of " + servers[k].first + " ended; starting it again");
          servers.erase(servers.begin() + static_cast<long>(k));
          break;
        }
      }
    }
    if (i == 0 && servers.empty()) {
      // virtio_console is a module in Debian's kernels; udev loads it only
      // at coldplug, seconds later. Load it now instead.
      pid_t m = fork();
      if (m == 0) {
        char* const args[] = {const_cast<char*>("modprobe"), const_cast<char*>("-q"),
                              const_cast<char*>("virtio_console"), nullptr};
        char* const envp[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};
        execve("/sbin/modprobe", args, envp);
        execve("/usr/sbin/modprobe", args, envp);
        _exit(127);
      }
      if (m > 0) waitpid(m, nullptr, 0);
      continue;
    }
    if (servers.empty() && i % 200 == 0) {
      Log("waiting for the virtio-serial port " + std::string(proto::kPortName));
    }
    // Ports come within moments of each other; after the first second the
    // supervisor only looks for dead servers and late ports now and then.
    usleep(servers.empty() || i < 50 ? 20000 : 500000);
  }
}
