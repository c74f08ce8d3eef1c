// The host side of the guest agent protocol (doc/agent-protocol.md): a
// connection to imagesmith-agent through qemu's unix-socket chardev.
//
// The guest is untrusted (it runs the template author's code), so nothing it
// sends is believed: frame sizes are bounded by the decoder, every message
// must have exactly the fields of its type, strings it sends for people
// (error messages, the agent's name, output lines) are cut to a length and
// have their control characters escaped before they reach a log or a
// terminal, one output line is at most kMaxLineBytes, and one command's
// output at most ExecRequest::max_output_bytes. A guest that breaks the
// protocol gets DataLoss and the connection is not used again.
//
// One request at a time; not safe for concurrent use from several threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/statusor.h"
#include "vm/protocol.h"

namespace imagesmith::vm {

struct ExecRequest {
  std::vector<std::string> argv;           // argv[0] is looked up on the guest's PATH
  std::map<std::string, std::string> env;  // the whole environment
  std::string cwd = "/";
  std::chrono::milliseconds timeout{0};  // enforced by the agent; 0: none
  // Called with each complete output line (without '\n'), in order, with
  // control characters escaped (SanitizeGuestText). A line longer than
  // kMaxLineBytes is passed on in pieces of that size.
  std::function<void(std::string_view line, bool is_stderr)> on_line;
  // Called with each chunk of output exactly as the guest sent it (not
  // sanitized: for files, never for a terminal), before on_line. May be empty.
  std::function<void(std::string_view data, bool is_stderr)> on_output;
  // Output past this many bytes (both streams together) is dropped; one
  // last line says so. The command still runs to its end.
  uint64_t max_output_bytes = 64ull << 20;
};

// The longest output line passed to ExecRequest::on_line.
inline constexpr size_t kMaxLineBytes = 16u << 10;

// `text` from the guest made safe for a log or a terminal: cut to
// `max_bytes` (with "..." when cut), and every byte below 0x20 except tab,
// and 0x7f, written as \xNN, so escape sequences cannot drive the terminal.
std::string SanitizeGuestText(std::string_view text, size_t max_bytes);

struct ExecResult {
  int exit_code = -1;  // valid when signal == 0
  int signal = 0;
  bool timed_out = false;
  bool success() const { return signal == 0 && !timed_out && exit_code == 0; }
  // "exit status 3", "killed by signal 9", "timed out after 30s (killed)".
  std::string Describe(std::chrono::milliseconds timeout) const;
};

// What the node agent says about its guest (INFO, doc/agent-protocol.md).
struct AgentInfo {
  std::string hostname;    // sanitized, at most 255 bytes
  std::string os_release;  // /etc/os-release as the guest has it, at most 64 KiB, raw
};

struct AgentHello {
  uint32_t version = 0;
  uint64_t guest_uptime_ms = 0;  // the guest's CLOCK_BOOTTIME when it answered
  std::string name;
};

class AgentClient {
 public:
  // Connects to qemu's chardev socket at `socket_path` (retrying while qemu
  // creates it, until `deadline_us` on the monotonic clock).
  static StatusOr<std::unique_ptr<AgentClient>> Connect(const std::string& socket_path,
                                                        int64_t deadline_us);
  // Takes ownership of `fd`, a connected stream socket to an agent. For
  // tests and the fuzzer (fuzz/agent_client_fuzzer.cc).
  static std::unique_ptr<AgentClient> FromConnectedSocket(int fd);
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // Says hello every 2 s until the agent answers kReady. DeadlineExceeded at
  // `deadline_us`; Cancelled as soon as `cancelled()` returns true (polled
  // every 100 ms; may be empty); Unavailable when `alive()` returns false
  // (the VM ended).
  StatusOr<AgentHello> WaitReady(int64_t deadline_us, const std::function<bool()>& cancelled,
                                 const std::function<bool()>& alive);

  // Asks the agent for the guest's hostname and /etc/os-release. DataLoss
  // when the answer is malformed or oversized.
  StatusOr<AgentInfo> Info(int64_t deadline_us);

  // Sends HELLO once and waits for READY (a heartbeat on a connection that
  // is already ready). DeadlineExceeded / Unavailable as ReadFrame.
  StatusOr<AgentHello> Ping(int64_t deadline_us);

  // Runs a command in the guest. The agent kills it at req.timeout; the
  // host gives up (DeadlineExceeded) 15 s after that, or at `deadline_us`.
  StatusOr<ExecResult> Exec(const ExecRequest& req, int64_t deadline_us,
                            const std::function<bool()>& cancelled);

  // Copies `data` to `guest_path` (whose folder must exist) with `mode`.
  // The agent writes a temporary file and renames it into place.
  Status Put(const std::string& guest_path, std::string_view data, uint32_t mode,
             int64_t deadline_us);

  // Asks the agent to power the guest off; OK once it acknowledged.
  Status PowerOff(int64_t deadline_us);

 private:
  explicit AgentClient(int fd) : fd_(fd) {}
  Status SendFrame(proto::Type type, const std::string& payload);
  // Reads the next frame. DeadlineExceeded / Cancelled / Unavailable (EOF).
  Status ReadFrame(proto::Type* type, std::string* payload, int64_t deadline_us,
                   const std::function<bool()>& cancelled);
  Status WaitAck(uint32_t id, int64_t deadline_us, const std::string& what);

  int fd_;
  uint32_t next_id_ = 1;
  proto::Decoder decoder_;
};

}  // namespace imagesmith::vm
