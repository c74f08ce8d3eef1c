// The DNS relay of a sandbox whose host resolver is on loopback. See
// dns_relay.h.
#include "sandbox/dns_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/strings.h"

namespace imagesmith::sandbox::internal {
namespace {

constexpr size_t kMaxNameServers = 3;  // as glibc's resolver (MAXNS)
constexpr size_t kMaxInFlight = 64;
constexpr size_t kMaxMessage = 4096;
constexpr int64_t kPerServerMs = 2000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> out;
  std::string word;
  for (char c : line) {
    if (c == ' ' || c == '\t' || c == '\r') {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

bool ParseServer(const std::string& text, NameServer* out) {
  out->text = text;
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(53);
    out->loopback = (ntohl(v4.sin_addr.s_addr) >> 24) == 127;
    std::memcpy(&out->addr, &v4, sizeof v4);
    out->addr_len = sizeof v4;
    return true;
  }
  std::string host = text;
  uint32_t scope = 0;
  if (size_t pct = text.find('%'); pct != std::string::npos) {
    host = text.substr(0, pct);
    scope = ::if_nametoindex(text.substr(pct + 1).c_str());
    if (scope == 0) return false;
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) != 1) return false;
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(53);
  v6.sin6_scope_id = scope;
  const uint8_t* b = v6.sin6_addr.s6_addr;
  bool mapped_loopback = IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) && b[12] == 127;
  out->loopback = IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr) || mapped_loopback;
  std::memcpy(&out->addr, &v6, sizeof v6);
  out->addr_len = sizeof v6;
  return true;
}

// Run on a thread of its own: joins the namespace (which changes only this
// thread's), brings its loopback up and binds the relay's socket there.
StatusOr<int> BindInNamespace(int netns_fd) {
  if (::setns(netns_fd, CLONE_NEWNET) != 0) {
    return ErrnoError("join the sandbox's network namespace for its DNS relay", errno);
  }
  int ctl = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl < 0) return ErrnoError("make a socket in the sandbox's network namespace", errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int rc = ::ioctl(ctl, SIOCGIFFLAGS, &ifr);
  if (rc == 0 && (ifr.ifr_flags & IFF_UP) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    rc = ::ioctl(ctl, SIOCSIFFLAGS, &ifr);
  }
  int err = errno;
  ::close(ctl);
  if (rc != 0) return ErrnoError("bring up the sandbox's loopback for its DNS relay", err);
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoError("make the sandbox's DNS relay socket", errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(53);
  ::inet_pton(AF_INET, kRelayAddress, &a.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    err = errno;
    ::close(fd);
    return ErrnoError(std::string("bind the sandbox's DNS relay to ") + kRelayAddress + ":53", err);
  }
  return fd;
}

}  // namespace

bool ResolvConf::HasLoopbackServer() const {
  for (const NameServer& s : servers) {
    if (s.loopback) return true;
  }
  return false;
}

ResolvConf ParseResolvConf(std::string_view text) {
  ResolvConf out;
  for (const std::string& raw : Split(std::string(text), '\n')) {
    std::string line = raw;
    if (size_t hash = line.find_first_of("#;"); hash != std::string::npos) line.resize(hash);
    std::vector<std::string> w = Words(line);
    if (w.empty()) continue;
    if (w[0] == "nameserver" && w.size() >= 2) {
      NameServer s;
      if (out.servers.size() < kMaxNameServers && ParseServer(w[1], &s)) {
        out.servers.push_back(std::move(s));
      }
    } else if (w[0] == "search" || w[0] == "domain" || w[0] == "options") {
      out.other_lines.push_back(line);
    }
  }
  return out;
}

std::string RelayResolvConf(const ResolvConf& host) {
  std::string out =
      "# imagesmith: the host's resolver is on its loopback; queries are relayed to it\n";
  out += "nameserver ";
  out += kRelayAddress;
  out += "\n";
  for (const std::string& line : host.other_lines) out += line + "\n";
  return out;
}

