// End-to-end tests of the sandbox on tiny busybox trees. They need root and
// /bin/busybox (Debian package busybox-static); CI runs them as root.
#include "sandbox/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/env.h"
#include "base/strings.h"
#include "sandbox/cgroup.h"
#include "sandbox/dns_relay.h"
#include "sandbox/isolation.h"

namespace imagesmith::sandbox {
namespace {

using std::chrono::milliseconds;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What a sandbox with network sees at /etc/resolv.conf on this host.
std::string ExpectedResolvConf() {
  std::string host = Slurp("/etc/resolv.conf");
  internal::ResolvConf parsed = internal::ParseResolvConf(host);
  return parsed.HasLoopbackServer() ? internal::RelayResolvConf(parsed) : host;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path);
  out << data;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Host processes whose command line contains `marker`.
std::vector<std::string> ProcessesWith(const std::string& marker) {
  std::vector<std::string> found;
  DIR* dir = ::opendir("/proc");
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = Slurp("/proc/" + name + "/cmdline");
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline.find(marker) != std::string::npos)
      found.push_back(std::string(name).append(": ").append(cmdline));
  }
  ::closedir(dir);
  return found;
}

// Cgroup directories this test process's sandboxes created (named
// imagesmith-sandbox-<pid>-<n>) that still exist.
std::vector<std::string> LeftoverCgroups() {
  std::vector<std::string> found;
  std::string prefix = "imagesmith-sandbox-" + std::to_string(::getpid()) + "-";
  std::function<void(const std::string&, int)> walk = [&](const std::string& dir, int depth) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (e->d_type != DT_DIR || name == "." || name == "..") continue;
      if (name.rfind(prefix, 0) == 0) found.push_back(JoinPath(dir, name));
      if (depth < 4) walk(JoinPath(dir, name), depth + 1);
    }
    ::closedir(d);
  };
  walk("/sys/fs/cgroup", 0);
  return found;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "the sandbox tests must run as root";
    ASSERT_TRUE(Exists("/bin/busybox")) << "install busybox-static";
    char tmpl[] = "/tmp/imagesmith-sandbox-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    lower_ = dir_ + "/lower";
    upper_ = dir_ + "/upper";
    work_ = dir_ + "/work";
    MakeBusyboxTree(lower_);
    ASSERT_TRUE(env_->CreateDirs(upper_).ok());
    ASSERT_TRUE(env_->CreateDirs(work_).ok());
  }
  void TearDown() override {
    EXPECT_EQ(LeftoverCgroups(), std::vector<std::string>{});
    std::string mounts = Slurp("/proc/self/mountinfo");
    EXPECT_EQ(mounts.find(dir_), std::string::npos) << mounts;
    EXPECT_EQ(mounts.find("/imagesmith-sandbox-" + std::to_string(::getpid())), std::string::npos);
    // No temporary mount points left either.
    auto tmp_entries = env_->ListDir("/tmp");
    ASSERT_TRUE(tmp_entries.ok());
    std::vector<std::string> names = tmp_entries.value();
    for (const std::string& name : names) {
      EXPECT_NE(name.rfind("imagesmith-sandbox-" + std::to_string(::getpid()) + "-", 0), 0u)
          << name;
    }
    ASSERT_TRUE(env_->RemoveAll(dir_).ok());
  }

  void MakeBusyboxTree(const std::string& root) {
    for (const char* d : {"bin", "proc", "dev", "sys", "tmp", "etc", "run", "root"}) {
      ASSERT_TRUE(env_->CreateDirs(root + "/" + d).ok());
    }
    ::chmod((root + "/tmp").c_str(), 01777);
    ProcessOptions cp;
    cp.argv = {"cp", "/bin/busybox", root + "/bin/busybox"};
    auto copy = env_->RunProcess(cp);
    ASSERT_TRUE(copy.ok() && copy->success());
    for (const char* applet :
         {"sh",    "ls",     "ps",      "cat",    "echo",  "sleep",    "hostname", "dd",   "head",
          "mkdir", "touch",  "rm",      "setsid", "env",   "grep",     "id",       "wc",   "kill",
          "test",  "ln",     "printf",  "true",   "false", "pwd",      "readlink", "stat", "chown",
          "mount", "swapon", "unshare", "nc",     "mknod", "nslookup", "timeout"}) {
      ASSERT_EQ(::symlink("busybox", (root + "/bin/" + applet).c_str()), 0) << applet;
    }
  }

  RunSpec Spec(std::vector<std::string> argv, bool writable = true) {
    RunSpec spec;
    spec.tree.layers = {lower_};
    if (writable) {
      spec.tree.upper = upper_;
      spec.tree.work = work_;
    }
    spec.argv = std::move(argv);
    spec.env = {{"PATH", "/bin"}};
    spec.control.timeout = milliseconds(60000);
    return spec;
  }
  RunSpec Shell(const std::string& script, bool writable = true) {
    return Spec({"sh", "-c", script}, writable);
  }

  Env* env_ = Env::Default();
  std::string dir_, lower_, upper_, work_;
};

