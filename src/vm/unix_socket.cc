#include "vm/unix_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace imagesmith::vm {

int64_t MonotonicNowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

StatusOr<int> ConnectUnixSocket(const std::string& path, int64_t deadline_us,
                                const std::string& what) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgumentError(what + " path " + path + " is longer than " +
                                std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int last_errno = 0;
  while (MonotonicNowUs() < deadline_us) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoError("socket", errno);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
    last_errno = errno;
    ::close(fd);
    ::usleep(20000);
  }
  return DeadlineExceededError("could not connect to qemu's " + what + " " + path + ": " +
                               std::strerror(last_errno));
}

Status SendAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t w = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return UnavailableError("writing to " + what + ": " + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return Status::Ok();
}

}  // namespace imagesmith::vm
