// The parent-side pieces that make the sandbox a security boundary
// (doc/sandbox.md, "What the sandbox guarantees"). Internal to sandbox/:
//
//  - the subordinate id range imagesmith owns ("imagesmith" in /etc/subuid
//    and /etc/subgid, or the documented default), and a user namespace that
//    maps root inside onto it;
//  - the seccomp filter, compiled once with libseccomp into a BPF program the
//    sandbox's init can load with one system call, and the supervisor side
//    of its user notifications (every refusal is answered EPERM and named);
//  - user-mode networking: `pasta` (Debian package passt) attached to the
//    sandbox's own network namespace.
//
// Thread safety: every function is thread-safe. UserNet and Refusals are
// thread-compatible (one owner each).
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/statusor.h"

namespace imagesmith::sandbox::internal {

// A range of host uids and gids: root inside the sandbox is `start`, id k is
// start + k, for k < count.
struct IdRange {
  uint32_t start = 0;
  uint32_t count = 0;
};

// The documented default range, used when /etc/subuid has no "imagesmith"
// line: 1879048192 (0x70000000), 65536 ids.
inline constexpr IdRange kDefaultIdRange{1879048192u, 65536u};

// Parses subuid(5)/subgid(5) text: the "imagesmith:start:count" line if any
// (count must be at least 65536, so that every id a Debian image uses maps);
// otherwise kDefaultIdRange, unless another line overlaps it. `file` names
// the source in errors. InvalidArgument on a malformed imagesmith line or an
// overlap.
StatusOr<IdRange> ParseSubordinateIds(const std::string& text, const std::string& file);

// The range from /etc/subuid and /etc/subgid (missing files count as empty).
// Both files must give the same range. Cached after the first success.
StatusOr<IdRange> SubordinateIds();

// Creates a user namespace whose uid and gid maps are "0 range.start
// range.count" and returns an fd for it (O_CLOEXEC; the caller owns and
// closes it). Made by a short-lived helper process cloned from the calling
// thread. Requires root.
StatusOr<int> MakeUserNamespace(const IdRange& range);

// The filter every sandboxed command runs under, as a BPF program; built on
// first use and kept for the life of the process. Refused system calls are
// sent to the supervisor (SECCOMP_RET_USER_NOTIF) except clone3, which fails
// with ENOSYS so that the C library falls back to clone, whose flags the
// filter can see. The vector stays valid for the life of the process.
StatusOr<const std::vector<sock_filter>*> SeccompProgram();

// The system calls the filter refuses, for docs and tests ("mount",
// "init_module", ..., "unshare(CLONE_NEWUSER)").
std::vector<std::string> RefusedSyscalls();

// Answers every pending notification on a seccomp listener with EPERM and
// counts it by name ("mount", "clone(CLONE_NEWUSER)").
class Refusals {
 public:
  explicit Refusals(int listener_fd) : fd_(listener_fd) {}
  ~Refusals();
  Refusals(const Refusals&) = delete;
  Refusals& operator=(const Refusals&) = delete;

  int fd() const { return fd_; }
  // Receives and answers one notification (call when fd() is readable).
  // Returns false when the listener is gone (every filtered process exited).
  bool HandleOne();
  const std::map<std::string, int>& counts() const { return counts_; }

 private:
  int fd_ = -1;
  std::map<std::string, int> counts_;
};

// User-mode networking for one run: pasta configured on the network
// namespace `netns_fd`, which must have no other interface than lo. Nothing
// is forwarded into the namespace, its loopback is its own, and the gateway
// is not remapped to the host: the namespace reaches the outside the way the
// host does, but not the host's 127.0.0.1 or its abstract Unix sockets.
class UserNet {
 public:
  // Starts pasta and waits (up to 10 s) until the namespace has a default
  // route. `probe_pid` is a process inside the namespace (for
  // /proc/<pid>/net/route). FailedPrecondition when pasta is missing or does
  // not configure the namespace in time.
  static StatusOr<std::unique_ptr<UserNet>> Start(int netns_fd, pid_t probe_pid);
  // Stops pasta.
  ~UserNet();
  UserNet(const UserNet&) = delete;
  UserNet& operator=(const UserNet&) = delete;

 private:
  explicit UserNet(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

}  // namespace imagesmith::sandbox::internal