TEST_F(SandboxTest, CommandSeesOnlyItsOwnPidNamespace) {
  std::string host_pid = std::to_string(::getpid());
  auto r =
      sandbox::Run(Shell("echo self=$$; ls /proc | grep -E '^[0-9]+$' | wc -l; "
                         "test -e /proc/" +
                         host_pid +
                         " && echo host-visible || echo host-hidden; "
                         "ps -o pid,args; true"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe() << r->stderr_data;
  std::istringstream out(r->stdout_data);
  std::string self, count, visible;
  std::getline(out, self);
  std::getline(out, count);
  std::getline(out, visible);
  EXPECT_EQ(self, "self=2");  // pid 1 is the sandbox's init
  // init, the shell, and the ls/grep/wc pipeline: a handful, not the host's hundreds.
  EXPECT_LE(std::stoi(count), 6) << r->stdout_data;
  if (::getpid() > 10) {
    EXPECT_EQ(visible, "host-hidden");
  }
  // ps: the header, init, the shell and ps -- nothing of the host's.
  std::string ps = r->stdout_data.substr(r->stdout_data.find("PID"));
  EXPECT_EQ(std::count(ps.begin(), ps.end(), '\n'), 4) << ps;
  EXPECT_NE(ps.find("    1 imagesmith-init\n"), std::string::npos) << ps;
  EXPECT_EQ(ps.find("sandbox_test"), std::string::npos) << ps;
}

TEST_F(SandboxTest, WritesLandInTheUpperDirAndNeverOutsideTheTree) {
  std::string outside = dir_ + "/outside";  // exists on the host, not in the tree
  ASSERT_TRUE(env_->CreateDirs(outside).ok());
  std::string escape = "imagesmith-escape-" + std::to_string(::getpid());
  auto r =
      sandbox::Run(Shell("echo 1 > /written; echo 2 > /tmp/written; "
                         "cd /tmp && echo 3 > ../../../../" +
                         escape +
                         "; "
                         "echo 4 > /tmp/../../../" +
                         escape +
                         "-b; "
                         "ln -s / /tmp/up && echo 5 > /tmp/up/../" +
                         escape +
                         "-c; "
                         "mkdir -p " +
                         outside + " && echo 6 > " + outside +
                         "/marker; "
                         "echo done"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe() << r->stderr_data;
  // Nothing outside the tree on the host.
  EXPECT_FALSE(Exists(outside + "/marker"));
  for (const std::string& name : {escape, escape + "-b", escape + "-c"}) {
    EXPECT_FALSE(Exists("/" + name)) << name;
    EXPECT_FALSE(Exists("/tmp/" + name)) << name;
  }
  // Everything in the upper dir; the lower layer untouched.
  EXPECT_EQ(Slurp(upper_ + "/written"), "1\n");
  EXPECT_EQ(Slurp(upper_ + "/tmp/written"), "2\n");
  EXPECT_EQ(Slurp(upper_ + "/" + escape), "3\n");
  EXPECT_EQ(Slurp(upper_ + "/" + escape + "-b"), "4\n");
  EXPECT_EQ(Slurp(upper_ + "/" + escape + "-c"), "5\n");
  EXPECT_EQ(Slurp(upper_ + outside + "/marker"), "6\n");
  EXPECT_FALSE(Exists(lower_ + "/written"));
  EXPECT_FALSE(Exists(lower_ + "/tmp/written"));
  // The sandbox's own mount points left nothing in the tree.
  EXPECT_FALSE(Exists(upper_ + "/run/imagesmith"));
  EXPECT_FALSE(Exists(upper_ + "/dev/null"));
}

TEST_F(SandboxTest, ReadOnlyTreeRejectsWrites) {
  auto r = sandbox::Run(Shell("echo x > /written", /*writable=*/false));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->exit_code, 0);
  EXPECT_NE(r->stderr_data.find("Read-only file system"), std::string::npos) << r->stderr_data;
  EXPECT_FALSE(Exists(lower_ + "/written"));
}

TEST_F(SandboxTest, SetsItsOwnHostnameWithoutChangingTheHosts) {
  char before[256] = {};
  ::gethostname(before, sizeof before);
  RunSpec spec = Spec({"hostname"});
  spec.hostname = "imagesmith-test-host";
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, "imagesmith-test-host\n");
  char after[256] = {};
  ::gethostname(after, sizeof after);
  EXPECT_STREQ(before, after);
}

TEST_F(SandboxTest, TimeoutKillsBackgroundAndDaemonizedProcesses) {
  // sleep arguments double as markers to find survivors on the host.
  RunSpec spec = Shell(
      "sleep 987651 & "
      "setsid sh -c 'sleep 987652 & sleep 987653 & exit 0' & "
      "(setsid sh -c '(sleep 987654 &) ; exit 0' &) ; "
      "echo started; sleep 987655");
  spec.control.timeout = milliseconds(1500);
  auto start = std::chrono::steady_clock::now();
  auto r = sandbox::Run(spec);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->success());
  EXPECT_EQ(r->Describe(), "timed out after 1.5s");
  EXPECT_EQ(r->stdout_data, "started\n");
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(ProcessesWith("98765"), std::vector<std::string>{});
}

TEST_F(SandboxTest, NormalExitAlsoKillsLeftoverBackgroundProcesses) {
  auto r = sandbox::Run(Shell("sleep 987661 & setsid sh -c 'sleep 987662 &' ; echo ok"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe();
  EXPECT_EQ(ProcessesWith("98766"), std::vector<std::string>{});
}

TEST_F(SandboxTest, CancelKillsEverythingWithinASecond) {
  std::atomic<bool> cancel{false};
  RunSpec spec = Shell("sleep 987671 & echo running; sleep 987672");
  spec.control.cancel = &cancel;
  std::chrono::steady_clock::time_point cancelled_at;
  spec.control.on_line = [&](std::string_view line, bool) {
    if (line == "running") {
      cancelled_at = std::chrono::steady_clock::now();
      cancel = true;
    }
  };
  auto r = sandbox::Run(spec);
  auto took = std::chrono::steady_clock::now() - cancelled_at;
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->Describe(), "cancelled");
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_EQ(ProcessesWith("98767"), std::vector<std::string>{});
}

TEST_F(SandboxTest, MemoryLimitKillsAnAllocatingProcess) {
  // busybox dd allocates its block buffer and fills it from /dev/zero.
  RunSpec spec = Spec({"dd", "if=/dev/zero", "of=/dev/null", "bs=512M", "count=1"});
  spec.control.limits.memory_bytes = 64 << 20;
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->oom_killed) << r->Describe() << r->stderr_data;
  EXPECT_EQ(r->term_signal, SIGKILL);
  EXPECT_EQ(r->Describe(), "killed by the memory limit (64 MiB)");

  // The same command fits without the limit.
  spec.control.limits.memory_bytes = 0;
  auto ok = sandbox::Run(spec);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->success()) << ok->Describe() << ok->stderr_data;
  EXPECT_FALSE(ok->oom_killed);
}