StatusOr<std::unique_ptr<DnsRelay>> DnsRelay::Start(int netns_fd,
                                                    std::vector<NameServer> upstreams) {
  if (upstreams.empty()) return InvalidArgumentError("the DNS relay was given no nameserver");
  StatusOr<int> bound = InternalError("not run");
  std::thread([&] { bound = BindInNamespace(netns_fd); }).join();
  if (!bound.ok()) return bound.status();
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int err = errno;
    ::close(bound.value());
    return ErrnoError("make the DNS relay's eventfd", err);
  }
  std::unique_ptr<DnsRelay> relay(new DnsRelay(bound.value(), wake, std::move(upstreams)));
  relay->thread_ = std::thread([r = relay.get()] { r->Loop(); });
  return relay;
}

DnsRelay::DnsRelay(int listen_fd, int wake_fd, std::vector<NameServer> upstreams)
    : listen_fd_(listen_fd), wake_fd_(wake_fd), upstreams_(std::move(upstreams)) {}

DnsRelay::~DnsRelay() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
}

void DnsRelay::Loop() {
  struct Query {
    int fd = -1;  // connected to upstreams_[server], in the host's namespace
    sockaddr_storage client{};
    socklen_t client_len = 0;
    std::string message;
    size_t server = 0;
    int64_t deadline_ms = 0;
  };
  std::vector<Query> queries;
  // Sends q to its current server, moving on to the next one that takes it.
  auto send = [&](Query& q) {
    for (; q.server < upstreams_.size(); ++q.server) {
      if (q.fd >= 0) ::close(q.fd);
      const NameServer& s = upstreams_[q.server];
      q.fd = ::socket(s.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (q.fd < 0) continue;
      if (::connect(q.fd, reinterpret_cast<const sockaddr*>(&s.addr), s.addr_len) == 0 &&
          ::send(q.fd, q.message.data(), q.message.size(), 0) ==
              static_cast<ssize_t>(q.message.size())) {
        q.deadline_ms = NowMs() + kPerServerMs;
        return true;
      }
    }
    if (q.fd >= 0) ::close(q.fd);
    q.fd = -1;
    return false;
  };
  char buf[kMaxMessage];
  while (true) {
    std::vector<pollfd> fds = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    int64_t now = NowMs();
    int timeout = -1;
    for (const Query& q : queries) {
      fds.push_back({q.fd, POLLIN, 0});
      int64_t left = q.deadline_ms > now ? q.deadline_ms - now : 0;
      if (timeout < 0 || left < timeout) timeout = static_cast<int>(left);
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) break;
    // Answers first, so that a slot frees before new queries are taken.
    std::vector<Query> kept;
    now = NowMs();
    for (size_t i = 0; i < queries.size(); ++i) {
      Query& q = queries[i];
      bool done = false;
      if (fds[i + 2].revents != 0) {
        ssize_t n = ::recv(q.fd, buf, sizeof buf, 0);
        // An answer carries its query's 16-bit ID; anything else is dropped.
        if (n >= 12 && std::memcmp(buf, q.message.data(), 2) == 0) {
          ::sendto(listen_fd_, buf, static_cast<size_t>(n), 0,
                   reinterpret_cast<const sockaddr*>(&q.client), q.client_len);
          answers_.fetch_add(1);
          done = true;
        }
      }
      if (!done && now >= q.deadline_ms) {
        ++q.server;
        done = !send(q);
      }
      if (done) {
        if (q.fd >= 0) ::close(q.fd);
      } else {
        kept.push_back(std::move(q));
      }
    }
    queries = std::move(kept);
    if (fds[1].revents != 0) {
      while (true) {
        Query q;
        q.client_len = sizeof q.client;
        ssize_t n = ::recvfrom(listen_fd_, buf, sizeof buf, 0,
                               reinterpret_cast<sockaddr*>(&q.client), &q.client_len);
        if (n < 0) break;
        if (n < 12 || queries.size() >= kMaxInFlight) continue;  // not DNS, or too many
        q.message.assign(buf, static_cast<size_t>(n));
        if (send(q)) queries.push_back(std::move(q));
      }
    }
  }
  for (Query& q : queries) ::close(q.fd);
}

}  // namespace imagesmith::sandbox::internal
