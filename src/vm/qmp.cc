#include "vm/qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/json.h"
#include "vm/unix_socket.h"

namespace imagesmith::vm {

namespace {

// An answer line is at most this long ("info registers -a" of 8 vCPUs is ~16 KiB).
constexpr size_t kMaxLine = 4 << 20;

}  // namespace

StatusOr<std::unique_ptr<QmpClient>> QmpClient::Connect(const std::string& socket_path,
                                                        int64_t deadline_us) {
  ASSIGN_OR_RETURN(int fd, ConnectUnixSocket(socket_path, deadline_us, "monitor socket"));
  std::unique_ptr<QmpClient> c(new QmpClient(fd));
  ASSIGN_OR_RETURN(std::string greeting, c->ReadLine(deadline_us));
  if (greeting.find("\"QMP\"") == std::string::npos) {
    return InternalError("qemu's monitor did not greet with QMP: " + greeting.substr(0, 200));
  }
  RETURN_IF_ERROR(c->Execute(R"({"execute":"qmp_capabilities"})", deadline_us).status());
  return c;
}

QmpClient::~QmpClient() { ::close(fd_); }

StatusOr<std::string> QmpClient::ReadLine(int64_t deadline_us) {
  for (;;) {
    size_t nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    if (buffered_.size() > kMaxLine) {
      return DataLossError("qemu's monitor sent a line longer than " + std::to_string(kMaxLine) +
                           " bytes");
    }
    int64_t now = MonotonicNowUs();
    if (now >= deadline_us) return DeadlineExceededError("qemu's monitor did not answer in time");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>((deadline_us - now) / 1000 + 1, 100)));
    if (r < 0 && errno != EINTR) return ErrnoError("poll on the monitor socket", errno);
    if (r <= 0) continue;
    char buf[16 << 10];
    ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
    if (got == 0) return UnavailableError("qemu closed its monitor socket (it exited)");
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return UnavailableError(std::string("reading qemu's monitor: ") + std::strerror(errno));
    }
    buffered_.append(buf, static_cast<size_t>(got));
  }
}

StatusOr<std::string> QmpClient::Execute(const std::string& command_json, int64_t deadline_us) {
  RETURN_IF_ERROR(SendAll(fd_, command_json + "\n", "qemu's monitor"));
  for (;;) {
    ASSIGN_OR_RETURN(std::string answer, ReadLine(deadline_us));
    auto j = ParseJson(answer);
    if (!j.ok() || !j->is_object()) {
      return InternalError("qemu's monitor sent something that is not a JSON object: " +
                           answer.substr(0, 200));
    }
    if (j->Find("event") != nullptr) continue;
    if (const Json* e = j->Find("error"); e != nullptr) {
      const Json* d = e->is_object() ? e->Find("desc") : nullptr;
      return InternalError("qemu's monitor refused " + command_json + ": " +
                           (d != nullptr && d->is_string() ? d->string_value() : e->Dump()));
    }
    const Json* r = j->Find("return");
    if (r == nullptr) continue;
    return r->is_string() ? r->string_value() : r->Dump();
  }
}

StatusOr<std::string> QmpClient::Hmp(const std::string& command_line, int64_t deadline_us) {
  Json cmd = Json::MakeObject();
  cmd.Set("execute", Json::String("human-monitor-command"));
  Json args = Json::MakeObject();
  args.Set("command-line", Json::String(command_line));
  cmd.Set("arguments", std::move(args));
  return Execute(cmd.Dump(), deadline_us);
}

std::vector<uint64_t> InstructionPointers(const std::string& info_registers) {
  std::vector<uint64_t> out;
  for (const char* tag : {"RIP=", "EIP="}) {
    for (size_t at = info_registers.find(tag); at != std::string::npos;
         at = info_registers.find(tag, at + 4)) {
      out.push_back(std::strtoull(info_registers.c_str() + at + 4, nullptr, 16));
    }
  }
  return out;
}

}  // namespace imagesmith::vm
