// The hostile-template suite (doc/sandbox.md, "What the sandbox guarantees"):
// real builds of real Debian images whose customizers try to escape. Every
// attempt either fails and is named (the run log names the refused system
// call and the step), or succeeds inside with no effect on the host, which
// the test checks from the host. The attempts share one base image and run
// as the steps of a few builds that run at the same time.
//
// Each attempt prints "ESCAPED-<what>" only if it got through; none may.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <thread>

#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

void Write(const std::string& path, const std::string& text) {
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, text).ok()) << path;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// One data directory (the catalog of base images shared) and its builds.
struct Site {
  std::string home, work;
  std::map<std::string, std::string> env;
  Site() {
    work = MakeTempDir();
    env = DataDirWithSharedCatalog(&home);
  }
  CliResult Build(const std::string& name, const std::string& customize,
                  const std::string& extra = "",
                  const std::map<std::string, std::string>& more_env = {}) {
    std::string text = R"({"type": "Microsoft.VirtualMachineImages/imageTemplates",
  "apiVersion": "2022-07-01", "location": "eastus", "properties": {
    "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
               "sku": "12", "version": "latest"},
    "customize": )" + customize +
                       extra + "}}";
    Write(work + "/" + name + ".json", text);
    std::map<std::string, std::string> e = env;
    for (const auto& [k, v] : more_env) e[k] = v;
    return RunCli({"build", name + ".json"}, work, e);
  }
  std::string Log(const std::string& name) {
    return RunCli({"image-template", "logs", "-g", "imagesmith", "-n", name}, "", env).out;
  }
};

// A JSON array of Shell steps, each {name, lines}.
std::string Steps(const std::vector<std::pair<std::string, std::vector<std::string>>>& steps) {
  std::string out = "[";
  for (const auto& [name, lines] : steps) {
    if (out.size() > 1) out += ",\n";
    out += R"({"type": "Shell", "name": ")" + name + R"(", "inline": [)";
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string l = Replace(Replace(lines[i], "\\", "\\\\"), "\"", "\\\"");
      out += (i ? ", \"" : "\"") + l + "\"";
    }
    out += "]}";
  }
  return out + "]";
}

int ListenTcp(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

int ListenAbstract(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 8) != 0) return -1;
  return fd;
}

std::string Hostname() {
  char h[256] = {};
  ::gethostname(h, sizeof h - 1);
  return h;
}