TEST_F(SandboxTest, ReportsExitCodesAndSignals) {
  auto r = sandbox::Run(Shell("exit 3"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->term_signal, 0);
  EXPECT_EQ(r->Describe(), "exit status 3");

  r = sandbox::Run(Shell("kill -TERM $$"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->term_signal, SIGTERM);
  EXPECT_EQ(r->Describe(), "killed by signal 15 (Terminated)");

  r = sandbox::Run(Spec({"no-such-command"}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 127);
  EXPECT_NE(r->stderr_data.find("no-such-command: command not found"), std::string::npos)
      << r->stderr_data;
}

TEST_F(SandboxTest, StreamsStdoutAndStderrAsLinesAndFeedsStdin) {
  RunSpec spec = Shell("echo one; echo two >&2; cat; printf tail");
  spec.control.stdin_data = "from stdin\n";
  std::vector<std::pair<std::string, bool>> lines;
  spec.control.on_line = [&](std::string_view line, bool is_stderr) {
    lines.emplace_back(std::string(line), is_stderr);
  };
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe();
  // stdout and stderr are two pipes, so only the order within each stream
  // is defined; which of "two" and "from stdin" arrives first is a race.
  std::vector<std::string> out, err;
  for (const auto& [line, is_stderr] : lines) (is_stderr ? err : out).push_back(line);
  EXPECT_EQ(out, (std::vector<std::string>{"one", "from stdin", "tail"}));
  EXPECT_EQ(err, (std::vector<std::string>{"two"}));
  EXPECT_EQ(r->stdout_data, "one\nfrom stdin\ntail");
  EXPECT_EQ(r->stderr_data, "two\n");
}

TEST_F(SandboxTest, EnvironmentIsExactlyWhatWasGiven) {
  RunSpec spec = Spec({"env"});
  spec.env = {{"PATH", "/bin"}, {"FOO", "bar"}};
  spec.sudo_shim = false;
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, "FOO=bar\nPATH=/bin\n");
}

TEST_F(SandboxTest, HostRunSeesTheMergedTreeWithWhiteouts) {
  // Layer 2 is a former upper dir: it deletes b.txt and adds c.txt.
  std::string l1 = dir_ + "/l1", l2 = dir_ + "/l2";
  ASSERT_TRUE(env_->CreateDirs(l1).ok());
  ASSERT_TRUE(env_->CreateDirs(l2).ok());
  WriteFile(l1 + "/a.txt", "a");
  WriteFile(l1 + "/b.txt", "b");
  WriteFile(l2 + "/c.txt", "c");
  ASSERT_EQ(::mknod((l2 + "/b.txt").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);
  std::string seen_path;
  HostRunOptions options;
  options.control.timeout = milliseconds(30000);
  auto r = RunHostWithTree({{l1, l2}, "", ""},
                           {"/bin/sh", "-c", "echo {tree}; ls {tree}; touch {tree}/new"}, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  size_t nl = r->stdout_data.find('\n');
  ASSERT_NE(nl, std::string::npos) << r->stdout_data;
  seen_path = r->stdout_data.substr(0, nl);
  std::string rest = r->stdout_data.substr(nl + 1);
  EXPECT_EQ(rest, "a.txt\nc.txt\n");
  EXPECT_NE(r->exit_code, 0) << "a read-only tree must reject writes";
  EXPECT_NE(r->stderr_data.find("Read-only file system"), std::string::npos) << r->stderr_data;
  EXPECT_FALSE(Exists(seen_path)) << "the temporary mount point must be removed";
  EXPECT_EQ(Slurp("/proc/self/mountinfo").find(seen_path), std::string::npos);

  // With an upper dir the host program writes into it.
  auto w = RunHostWithTree({{l1, l2}, upper_, work_}, {"touch", "{tree}/new"}, options);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->success()) << w->Describe() << w->stderr_data;
  EXPECT_TRUE(Exists(upper_ + "/new"));
  EXPECT_FALSE(Exists(l2 + "/new"));
}

// A template with hundreds of customizers makes a tree of hundreds of layers,
// with long paths: more than one page of overlay options if named by path.
// Every layer is still seen, in order (a higher layer's file wins), and the
// links the mount was made through are gone afterwards.
TEST_F(SandboxTest, TreeOfHundredsOfLongNamedLayersMounts) {
  RunSpec spec = Shell("ls /layers | wc -l; cat /top; cat /layers/f0 /layers/f299");
  std::string deep = dir_ + "/" + std::string(120, 'd');
  for (int i = 0; i < 300; ++i) {
    std::string layer = deep + "/layer-" + std::to_string(i);
    ASSERT_TRUE(env_->CreateDirs(layer + "/layers").ok());
    WriteFile(layer + "/layers/f" + std::to_string(i), std::to_string(i) + "\n");
    WriteFile(layer + "/top", "layer " + std::to_string(i) + "\n");
    spec.tree.layers.push_back(layer);
  }
  auto before = env_->ListDir("/tmp");
  ASSERT_TRUE(before.ok());
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe() << r->stderr_data;
  EXPECT_EQ(r->stdout_data, "300\nlayer 299\n0\n299\n");
  auto after = env_->ListDir("/tmp");
  ASSERT_TRUE(after.ok());
  // A link directory of this run would hold links into `deep`. Other tests
  // running at the same time may have link directories of their own there.
  for (const std::string& name : *after) {
    if (name.rfind("imagesmith-layers-", 0) != 0) continue;
    if (std::find(before->begin(), before->end(), name) != before->end()) continue;
    auto links = env_->ListDir("/tmp/" + name);
    if (!links.ok()) continue;  // another run's, gone already
    for (const std::string& link : *links) {
      char target[4096];
      ssize_t n = ::readlink(("/tmp/" + name + "/" + link).c_str(), target, sizeof(target));
      if (n <= 0) continue;
      EXPECT_NE(std::string(target, static_cast<size_t>(n)).rfind(deep, 0), 0u)
          << "left behind: /tmp/" << name << "/" << link;
    }
  }
  // overlayfs stacks at most 500 lower layers: past that, a clear error.
  spec.tree.layers.resize(501, spec.tree.layers.back());
  auto too_many = sandbox::Run(spec);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("overlayfs stacks at most 500"), std::string::npos)
      << too_many.status().ToString();
}

TEST_F(SandboxTest, HostResolvConfIsVisibleWithoutChangingTheTree) {
  ASSERT_FALSE(Slurp("/etc/resolv.conf").empty()) << "the host needs an /etc/resolv.conf";
  const std::string host = ExpectedResolvConf();
  // The tree has none: a placeholder is used for the mount and removed after.
  auto r = sandbox::Run(Spec({"cat", "/etc/resolv.conf"}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, host);
  EXPECT_FALSE(Exists(upper_ + "/etc/resolv.conf"));
  EXPECT_FALSE(Exists(lower_ + "/etc/resolv.conf"));

  // The tree has its own: it is shadowed read-only and left as it was.
  WriteFile(lower_ + "/etc/resolv.conf", "nameserver 192.0.2.1\n");
  r = sandbox::Run(Shell("cat /etc/resolv.conf; echo x >> /etc/resolv.conf"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, host);
  EXPECT_NE(r->exit_code, 0) << "the bound resolv.conf must be read-only";
  EXPECT_EQ(Slurp(lower_ + "/etc/resolv.conf"), "nameserver 192.0.2.1\n");
  EXPECT_FALSE(Exists(upper_ + "/etc/resolv.conf"));
}

TEST_F(SandboxTest, ResolvConfLinkedIntoRunAsWithSystemdResolvedStillResolves) {
  ASSERT_FALSE(Slurp("/etc/resolv.conf").empty()) << "the host needs an /etc/resolv.conf";
  const std::string host = ExpectedResolvConf();
  ASSERT_EQ(
      ::symlink("../run/systemd/resolve/stub-resolv.conf", (lower_ + "/etc/resolv.conf").c_str()),
      0);
  auto r = sandbox::Run(Spec({"cat", "/etc/resolv.conf"}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, host) << r->stderr_data;
  EXPECT_TRUE(r->notes.empty());
  // Nothing of it reaches the tree: /run is the sandbox's own tmpfs.
  EXPECT_FALSE(Exists(upper_ + "/run/systemd"));
  EXPECT_FALSE(Exists(lower_ + "/run/systemd"));
}

// A resolver on the host's loopback, as systemd-resolved's 127.0.0.53: every
// query gets the A record 192.0.2.7. Binds a loopback address other than
// 127.0.0.1 and .53 so that it never meets a real resolver on this host.
class LoopbackResolver {
 public:
  explicit LoopbackResolver(const char* address) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    ::inet_pton(AF_INET, address, &a.sin_addr);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackResolver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  bool bound() const { return bound_; }
  int queries() const { return queries_.load(); }

 private:
  void Serve() {
    while (!stop_) {
      unsigned char q[512];
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      ssize_t n = ::recvfrom(fd_, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&peer), &len);
      if (n < 17) continue;
      ++queries_;
      size_t end = 12;
      while (end < static_cast<size_t>(n) && q[end] != 0) end += q[end] + 1;
      end += 5;  // the root label, QTYPE, QCLASS
      if (end > static_cast<size_t>(n)) continue;
      std::string r(reinterpret_cast<char*>(q), end);
      r[2] = static_cast<char>(0x81);  // a response, recursion desired and available
      r[3] = static_cast<char>(0x80);
      r[6] = 0;  // one answer, nothing else
      r[7] = 1;
      r[8] = r[9] = r[10] = r[11] = 0;
      const unsigned char answer[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7};
      if (q[end - 4] == 0 && q[end - 3] == 1) {  // QTYPE A
        r.append(reinterpret_cast<const char*>(answer), sizeof answer);
      } else {
        r[7] = 0;
      }
      ::sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
    }
  }
  int fd_ = -1;
  bool bound_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

TEST(ResolvConfTest, ParsesNameserversAndKeepsSearchAndOptions) {
  internal::ResolvConf c = internal::ParseResolvConf(
      "# generated\nnameserver 127.0.0.53 # stub\nnameserver 10.0.0.2\n"
      "nameserver ::1\nnameserver 192.0.2.9\nnameserver bogus\n"
      "search corp.example lab.example\noptions edns0 trust-ad\nsortlist 10.0.0.0\n");
  ASSERT_EQ(c.servers.size(), 3u) << "glibc reads at most three";
  EXPECT_EQ(c.servers[0].text, "127.0.0.53");
  EXPECT_TRUE(c.servers[0].loopback);
  EXPECT_FALSE(c.servers[1].loopback);
  EXPECT_TRUE(c.servers[2].loopback);
  EXPECT_TRUE(c.HasLoopbackServer());
  EXPECT_EQ(internal::RelayResolvConf(c),
            "# imagesmith: the host's resolver is on its loopback; queries are relayed to it\n"
            "nameserver 127.0.0.53\nsearch corp.example lab.example\noptions edns0 trust-ad\n");
  EXPECT_FALSE(internal::ParseResolvConf("nameserver 10.255.255.53\n").HasLoopbackServer());
  EXPECT_TRUE(internal::ParseResolvConf("nameserver ::ffff:127.0.0.1\n").HasLoopbackServer());
}

TEST_F(SandboxTest, ResolverOnTheHostsLoopbackAnswersThroughTheRelayAndNothingElseOpens) {
  LoopbackResolver resolver("127.0.0.77");
  ASSERT_TRUE(resolver.bound()) << "bind 127.0.0.77:53";
  const std::string conf = dir_ + "/host-resolv.conf";
  WriteFile(conf, "nameserver 127.0.0.77\nsearch imagesmith.test\noptions timeout:2\n");
  RunSpec spec = Shell(
      "cat /etc/resolv.conf; echo ---; nslookup probe.imagesmith.test; echo ---; "
      "timeout 5 nslookup probe.imagesmith.test 127.0.0.77 >/dev/null 2>&1 "
      "&& echo direct-reached || echo direct-refused");
  spec.host_resolv_conf = conf;
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(
      r->stdout_data.find("nameserver 127.0.0.53\nsearch imagesmith.test\noptions timeout:2\n"),
      std::string::npos)
      << r->stdout_data;
  EXPECT_EQ(r->stdout_data.find("127.0.0.77\n"), std::string::npos) << r->stdout_data;
  // The name resolves through the relay to the loopback resolver's answer.
  EXPECT_NE(r->stdout_data.find("192.0.2.7"), std::string::npos)
      << r->stdout_data << r->stderr_data;
  // The resolver itself stays out of reach: only DNS to 127.0.0.53 is relayed.
  EXPECT_NE(r->stdout_data.find("direct-refused"), std::string::npos) << r->stdout_data;
  EXPECT_GE(resolver.queries(), 1);
  // The relay's resolv.conf is gone with the run (TearDown checks /tmp).

  // Without the network the relay does not run, and nothing resolves.
  spec.network = false;
  spec.argv = {"sh", "-c", "timeout 5 nslookup probe.imagesmith.test || echo no-answer"};
  int before = resolver.queries();
  r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data.find("192.0.2.7"), std::string::npos) << r->stdout_data;
  EXPECT_EQ(resolver.queries(), before);
}

TEST_F(SandboxTest, SudoShimRunsCommandsAsRootWithoutTouchingTheTree) {
  auto r =
      sandbox::Run(Shell("sudo id -u; sudo -E -H sh -c 'echo nested'; sudo FOO=bar env | grep FOO; "
                         "sudo -u root true && echo as-root; command -v sudo"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe() << r->stderr_data;
  EXPECT_EQ(r->stdout_data, "0\nnested\nFOO=bar\nas-root\n/run/imagesmith/bin/sudo\n");
  EXPECT_FALSE(Exists(upper_ + "/run/imagesmith"));
  EXPECT_FALSE(Exists(lower_ + "/run/imagesmith"));

  // A tree with its own sudo keeps it, and PATH is left alone.
  ASSERT_EQ(::symlink("busybox", (lower_ + "/bin/sudo").c_str()), 0);
  RunSpec spec = Shell("echo $PATH; command -v sudo");
  auto own = sandbox::Run(spec);
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ(own->stdout_data, "/bin\n/bin/sudo\n");
}

TEST_F(SandboxTest, BindMountsAHostFileAndRemovesItsPlaceholder) {
  std::string script = dir_ + "/script.sh";
  WriteFile(script, "echo from-script \"$@\"\n");
  RunSpec spec = Spec({"sh", "/tmp/script.sh", "arg"});
  spec.binds.push_back({script, "/tmp/script.sh", true});
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stdout_data, "from-script arg\n");
  EXPECT_FALSE(Exists(upper_ + "/tmp/script.sh"));

  // Read-only binds reject writes; the host file is unchanged.
  spec = Shell("echo changed > /tmp/script.sh");
  spec.binds.push_back({script, "/tmp/script.sh", true});
  r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->exit_code, 0);
  EXPECT_EQ(Slurp(script), "echo from-script \"$@\"\n");
}

TEST_F(SandboxTest, SetupFailuresAreStatusesThatSayWhat) {
  RunSpec spec = Spec({"true"});
  spec.tree.layers = {dir_ + "/missing"};
  auto r = sandbox::Run(spec);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
  EXPECT_NE(r.status().message().find(dir_ + "/missing"), std::string::npos);

  spec = Spec({"true"});
  spec.tree.work = "";
  EXPECT_EQ(sandbox::Run(spec).status().code(), StatusCode::kInvalidArgument);

  spec = Spec({"true"});
  spec.working_dir = "/no/such/dir";
  r = sandbox::Run(spec);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_NE(r.status().message().find("/no/such/dir"), std::string::npos);

  spec = Spec({"true"});
  spec.binds.push_back({dir_ + "/nope", "/tmp/x", true});
  EXPECT_EQ(sandbox::Run(spec).status().code(), StatusCode::kNotFound);
}

TEST_F(SandboxTest, ConcurrentRunsDoNotInterfere) {
  std::string l2 = dir_ + "/lower2";
  MakeBusyboxTree(l2);
  std::vector<StatusOr<RunResult>> results(4, InternalError("not run"));
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      RunSpec spec = Shell("echo run-" + std::to_string(i) + "; hostname", false);
      spec.hostname = "h" + std::to_string(i);
      results[i] = sandbox::Run(spec);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().ToString();
    EXPECT_EQ(results[i]->stdout_data,
              "run-" + std::to_string(i) + "\nh" + std::to_string(i) + "\n");
  }
}

TEST_F(SandboxTest, ProcessLimitStopsAForkBomb) {
  RunSpec spec = Shell("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait; echo end");
  spec.control.limits.max_pids = 8;
  spec.control.timeout = milliseconds(20000);
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->stderr_data.find("can't fork"), std::string::npos) << r->stderr_data;
}

// ---- the boundary (doc/sandbox.md) ------------------------------------------

TEST_F(SandboxTest, RootInsideIsTheSubordinateRangeAndTheImageKeepsItsOwners) {
  auto range = internal::SubordinateIds();
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  ASSERT_TRUE(env_->CreateDirs(lower_ + "/var/www").ok());
  WriteFile(lower_ + "/var/www/page", "x");
  ASSERT_EQ(::chown((lower_ + "/var/www").c_str(), 33, 33), 0);
  ASSERT_EQ(::chown((lower_ + "/var/www/page").c_str(), 33, 33), 0);
  auto r = sandbox::Run(
      Shell("cat /proc/self/uid_map; id -u; stat -c %u:%g /var/www/page /etc; "
            "echo y > /var/www/page; touch /root-made; touch /made33; chown 33:34 /made33; "
            "chown 70000 /made33 || echo unmapped-refused"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success()) << r->Describe() << r->stderr_data;
  std::vector<std::string> f;
  for (const std::string& w : Split(r->stdout_data, '\n')) {
    for (const std::string& x : Split(w, ' ')) {
      if (!x.empty()) f.push_back(x);
    }
  }
  ASSERT_GE(f.size(), 7u) << r->stdout_data;
  EXPECT_EQ(f[0], "0");
  EXPECT_EQ(f[1], std::to_string(range->start));
  EXPECT_EQ(f[2], "65536");
  EXPECT_EQ(f[3], "0");      // id -u
  EXPECT_EQ(f[4], "33:33");  // www-data's file is www-data's inside
  EXPECT_EQ(f[5], "0:0");    // root's is root's
  EXPECT_EQ(f[6], "unmapped-refused");
  // On disk the upper dir has the image's real owners, not the host range.
  struct stat st {};
  ASSERT_EQ(::lstat((upper_ + "/var/www/page").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 33u);
  ASSERT_EQ(::lstat((upper_ + "/root-made").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  ASSERT_EQ(::lstat((upper_ + "/made33").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 33u);
  EXPECT_EQ(st.st_gid, 34u);
}

TEST_F(SandboxTest, BoundingSetIsReducedAndNoNewPrivsIsSet) {
  auto r = sandbox::Run(Shell("grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->stdout_data.find("CapBnd:\t00000000a00425fb"), std::string::npos) << r->stdout_data;
  EXPECT_NE(r->stdout_data.find("CapEff:\t00000000a00425fb"), std::string::npos) << r->stdout_data;
  EXPECT_NE(r->stdout_data.find("NoNewPrivs:\t1"), std::string::npos) << r->stdout_data;
  EXPECT_NE(r->stdout_data.find("Seccomp:\t2"), std::string::npos) << r->stdout_data;
}

TEST_F(SandboxTest, RefusedSystemCallsAreEpermAndNamed) {
  ASSERT_TRUE(env_->CreateDirs(lower_ + "/mnt").ok());
  auto r = sandbox::Run(
      Shell("mount -t tmpfs none /mnt 2>&1; echo mount=$?; dd if=/dev/zero of=/tmp/x bs=1k "
            "count=64 2>/dev/null; swapon /tmp/x 2>&1; "
            "unshare -U true 2>&1; echo unshare=$?; mknod /tmp/sda b 8 0 2>&1; echo mknod=$?; "
            "exit 3"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->stdout_data.find("Operation not permitted"), std::string::npos) << r->stdout_data;
  EXPECT_NE(r->stdout_data.find("mount=1"), std::string::npos) << r->stdout_data;
  EXPECT_NE(r->stdout_data.find("unshare=1"), std::string::npos) << r->stdout_data;
  EXPECT_EQ(r->stdout_data.find("mknod=0"), std::string::npos) << r->stdout_data;
  EXPECT_EQ(r->refused.count("mount"), 1u) << r->RefusedList();
  EXPECT_EQ(r->refused.count("swapon"), 1u) << r->RefusedList();
  EXPECT_EQ(r->refused.count("unshare(CLONE_NEWUSER)"), 1u) << r->RefusedList();
  EXPECT_NE(r->Describe().find("exit status 3; the sandbox refused mount"), std::string::npos)
      << r->Describe();
  EXPECT_FALSE(Exists("/tmp/sda"));
}

TEST_F(SandboxTest, HostLoopbackIsUnreachableFromTheSandboxNetwork) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string port = std::to_string(ntohs(addr.sin_port));
  for (bool network : {true, false}) {
    RunSpec spec = Shell("cat /proc/net/dev | grep -c : ; echo hi | nc -w 2 127.0.0.1 " + port +
                         " && echo connected || echo refused");
    spec.network = network;
    auto r = sandbox::Run(spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_NE(r->stdout_data.find("refused"), std::string::npos) << r->stdout_data;
    // lo alone, or lo and pasta's interface; never the host's.
    EXPECT_EQ(r->stdout_data.substr(0, 2), network ? "2\n" : "1\n") << r->stdout_data;
  }
  ::fcntl(listener, F_SETFL, O_NONBLOCK);
  EXPECT_LT(::accept(listener, nullptr, nullptr), 0);  // nobody came through
  ::close(listener);
}

TEST_F(SandboxTest, LegacyIsolationIsRealRootOnTheHostNetwork) {
  RunSpec spec = Shell("cat /proc/self/uid_map; grep -c : /proc/net/dev");
  spec.isolation = Isolation::kLegacy;
  auto r = sandbox::Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->stdout_data.find("4294967295"), std::string::npos) << r->stdout_data;
}

TEST_F(SandboxTest, DiskQuotaStopsOneBigFileAndManySmallOnes) {
  RunSpec big = Shell("dd if=/dev/zero of=/big bs=1M count=20 2>&1; echo dd=$?");
  big.disk_limit_bytes = int64_t{8} << 20;
  auto r = sandbox::Run(big);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->stdout_data.find("dd="), std::string::npos) << r->stdout_data;
  EXPECT_EQ(r->stdout_data.find("dd=0"), std::string::npos) << r->stdout_data;  // SIGXFSZ
  struct stat st {};
  ASSERT_EQ(::lstat((upper_ + "/big").c_str(), &st), 0);
  EXPECT_LE(st.st_size, int64_t{8} << 20);

  RunSpec many = Shell(
      "i=0; while [ $i -lt 12 ]; do dd if=/dev/zero of=/f$i bs=1M count=2 2>/dev/null; "
      "i=$((i+1)); sleep 0.3; done; echo finished");
  many.disk_limit_bytes = int64_t{8} << 20;
  r = sandbox::Run(many);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->disk_full) << r->Describe() << r->stdout_data;
  EXPECT_EQ(r->stdout_data.find("finished"), std::string::npos);
  EXPECT_NE(r->Describe().find("stopped: the tree grew past its disk quota"), std::string::npos)
      << r->Describe();
}

TEST(SandboxIdRangeTest, ParsesTheImagesmithLineOrFallsBackToTheDefault) {
  auto own = internal::ParseSubordinateIds("alice:100000:65536\nimagesmith:500000:65536\n", "f");
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ(own->start, 500000u);
  auto def = internal::ParseSubordinateIds("alice:100000:65536\n", "f");
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->start, internal::kDefaultIdRange.start);
  auto overlap = internal::ParseSubordinateIds("bob:1879000000:100000\n", "/etc/subuid");
  EXPECT_FALSE(overlap.ok());
  EXPECT_NE(overlap.status().message().find("/etc/subuid gives ids"), std::string::npos);
  auto small = internal::ParseSubordinateIds("imagesmith:500000:1000\n", "/etc/subuid");
  EXPECT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("/etc/subuid:1:"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith::sandbox
