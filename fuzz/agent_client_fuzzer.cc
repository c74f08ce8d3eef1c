// Fuzzes the host side of the guest agent protocol: the input is everything
// a hostile guest sends (after one byte that picks the host's request). The
// host must answer every stream with a result or an error, never crash or
// hang, and never pass on an output line that is longer than kMaxLineBytes
// or carries a control character other than tab.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "base/env.h"
#include "vm/agent_client.h"

namespace {

void CheckLine(std::string_view line) {
  if (line.size() > imagesmith::vm::kMaxLineBytes + 3) std::abort();
  for (char c : line) {
    const auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && b != '\t') || b == 0x7f) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imagesmith;
  if (size < 1 || size > (256u << 10)) return 0;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  auto client = vm::AgentClient::FromConnectedSocket(fds[0]);
  const int guest = fds[1];
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  // The guest writes its stream, reads (and drops) what the host sends, and
  // closes: the host then sees EOF, so every request ends.
  std::thread writer([guest, stream] {
    size_t off = 0;
    while (off < stream.size()) {
      ssize_t w = ::send(guest, stream.data() + off, stream.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    ::shutdown(guest, SHUT_WR);
  });
  std::thread drain([guest] {
    char buf[4096];
    while (::recv(guest, buf, sizeof(buf), 0) > 0) {
    }
  });
  const int64_t deadline = Env::Default()->MonotonicMicros() + 5000000;
  switch (data[0] % 4) {
    case 0: {
      auto r = client->WaitReady(deadline, nullptr, nullptr);
      if (r.ok() && r->name.size() > 260) std::abort();
      break;
    }
    case 1: {
      vm::ExecRequest req;
      req.argv = {"/bin/true"};
      req.max_output_bytes = 64 << 10;
      req.on_line = [](std::string_view line, bool) { CheckLine(line); };
      auto r = client->Exec(req, deadline, nullptr);
      if (!r.ok() && r.status().message().size() > 4096) std::abort();
      break;
    }
    case 2: {
      Status s = client->Put("/tmp/x", "data", 0644, deadline);
      if (s.message().size() > 4096) std::abort();
      break;
    }
    default:
      (void)client->PowerOff(deadline);
      break;
  }
  writer.join();
  client.reset();  // closes the host's end; the drain thread sees EOF
  drain.join();
  ::close(guest);
  return 0;
}