TEST(SandboxEscapeTest, HostileTemplatesFailNamedOrHaveNoEffectOnTheHost) {
  // Host-side bait: a loopback listener, an abstract Unix socket, a process
  // to signal and trace, a secret in this data directory, the clock and the
  // hostname.
  int port = 0;
  int tcp = ListenTcp(&port);
  ASSERT_GE(tcp, 0);
  std::string abstract_name = "imagesmith-escape-test-" + std::to_string(::getpid());
  int unix_fd = ListenAbstract(abstract_name);
  ASSERT_GE(unix_fd, 0);
  std::string sleeper_marker = "4242" + std::to_string(::getpid() % 1000);
  ProcessOptions sp;
  sp.argv = {"sh", "-c", "setsid sleep " + sleeper_marker + " </dev/null >/dev/null 2>&1 &"};
  ASSERT_TRUE(Env::Default()->RunProcess(sp).ok());
  std::vector<int> sleepers;
  for (int i = 0; i < 50 && sleepers.empty(); ++i) {
    sleepers = PidsWith("sleep " + sleeper_marker);
    if (sleepers.empty()) Env::Default()->SleepFor(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(sleepers.size(), 1u);
  const std::string host_pid = std::to_string(sleepers[0]);
  const std::string host_name = Hostname();
  const std::time_t started = std::time(nullptr);
  struct stat root_st {};
  ASSERT_EQ(::stat("/", &root_st), 0);
  const std::string disk_major = std::to_string(major(root_st.st_dev));
  const std::string disk_minor = std::to_string(minor(root_st.st_dev));

  Site hostile, full, refused;
  const std::string secret = hostile.home + "/cache/other-template-secret";
  ASSERT_TRUE(Env::Default()->CreateDirs(hostile.home + "/cache").ok());
  Write(secret, "SECRET-OF-ANOTHER-TEMPLATE\n");
  // perl's syscall() with the given arguments (copied into an array, which
  // syscall may write to); prints "<what>: <errno text>" or ESCAPED-<what>.
  auto perl = [](const std::string& what, const std::string& nr, const std::string& args) {
    return "perl -e 'my @a = (" + args.substr(args.empty() ? 0 : 2) + "); my $r = syscall(" + nr +
           ", @a); print $r == -1 ? \"" + what + ": $!\\n\" : \"ESCAPED-" + what + "\\n\"'";
  };
  // name, lines, the system call the run log must name as refused ("" = none).
  struct Attempt {
    std::string name;
    std::vector<std::string> lines;
    std::vector<std::string> refused;
  };
  std::vector<Attempt> attempts = {
      {"mknodHostDisk",
       {"mknod /tmp/hostdisk b " + disk_major + " " + disk_minor +
            " 2>&1 && head -c 4096 /tmp/hostdisk > /dev/null && echo ESCAPED-mknod",
        "true"},
       {}},
      {"mountBlockDevice",
       {"mkdir -p /tmp/m", "mount -t ext4 /dev/vda /tmp/m 2>&1 && echo ESCAPED-mount-block",
        "true"},
       {"mount"}},
      {"mountHostProc",
       {"mkdir -p /tmp/p", "mount -t proc proc /tmp/p 2>&1 && echo ESCAPED-proc", "true"},
       {"mount"}},
      {"nsenterPid1",
       {"nsenter -t 1 -m -u -n -i -p true 2>&1 && echo ESCAPED-nsenter",
        "perl -e 'open(my $f, \"<\", \"/proc/1/ns/mnt\") or die \"open /proc/1/ns/mnt: $!\\n\"; "
        "syscall(308, fileno($f), 0) == -1 ? print \"setns: $!\\n\" : print "
        "\"ESCAPED-setns\\n\"' 2>&1",
        "true"},
       {}},
      {"sysrqTrigger",
       // Only opens it for writing, in a subshell that writes nothing.
       {"if ( exec 3>/proc/sysrq-trigger ) 2>/dev/null; then echo ESCAPED-sysrq; else echo "
        "sysrq-trigger: not writable; fi"},
       {}},
      {"loadModule",
       {perl("init_module", "175", ", 0, 0, \"\""), perl("finit_module", "313", ", 0, \"\", 0")},
       {"init_module", "finit_module"}},
      {"signalHostProcess",
       {"kill -9 " + host_pid + " 2>&1 && echo ESCAPED-kill",
        perl("ptrace", "101", ", 16, " + host_pid + ", 0, 0"), "true"},
       {}},
      {"connectHostLoopback",
       {"bash -c 'echo hi > /dev/tcp/127.0.0.1/" + std::to_string(port) +
            "' 2>&1 && echo ESCAPED-loopback",
        "perl -MSocket -e 'socket(my $s, AF_UNIX, SOCK_STREAM, 0); connect($s, "
        "pack_sockaddr_un(\"\\0" +
            abstract_name +
            "\")) ? print \"ESCAPED-abstract\\n\" : print \"abstract socket: $!\\n\"'",
        "true"},
       {}},
      {"openByHandle", {perl("open_by_handle_at", "304", ", -100, 0, 0")}, {"open_by_handle_at"}},
      {"unshareUserNs",
       {"unshare -U -r id 2>&1 && echo ESCAPED-unshare", "true"},
       {"unshare(CLONE_NEWUSER)"}},
      {"changeHostname",
       {"hostname evil-imagesmith-host && hostname",
        "echo evil > /proc/sys/kernel/hostname 2>&1 && echo ESCAPED-proc-hostname", "true"},
       {}},
      {"changeClock",
       {"date -s '2001-01-01 00:00:00' 2>&1 && echo ESCAPED-clock", "true"},
       {"clock_settime"}},
      {"readOtherTemplates",
       {"for p in /proc/[0-9]*; do cat $p/root" + secret + " 2>/dev/null; done",
        "cat " + secret +
            " 2>/dev/null; for f in /proc/[0-9]*/fd/*; do readlink $f; done | "
            "grep -F " +
            hostile.home + " && echo ESCAPED-fd",
        "true"},
       {}},
      {"rebootHost", {perl("reboot", "169", ", 0xfee1dead, 672274793, 0x1234567, 0")}, {"reboot"}},
      {"kernelInterfaces",
       {perl("bpf", "321", ", 0, 0, 0"), perl("perf_event_open", "298", ", 0, 0, -1, -1, 0"),
        perl("add_key", "248", ", \"user\", \"k\", \"v\", 1, -3"),
        perl("keyctl", "250", ", 0, -3, 0, 0, 0")},
       {"bpf", "perf_event_open", "add_key", "keyctl"}},
      {"swapAndKexec",
       {perl("swapon", "167", ", \"/tmp/x\", 0"), perl("kexec_load", "246", ", 0, 0, 0, 0")},
       {"swapon", "kexec_load"}},
      {"writeSysfs", {"echo 1 > /sys/kernel/mm/ksm/run 2>&1 && echo ESCAPED-sysfs", "true"}, {}},
  };
  std::vector<std::pair<std::string, std::vector<std::string>>> steps;
  for (Attempt& a : attempts) {
    // Each attempt goes on after a failure (inline steps run under sh -e).
    a.lines.insert(a.lines.begin(), "set +e");
    steps.emplace_back(a.name, a.lines);
  }

  CliResult hostile_r, full_r, refused_r;
  std::thread t1([&] { hostile_r = hostile.Build("hostile", Steps(steps)); });
  std::thread t2([&] {
    full_r = full.Build("fill",
                        Steps({{"fillTheDisk",
                                {"for i in 1 2 3 4; do fallocate -l 1500M /fill$i; sleep 1.5; done",
                                 "echo ESCAPED-disk-filled"}}}),
                        R"(, "vmProfile": {"osDiskSizeGB": 4})");
  });
  std::thread t3([&] {
    refused_r = refused.Build(
        "refused", Steps({{"mountTmpfs", {"mkdir -p /tmp/t", "mount -t tmpfs none /tmp/t"}}}));
  });
  t1.join();
  t2.join();
  t3.join();

  // Every attempt ran as its own step and got nowhere.
  std::string log = hostile.Log("hostile");
  EXPECT_EQ(hostile_r.exit_code, 0) << hostile_r.err << log;
  // (The log also shows each script, so look at what the steps printed.)
  EXPECT_EQ(log.find("out] ESCAPED-"), std::string::npos) << log;
  EXPECT_EQ(log.find("err] ESCAPED-"), std::string::npos) << log;
  for (size_t i = 0; i < attempts.size(); ++i) {
    std::string label = "customize[" + std::to_string(i) + "] '" + attempts[i].name + "'";
    EXPECT_NE(log.find(label + " (Shell) ended: exit status 0"), std::string::npos) << label;
    for (const std::string& call : attempts[i].refused) {
      // The run log names the refused call and the step.
      size_t at = log.find("sandbox: refused ");
      bool named = false;
      while (at != std::string::npos && !named) {
        size_t eol = log.find('\n', at);
        std::string line = log.substr(at, eol - at);
        named = line.find(call) != std::string::npos && line.find(label) != std::string::npos;
        at = log.find("sandbox: refused ", at + 1);
      }
      EXPECT_TRUE(named) << label << " should have " << call << " named as refused";
    }
  }
  // What the script saw: EPERM / EACCES / ESRCH, never success.
  EXPECT_NE(log.find("init_module: Operation not permitted"), std::string::npos);
  EXPECT_NE(log.find("open_by_handle_at: Operation not permitted"), std::string::npos);
  EXPECT_NE(log.find("ptrace: No such process"), std::string::npos);
  EXPECT_NE(log.find("sysrq-trigger: not writable"), std::string::npos);
  EXPECT_NE(log.find("evil-imagesmith-host"), std::string::npos);  // changed, inside only
  // And from the host: nothing happened.
  EXPECT_EQ(log.find("SECRET-OF-ANOTHER-TEMPLATE"), std::string::npos);
  EXPECT_EQ(Hostname(), host_name);
  EXPECT_LT(std::abs(std::difftime(std::time(nullptr), started)), 24 * 3600.0);
  EXPECT_EQ(PidsWith("sleep " + sleeper_marker), std::vector<int>{sleepers[0]});
  EXPECT_LT(::accept(tcp, nullptr, nullptr), 0);
  EXPECT_LT(::accept(unix_fd, nullptr, nullptr), 0);
  ::kill(sleepers[0], SIGKILL);
  ::close(tcp);
  ::close(unix_fd);

  // Filling the disk stops the step with a quota error naming it.
  std::string full_log = full.Log("fill");
  EXPECT_EQ(full_r.exit_code, 1) << full_r.err;
  EXPECT_NE(full_r.err.find("customize[0] 'fillTheDisk' (Shell) failed: stopped: the tree grew "
                            "past its disk quota"),
            std::string::npos)
      << full_r.err;
  EXPECT_EQ(full_log.find("out] ESCAPED-"), std::string::npos) << full_log;

  // A step that fails because of a refusal names it.
  EXPECT_EQ(refused_r.exit_code, 1) << refused_r.err;
  EXPECT_NE(refused_r.err.find("customize[0] 'mountTmpfs' (Shell) failed: exit status"),
            std::string::npos)
      << refused_r.err;
  EXPECT_NE(refused_r.err.find("; the sandbox refused mount (EPERM)"), std::string::npos)
      << refused_r.err;
}

// The owners a package install leaves in the image are the same as under
// the old sandbox (real root): root's files, www-data's (nginx) and a system
// user that a package creates (uuid-runtime's uuidd), checked on the step's
// layer on the host.
TEST(SandboxEscapeTest, PackageInstallLeavesTheSameOwnersAsRealRoot) {
  Site boundary, legacy;
  const std::string steps =
      Steps({{"installPackages",
              {"apt-get update -qq",
               "apt-get install -y -qq --no-install-recommends nginx uuid-runtime > /dev/null",
               "install -d -o www-data -g www-data /var/www/imagesmith-owned",
               "install -d -o uuidd -g uuidd /var/lib/imagesmith-uuidd-owned",
               "getent passwd uuidd www-data"}}});
  CliResult b, l;
  std::thread t1([&] { b = boundary.Build("owners", steps); });
  std::thread t2([&] {
    l = legacy.Build("owners", steps, "", {{"IMAGESMITH_SANDBOX_ISOLATION", "legacy"}});
  });
  t1.join();
  t2.join();
  ASSERT_EQ(b.exit_code, 0) << b.err << boundary.Log("owners");
  ASSERT_EQ(l.exit_code, 0) << l.err << legacy.Log("owners");
  // The step's layer in each cache, listed with numeric owners.
  auto listing = [](const std::string& home) {
    ProcessOptions o;
    o.argv = {"sh", "-c",
              "cd \"$(dirname \"$(find " + home +
                  "/cache/steps -path '*/var/log/nginx' -print -quit)\")/../..\" && "
                  "find . -path ./var/cache -prune -o -path ./var/lib/apt/lists -prune -o "
                  "-printf '%U:%G %p\\n' | sort"};
    auto r = Env::Default()->RunProcess(o);
    return r.ok() ? r->stdout_data : std::string();
  };
  std::string with_boundary = listing(boundary.home), with_root = listing(legacy.home);
  EXPECT_GT(with_boundary.size(), 1000u);
  EXPECT_EQ(with_boundary, with_root);
  EXPECT_NE(with_boundary.find("0:0 ./usr/sbin/nginx\n"), std::string::npos);
  EXPECT_NE(with_boundary.find("33:33 ./var/www/imagesmith-owned\n"), std::string::npos);
  // uuidd's own directory belongs to the uuidd user the package created.
  std::string log = boundary.Log("owners");
  size_t at = log.find("uuidd:x:");
  ASSERT_NE(at, std::string::npos) << log;
  std::vector<std::string> passwd = Split(log.substr(at), ':');  // uuidd:x:uid:gid:...
  EXPECT_NE(with_boundary.find(passwd[2] + ":" + passwd[3] + " ./var/lib/imagesmith-uuidd-owned\n"),
            std::string::npos)
      << with_boundary;
  EXPECT_EQ(with_boundary.find("1879048192"), std::string::npos);  // never the host range
}

}  // namespace
}  // namespace imagesmith::e2e
