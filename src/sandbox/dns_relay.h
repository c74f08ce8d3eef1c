// Name resolution for a sandbox whose host resolver listens on the host's
// loopback (systemd-resolved's 127.0.0.53, a local dnsmasq or unbound on
// 127.0.0.1 or ::1). Internal to sandbox/ (doc/sandbox.md, "DNS").
//
// The sandbox's network namespace has a loopback of its own and pasta maps
// nothing onto the host's, so a nameserver on the host's loopback cannot be
// reached from inside. When the host's resolv.conf names one, the sandbox
// gets instead:
//
//   - a resolv.conf whose only nameserver is 127.0.0.53 (the sandbox's own
//     loopback), with the host's search, domain and options lines;
//   - a relay: a UDP socket bound to 127.0.0.53:53 inside the namespace,
//     served by a thread of the supervisor in the host's namespace, which
//     forwards each query to the host's nameservers in order (2 s each) and
//     sends the answer back.
//
// The relay carries DNS queries to the host's configured nameservers and
// nothing else: no other port or address of the host's loopback becomes
// reachable. DNS over TCP is not relayed (a truncated answer is final).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/statusor.h"

namespace imagesmith::sandbox::internal {

// One nameserver line of a resolv.conf.
struct NameServer {
  std::string text;  // as written, e.g. "127.0.0.53" or "::1"
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  bool loopback = false;
};

struct ResolvConf {
  std::vector<NameServer> servers;       // in order; lines that do not parse are skipped
  std::vector<std::string> other_lines;  // "search", "domain" and "options" lines, as written
  bool HasLoopbackServer() const;
};
ResolvConf ParseResolvConf(std::string_view text);

// Where the relay listens inside the sandbox.
inline constexpr char kRelayAddress[] = "127.0.0.53";

// The resolv.conf the sandbox sees while the relay runs.
std::string RelayResolvConf(const ResolvConf& host);

class DnsRelay {
 public:
  // Binds kRelayAddress:53 in the network namespace `netns_fd` (bringing its
  // loopback up) and starts relaying to `upstreams`, which must not be empty.
  static StatusOr<std::unique_ptr<DnsRelay>> Start(int netns_fd, std::vector<NameServer> upstreams);
  // Stops the relay; queries in flight are dropped.
  ~DnsRelay();
  DnsRelay(const DnsRelay&) = delete;
  DnsRelay& operator=(const DnsRelay&) = delete;

  // Answers relayed back into the sandbox so far.
  uint64_t answers() const { return answers_.load(); }

 private:
  DnsRelay(int listen_fd, int wake_fd, std::vector<NameServer> upstreams);
  void Loop();

  int listen_fd_ = -1;  // in the sandbox's namespace
  int wake_fd_ = -1;    // eventfd: the destructor's stop signal
  std::vector<NameServer> upstreams_;
  std::atomic<uint64_t> answers_{0};
  std::thread thread_;
};

}  // namespace imagesmith::sandbox::internal
