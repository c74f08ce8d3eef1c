// The unix-socket plumbing shared by the host's clients of qemu's sockets:
// the guest agent's chardev (agent_client.h) and the monitor (qmp.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/statusor.h"

namespace imagesmith::vm {

// CLOCK_MONOTONIC in microseconds: the clock every deadline_us here is on.
int64_t MonotonicNowUs();

// Connects to the stream socket at `path`, retrying every 20 ms while qemu
// has not made it yet, until `deadline_us`. Returns the connected fd (the
// caller owns and closes it). InvalidArgument for a path too long for a
// socket address; DeadlineExceeded with the last errno. `what` names the
// socket in errors ("the agent socket").
StatusOr<int> ConnectUnixSocket(const std::string& path, int64_t deadline_us,
                                const std::string& what);

// Writes all of `data` to `fd`, retrying on EINTR. Unavailable when the peer
// is gone; `what` names the peer ("the guest agent").
Status SendAll(int fd, std::string_view data, const std::string& what);

}  // namespace imagesmith::vm
