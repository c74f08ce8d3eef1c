#include "vm/agent_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vm/unix_socket.h"

namespace imagesmith::vm {

namespace {

std::string Seconds(std::chrono::milliseconds ms) {
  return std::to_string(ms.count() / 1000) + "s";
}

// Longest guest string kept in an error message or the agent's name.
constexpr size_t kMaxGuestMessage = 1024;

Status Malformed(std::string_view what) {
  return DataLossError("the guest agent sent a malformed " + std::string(what) +
                       " message; the connection is closed (is the image's agent from another "
                       "imagesmith version, or did something in the guest write to its port?)");
}

}  // namespace

std::string SanitizeGuestText(std::string_view text, size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  if (cut) text = text.substr(0, max_bytes);
  std::string out;
  out.reserve(text.size());
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    if ((b < 0x20 && b != '\t') || b == 0x7f) {
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    } else {
      out.push_back(ch);
    }
  }
  if (cut) out += "...";
  return out;
}

std::unique_ptr<AgentClient> AgentClient::FromConnectedSocket(int fd) {
  return std::unique_ptr<AgentClient>(new AgentClient(fd));
}

std::string ExecResult::Describe(std::chrono::milliseconds timeout) const {
  if (timed_out) return "timed out after " + Seconds(timeout) + " (killed)";
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exit status " + std::to_string(exit_code);
}

StatusOr<std::unique_ptr<AgentClient>> AgentClient::Connect(const std::string& socket_path,
                                                            int64_t deadline_us) {
  ASSIGN_OR_RETURN(int fd, ConnectUnixSocket(socket_path, deadline_us, "agent socket"));
  return std::unique_ptr<AgentClient>(new AgentClient(fd));
}

AgentClient::~AgentClient() { ::close(fd_); }

Status AgentClient::SendFrame(proto::Type type, const std::string& payload) {
  return SendAll(fd_, proto::EncodeFrame(type, payload), "the guest agent");
}

Status AgentClient::ReadFrame(proto::Type* type, std::string* payload, int64_t deadline_us,
                              const std::function<bool()>& cancelled) {
  for (;;) {
    uint32_t bad = 0;
    switch (decoder_.Next(type, payload, &bad)) {
      case proto::Decoder::kFrame:
        return Status::Ok();
      case proto::Decoder::kOversize:
        return DataLossError("the guest agent sent a frame of " + std::to_string(bad) +
                             " bytes, outside the protocol's 1.." +
                             std::to_string(proto::kMaxFrameBody) + "; closing the connection");
      case proto::Decoder::kNeedMore:
        break;
    }
    int64_t now = MonotonicNowUs();
    if (now >= deadline_us) return DeadlineExceededError("the guest agent did not answer in time");
    if (cancelled && cancelled()) return CancelledError("canceled");
    pollfd p{fd_, POLLIN, 0};
    int wait_ms = static_cast<int>(std::min<int64_t>((deadline_us - now) / 1000 + 1, 100));
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR) return ErrnoError("poll on the agent socket", errno);
    if (r <= 0) continue;
    char buf[64 << 10];
    ssize_t got = ::recv(fd_, buf, sizeof(buf), 0);
    if (got == 0) return UnavailableError("the VM closed the agent connection (qemu exited)");
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return UnavailableError(std::string("reading from the guest agent: ") + std::strerror(errno));
    }
    decoder_.Feed(buf, static_cast<size_t>(got));
  }
}

StatusOr<AgentHello> AgentClient::WaitReady(int64_t deadline_us,
                                            const std::function<bool()>& cancelled,
                                            const std::function<bool()>& alive) {
  int64_t next_hello = 0;
  for (;;) {
    int64_t now = MonotonicNowUs();
    if (now >= next_hello) {
      RETURN_IF_ERROR(SendFrame(proto::Type::kHello, ""));
      next_hello = now + 2000000;
    }
    if (alive && !alive()) return UnavailableError("qemu exited before the guest agent was ready");
    proto::Type type{};
    std::string payload;
    Status s = ReadFrame(&type, &payload, std::min(deadline_us, now + 500000), cancelled);
    if (s.code() == StatusCode::kDeadlineExceeded) {
      if (MonotonicNowUs() >= deadline_us) {
        return DeadlineExceededError("the guest agent did not become ready");
      }
      continue;
    }
    RETURN_IF_ERROR(s);
    if (type != proto::Type::kReady) continue;  // stale output of nothing; ignore
    AgentHello h;
    proto::Reader r(payload);
    if (!(r.U32(&h.version) && r.U64(&h.guest_uptime_ms) && r.Str(&h.name)) || !r.done()) {
      return Malformed("ready");
    }
    h.name = SanitizeGuestText(h.name, 256);
    if (h.version != proto::kProtocolVersion) {
      return FailedPreconditionError("the guest agent speaks protocol version " +
                                     std::to_string(h.version) + ", imagesmith speaks " +
                                     std::to_string(proto::kProtocolVersion));
    }
    return h;
  }
}

