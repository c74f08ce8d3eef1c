// The host side of the agent protocol against a guest that lies: every test
// plays the guest on the other end of a socketpair and checks that imagesmith
// believes nothing it should not.
#include "vm/agent_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "base/env.h"

namespace imagesmith::vm {
namespace {

using proto::Type;
using proto::Writer;

class HostileGuest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_ = AgentClient::FromConnectedSocket(fds[0]);
    guest_ = fds[1];
  }
  void TearDown() override {
    if (guest_ >= 0) ::close(guest_);
  }
  // Writes frames as the guest, then closes its end (EOF after them).
  void Send(const std::vector<std::string>& frames, bool close_after = true) {
    for (const std::string& f : frames) {
      ASSERT_EQ(::write(guest_, f.data(), f.size()), static_cast<ssize_t>(f.size()));
    }
    if (close_after) {
      ::shutdown(guest_, SHUT_WR);
    }
  }
  int64_t Soon() { return Env::Default()->MonotonicMicros() + 5000000; }
  StatusOr<ExecResult> Exec(std::vector<std::string>* lines) {
    ExecRequest req;
    req.argv = {"true"};
    req.on_line = [lines](std::string_view l, bool) { lines->emplace_back(l); };
    return client_->Exec(req, Soon(), nullptr);
  }

  std::unique_ptr<AgentClient> client_;
  int guest_ = -1;
};

std::string Exit(uint32_t id, int32_t code, int32_t sig, uint8_t timed_out) {
  return proto::EncodeFrame(Type::kExit, Writer().U32(id).I32(code).I32(sig).U8(timed_out).data());
}

TEST_F(HostileGuest, AnHonestCommandStillWorks) {
  Send({proto::EncodeFrame(Type::kStdout, Writer().U32(1).Raw("one\ntw").data()),
        proto::EncodeFrame(Type::kStdout, Writer().U32(1).Raw("o\n").data()), Exit(1, 3, 0, 0)});
  std::vector<std::string> lines;
  auto r = Exec(&lines);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two"}));
}

// WaitReady says HELLO every 2 s and the agent answers each one, so READY
// messages can arrive during the first command; their first field (the
// protocol version, 1) must not be taken for the command's id.
TEST_F(HostileGuest, LateReadyAnswersDuringACommandAreIgnored) {
  std::string ready = proto::EncodeFrame(
      Type::kReady, Writer().U32(proto::kProtocolVersion).U64(5).Str("a").data());
  Send({ready, proto::EncodeFrame(Type::kStdout, Writer().U32(1).Raw("x\n").data()), ready,
        Exit(1, 0, 0, 0)});
  std::vector<std::string> lines;
  auto r = Exec(&lines);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(lines, (std::vector<std::string>{"x"}));
}

TEST_F(HostileGuest, EscapeSequencesInOutputAreEscapedBeforeTheyReachALogOrTerminal) {
  Send({proto::EncodeFrame(Type::kStderr,
                           Writer().U32(1).Raw("\x1b]0;owned\x07red\x1b[31m\n").data()),
        Exit(1, 0, 0, 0)});
  std::vector<std::string> lines;
  ASSERT_TRUE(Exec(&lines).ok());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "\\x1b]0;owned\\x07red\\x1b[31m");
}

TEST_F(HostileGuest, AnEndlessLineIsPassedOnInBoundedPieces) {
  std::vector<std::string> frames;
  for (int i = 0; i < 8; ++i) {
    frames.push_back(
        proto::EncodeFrame(Type::kStdout, Writer().U32(1).Raw(std::string(60000, 'a')).data()));
  }
  frames.push_back(Exit(1, 0, 0, 0));
  std::thread guest([&] { Send(frames); });
  std::vector<std::string> lines;
  auto r = Exec(&lines);
  guest.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  size_t total = 0;
  for (const std::string& l : lines) {
    EXPECT_LE(l.size(), kMaxLineBytes);
    total += l.size();
  }
  EXPECT_EQ(total, 8u * 60000);
}

TEST_F(HostileGuest, OutputPastTheLimitIsDroppedAndTheCommandStillEnds) {
  std::vector<std::string> frames;
  for (int i = 0; i < 40; ++i) {
    frames.push_back(proto::EncodeFrame(
        Type::kStdout, Writer().U32(1).Raw(std::string(50000, 'b') + "\n").data()));
  }
  frames.push_back(Exit(1, 0, 0, 0));
  std::thread guest([&] { Send(frames); });
  ExecRequest req;
  req.argv = {"true"};
  req.max_output_bytes = 1 << 20;
  size_t bytes = 0;
  std::string last;
  req.on_line = [&](std::string_view l, bool) {
    bytes += l.size();
    last = std::string(l);
  };
  auto r = client_->Exec(req, Soon(), nullptr);
  guest.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LE(bytes, (1u << 20) + 200);
  EXPECT_NE(last.find("the rest is dropped"), std::string::npos) << last;
}

