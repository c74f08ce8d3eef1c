// The guest agent protocol: frames exchanged between imagesmith (the host)
// and imagesmith-agent (inside a validation VM) over a virtio-serial port.
// doc/agent-protocol.md is the specification; this header is its encoding.
//
// Header-only and free of imagesmith's other libraries, because the agent
// (a static binary that runs inside the image) includes it too.
// Everything here is a pure function or a plain value; thread-compatible.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace imagesmith::vm::proto {

// The virtio-serial port's name (the guest sees /dev/virtio-ports/<name> and
// /sys/class/virtio-ports/vportNpM/name).
inline constexpr char kPortName[] = "org.imagesmith.agent.0";
// Every port whose name starts with this is served, each by its own agent
// process: validation VMs have port .0 only; fleet nodes have .0 for hello,
// heartbeats and setup and .1 ... .N, one per task slot, so that tasks run
// at the same time (doc/agent-protocol.md, "Several channels").
inline constexpr char kPortPrefix[] = "org.imagesmith.agent.";
inline constexpr uint32_t kProtocolVersion = 1;

// A frame is: u32 little-endian body length N, then N body bytes. The body
// is one type byte and the payload. 1 <= N <= kMaxFrameBody.
inline constexpr uint32_t kMaxFrameBody = 1u << 20;
// File data and output are sent in chunks of at most this many bytes.
inline constexpr uint32_t kMaxChunk = 64u << 10;

enum class Type : uint8_t {
  kHello = 0x01,      // host -> guest: empty
  kReady = 0x02,      // guest -> host: u32 version, u64 guest uptime ms, str agent name
  kInfo = 0x03,       // host -> guest: u32 id
  kInfoReply = 0x04,  // guest -> host: u32 id, str hostname, str /etc/os-release
  kExec = 0x10,    // host -> guest: u32 id, u32 timeout ms, u32 argc, str*, u32 envc, str*, str cwd
  kStdout = 0x11,  // guest -> host: u32 id, raw bytes
  kStderr = 0x12,  // guest -> host: u32 id, raw bytes
  kExit = 0x13,    // guest -> host: u32 id, i32 exit code, i32 signal, u8 timed out
  kPutBegin = 0x20,  // host -> guest: u32 id, u32 mode, str path
  kPutData = 0x21,   // host -> guest: u32 id, raw bytes
  kPutEnd = 0x22,    // host -> guest: u32 id  (answered by kOk or kError)
  kPowerOff = 0x30,  // host -> guest: u32 id  (answered by kOk, then the guest powers off)
  kOk = 0x40,        // guest -> host: u32 id
  kError = 0x41,     // guest -> host: u32 id, str message
};

// Builds payloads: integers little-endian, strings as u32 length + bytes.
class Writer {
 public:
  Writer& U8(uint8_t v) {
    buf_.push_back(static_cast<char>(v));
    return *this;
  }
  Writer& U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Writer& I32(int32_t v) { return U32(static_cast<uint32_t>(v)); }
  Writer& U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Writer& Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    buf_.append(s);
    return *this;
  }
  Writer& Raw(std::string_view s) {
    buf_.append(s);
    return *this;
  }
  const std::string& data() const { return buf_; }

 private:
  std::string buf_;
};

// Reads payloads written by Writer. Every getter returns false (and leaves
// the reader failed) when the payload is too short.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool U8(uint8_t* v) {
    if (!Need(1)) return false;
    *v = static_cast<uint8_t>(data_[pos_++]);
    return true;
  }
  bool U32(uint32_t* v) {
    if (!Need(4)) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i)
      *v |= static_cast<uint32_t>(static_cast<uint8_t>(data_[pos_++])) << (8 * i);
    return true;
  }
  bool I32(int32_t* v) {
    uint32_t u = 0;
    if (!U32(&u)) return false;
    *v = static_cast<int32_t>(u);
    return true;
  }
  bool U64(uint64_t* v) {
    if (!Need(8)) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i)
      *v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_++])) << (8 * i);
    return true;
  }
  bool Str(std::string* s) {
    uint32_t n = 0;
    if (!U32(&n) || !Need(n)) return false;
    s->assign(data_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  std::string_view Rest() {
    std::string_view r = data_.substr(pos_);
    pos_ = data_.size();
    return r;
  }
  bool done() const { return pos_ == data_.size(); }

 private:
  bool Need(size_t n) {
    if (failed_ || data_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  std::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// A whole frame (length prefix included) for `type` and `payload`.
// Requires 1 + payload.size() <= kMaxFrameBody.
inline std::string EncodeFrame(Type type, std::string_view payload) {
  Writer w;
  w.U32(static_cast<uint32_t>(payload.size() + 1)).U8(static_cast<uint8_t>(type)).Raw(payload);
  return w.data();
}

// Splits a byte stream into frames. Feed bytes as they arrive, then call
// Next until it returns kNeedMore. A length of 0 or above kMaxFrameBody is
// kOversize: the stream cannot be trusted any more and the caller must
// drop the connection (the agent instead skips the announced body and
// answers kError, see doc/agent-protocol.md).
class Decoder {
 public:
  enum Result { kNeedMore, kFrame, kOversize };
  void Feed(const char* data, size_t n) { buf_.append(data, n); }
  Result Next(Type* type, std::string* payload, uint32_t* bad_length) {
    if (buf_.size() - pos_ < 4) return Compact(kNeedMore);
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i)
      n |= static_cast<uint32_t>(static_cast<uint8_t>(buf_[pos_ + i])) << (8 * i);
    if (n == 0 || n > kMaxFrameBody) {
      *bad_length = n;
      return kOversize;
    }
    if (buf_.size() - pos_ < 4 + static_cast<size_t>(n)) return Compact(kNeedMore);
    *type = static_cast<Type>(static_cast<uint8_t>(buf_[pos_ + 4]));
    payload->assign(buf_, pos_ + 5, n - 1);
    pos_ += 4 + n;
    return kFrame;
  }
  // Discards what is buffered (after kOversize) and returns how many bytes.
  size_t Reset() {
    size_t n = buf_.size() - pos_;
    buf_.clear();
    pos_ = 0;
    return n;
  }

 private:
  Result Compact(Result r) {
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    return r;
  }
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace imagesmith::vm::proto