StatusOr<ExecResult> AgentClient::Exec(const ExecRequest& req, int64_t deadline_us,
                                       const std::function<bool()>& cancelled) {
  uint32_t id = next_id_++;
  proto::Writer w;
  w.U32(id)
      .U32(static_cast<uint32_t>(req.timeout.count()))
      .U32(static_cast<uint32_t>(req.argv.size()));
  for (const auto& a : req.argv) w.Str(a);
  w.U32(static_cast<uint32_t>(req.env.size()));
  for (const auto& [k, v] : req.env) w.Str(k + "=" + v);
  w.Str(req.cwd);
  if (w.data().size() + 1 > proto::kMaxFrameBody) {
    return InvalidArgumentError(
        "the command and its environment are larger than the agent "
        "protocol's frame limit of 1 MiB");
  }
  RETURN_IF_ERROR(SendFrame(proto::Type::kExec, w.data()));
  if (req.timeout.count() > 0) {
    deadline_us =
        std::min<int64_t>(deadline_us, MonotonicNowUs() + (req.timeout.count() + 15000) * 1000);
  }
  std::string partial[2];
  uint64_t output_bytes = 0;
  bool dropping = false;
  auto emit = [&](std::string_view line, int i) {
    if (req.on_line) req.on_line(SanitizeGuestText(line, kMaxLineBytes), i == 1);
  };
  auto flush = [&](int i, bool all) {
    size_t start = 0;
    for (size_t nl; (nl = partial[i].find('\n', start)) != std::string::npos; start = nl + 1) {
      emit(std::string_view(partial[i]).substr(start, nl - start), i);
    }
    // A line without its end yet is held up to kMaxLineBytes, then passed on.
    while (partial[i].size() - start >= kMaxLineBytes) {
      emit(std::string_view(partial[i]).substr(start, kMaxLineBytes), i);
      start += kMaxLineBytes;
    }
    partial[i].erase(0, start);
    if (all && !partial[i].empty()) {
      emit(partial[i], i);
      partial[i].clear();
    }
  };
  for (;;) {
    proto::Type type{};
    std::string payload;
    Status s = ReadFrame(&type, &payload, deadline_us, cancelled);
    if (s.code() == StatusCode::kDeadlineExceeded) {
      return DeadlineExceededError("the guest agent did not report the end of '" + req.argv[0] +
                                   "' in time");
    }
    RETURN_IF_ERROR(s);
    // The agent answers every HELLO of WaitReady; late answers are harmless.
    if (type == proto::Type::kReady) continue;
    proto::Reader r(payload);
    uint32_t got_id = 0;
    if (!r.U32(&got_id)) return Malformed("command");
    if (got_id != id) continue;
    if (type == proto::Type::kStdout || type == proto::Type::kStderr) {
      int i = type == proto::Type::kStderr ? 1 : 0;
      std::string_view data = r.Rest();
      if (dropping) continue;
      if (output_bytes + data.size() > req.max_output_bytes) {
        data = data.substr(0, req.max_output_bytes - output_bytes);
        dropping = true;
      }
      output_bytes += data.size();
      if (req.on_output) req.on_output(data, i == 1);
      partial[i].append(data);
      flush(i, dropping);
      if (dropping) {
        flush(1 - i, true);
        emit("[imagesmith: the command's output passed " +
                 std::to_string(req.max_output_bytes >> 20) + " MiB; the rest is dropped]",
             1);
      }
    } else if (type == proto::Type::kExit) {
      flush(0, true);
      flush(1, true);
      ExecResult res;
      uint8_t t = 0;
      if (!(r.I32(&res.exit_code) && r.I32(&res.signal) && r.U8(&t)) || !r.done() || t > 1 ||
          res.signal < 0 || res.signal > 64 || res.exit_code < -1 || res.exit_code > 255) {
        return Malformed("exit");
      }
      res.timed_out = t != 0;
      return res;
    } else if (type == proto::Type::kError) {
      std::string msg;
      if (!r.Str(&msg) || !r.done()) return Malformed("error");
      return InternalError("the guest agent could not run '" + req.argv[0] +
                           "': " + SanitizeGuestText(msg, kMaxGuestMessage));
    } else {
      return Malformed("unexpected (type " + std::to_string(static_cast<unsigned>(type)) +
                       ") command");
    }
  }
}