TEST_F(HostileGuest, MalformedOrImpossibleExitMessagesAreRefused) {
  for (const std::string& bad :
       {Exit(1, 0, 0, 7),     // timed-out flag not 0 or 1
        Exit(1, 0, 999, 0),   // no such signal
        Exit(1, 4096, 0, 0),  // no such exit status
        proto::EncodeFrame(Type::kExit, Writer().U32(1).I32(0).data()),  // too short
        proto::EncodeFrame(Type::kExit, Writer().U32(1).I32(0).I32(0).U8(0).U8(0).data())}) {
    TearDown();  // a fresh connection for each
    SetUp();
    Send({bad});
    std::vector<std::string> lines;
    auto r = Exec(&lines);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  }
}

TEST_F(HostileGuest, AHugeErrorMessageIsCutAndEscaped) {
  Send({proto::EncodeFrame(Type::kError,
                           Writer().U32(1).Str(std::string(100000, 'e') + "\x1b[2J").data())});
  std::vector<std::string> lines;
  auto r = Exec(&lines);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 1200u);
  EXPECT_EQ(r.status().message().find('\x1b'), std::string::npos);
}

TEST_F(HostileGuest, AnOversizedFrameClosesTheConnection) {
  Send({Writer().U32(proto::kMaxFrameBody + 1).U8(0x11).data()});
  std::vector<std::string> lines;
  auto r = Exec(&lines);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
}

TEST_F(HostileGuest, AReadyMessageWithTrailingBytesOrAnotherVersionIsRefused) {
  Send({proto::EncodeFrame(
      Type::kReady, Writer().U32(proto::kProtocolVersion).U64(1).Str("agent").U8(0).data())});
  auto r = client_->WaitReady(Soon(), nullptr, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  TearDown();
  SetUp();
  Send({proto::EncodeFrame(Type::kReady, Writer().U32(99).U64(1).Str("agent").data())});
  r = client_->WaitReady(Soon(), nullptr, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST(SanitizeGuestTextTest, CutsAndEscapes) {
  EXPECT_EQ(SanitizeGuestText("a\tb\nc\x7f", 100), "a\tb\\x0ac\\x7f");
  EXPECT_EQ(SanitizeGuestText("abcdef", 3), "abc...");
}

}  // namespace
}  // namespace imagesmith::vm

namespace imagesmith::vm {
namespace {

using proto::Type;
using proto::Writer;

std::string InfoReply(uint32_t id, std::string_view host, std::string_view os) {
  return proto::EncodeFrame(Type::kInfoReply, Writer().U32(id).Str(host).Str(os).data());
}

TEST_F(HostileGuest, InfoReturnsHostnameAndOsReleaseAndSanitizesTheHostname) {
  Send({InfoReply(1, "node\x1b[2J", "ID=debian\nVERSION_ID=\"12\"\n")});
  auto info = client_->Info(Soon());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->hostname, "node\\x1b[2J");
  EXPECT_EQ(info->os_release, "ID=debian\nVERSION_ID=\"12\"\n");
}

TEST_F(HostileGuest, InfoWithTrailingBytesOrAnOversizedHostnameIsDataLoss) {
  Send({proto::EncodeFrame(Type::kInfoReply, Writer().U32(1).Str("h").Str("ID=x").U8(0).data())});
  EXPECT_EQ(client_->Info(Soon()).status().code(), StatusCode::kDataLoss);
}

TEST_F(HostileGuest, InfoHostnameOver255BytesIsDataLoss) {
  Send({InfoReply(1, std::string(300, 'h'), "ID=x")});
  EXPECT_EQ(client_->Info(Soon()).status().code(), StatusCode::kDataLoss);
}

TEST_F(HostileGuest, PingSkipsStaleOutputAndTakesTheNextReady) {
  Send({proto::EncodeFrame(Type::kStdout, Writer().U32(7).Raw("late\n").data()),
        proto::EncodeFrame(Type::kReady,
                           Writer().U32(proto::kProtocolVersion).U64(1234).Str("a").data())});
  auto hello = client_->Ping(Soon());
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();
  EXPECT_EQ(hello->guest_uptime_ms, 1234u);
}

TEST_F(HostileGuest, OnOutputGetsTheRawBytes) {
  Send({proto::EncodeFrame(Type::kStdout, Writer().U32(1).Raw("a\x1b[31mb\r\n").data()),
        proto::EncodeFrame(Type::kExit, Writer().U32(1).I32(0).I32(0).U8(0).data())});
  ExecRequest req;
  req.argv = {"true"};
  std::string raw;
  req.on_output = [&](std::string_view data, bool) { raw.append(data); };
  auto r = client_->Exec(req, Soon(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(raw, "a\x1b[31mb\r\n");
}

}  // namespace
}  // namespace imagesmith::vm