StatusOr<AgentInfo> AgentClient::Info(int64_t deadline_us) {
  uint32_t id = next_id_++;
  RETURN_IF_ERROR(SendFrame(proto::Type::kInfo, proto::Writer().U32(id).data()));
  for (;;) {
    proto::Type type{};
    std::string payload;
    RETURN_IF_ERROR(ReadFrame(&type, &payload, deadline_us, nullptr));
    if (type == proto::Type::kReady) continue;  // a late answer to a HELLO
    proto::Reader r(payload);
    uint32_t got_id = 0;
    if (!r.U32(&got_id)) return Malformed("info");
    if (got_id != id) continue;
    if (type == proto::Type::kError) {
      std::string msg;
      if (!r.Str(&msg) || !r.done()) return Malformed("error");
      return FailedPreconditionError("the guest agent does not answer INFO: " +
                                     SanitizeGuestText(msg, kMaxGuestMessage));
    }
    if (type != proto::Type::kInfoReply) return Malformed("unexpected info");
    AgentInfo info;
    if (!(r.Str(&info.hostname) && r.Str(&info.os_release)) || !r.done() ||
        info.hostname.size() > 255 || info.os_release.size() > (64u << 10)) {
      return Malformed("info");
    }
    info.hostname = SanitizeGuestText(info.hostname, 255);
    return info;
  }
}

StatusOr<AgentHello> AgentClient::Ping(int64_t deadline_us) {
  RETURN_IF_ERROR(SendFrame(proto::Type::kHello, ""));
  for (;;) {
    proto::Type type{};
    std::string payload;
    RETURN_IF_ERROR(ReadFrame(&type, &payload, deadline_us, nullptr));
    if (type != proto::Type::kReady) continue;  // stale output of an abandoned command
    AgentHello h;
    proto::Reader r(payload);
    if (!(r.U32(&h.version) && r.U64(&h.guest_uptime_ms) && r.Str(&h.name)) || !r.done()) {
      return Malformed("ready");
    }
    h.name = SanitizeGuestText(h.name, 256);
    return h;
  }
}

Status AgentClient::WaitAck(uint32_t id, int64_t deadline_us, const std::string& what) {
  for (;;) {
    proto::Type type{};
    std::string payload;
    Status s = ReadFrame(&type, &payload, deadline_us, nullptr);
    if (!s.ok()) return s.WithContext(what);
    if (type == proto::Type::kReady) continue;  // a late answer to a HELLO
    proto::Reader r(payload);
    uint32_t got_id = 0;
    if (!r.U32(&got_id)) return Malformed("reply");
    if (got_id != id) continue;
    if (type == proto::Type::kOk) {
      if (!r.done()) return Malformed("ok");
      return Status::Ok();
    }
    if (type == proto::Type::kError) {
      std::string msg;
      if (!r.Str(&msg) || !r.done()) return Malformed("error");
      return FailedPreconditionError(what + ": " + SanitizeGuestText(msg, kMaxGuestMessage));
    }
    return Malformed("unexpected (type " + std::to_string(static_cast<unsigned>(type)) + ") reply");
  }
}

Status AgentClient::Put(const std::string& guest_path, std::string_view data, uint32_t mode,
                        int64_t deadline_us) {
  uint32_t id = next_id_++;
  RETURN_IF_ERROR(
      SendFrame(proto::Type::kPutBegin, proto::Writer().U32(id).U32(mode).Str(guest_path).data()));
  for (size_t off = 0; off < data.size(); off += proto::kMaxChunk) {
    RETURN_IF_ERROR(
        SendFrame(proto::Type::kPutData,
                  proto::Writer().U32(id).Raw(data.substr(off, proto::kMaxChunk)).data()));
  }
  RETURN_IF_ERROR(SendFrame(proto::Type::kPutEnd, proto::Writer().U32(id).data()));
  return WaitAck(id, deadline_us,
                 "copying " + std::to_string(data.size()) + " bytes to " + guest_path);
}

Status AgentClient::PowerOff(int64_t deadline_us) {
  uint32_t id = next_id_++;
  RETURN_IF_ERROR(SendFrame(proto::Type::kPowerOff, proto::Writer().U32(id).data()));
  return WaitAck(id, deadline_us, "powering the guest off");
}

}  // namespace imagesmith::vm
