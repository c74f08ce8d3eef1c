#include "vm/protocol.h"

#include <gtest/gtest.h>

namespace imagesmith::vm::proto {
namespace {

TEST(ProtocolTest, FrameRoundTripsThroughTheDecoderByteByByte) {
  std::string payload = Writer().U32(7).Str("hello").U64(1ull << 40).I32(-3).data();
  std::string frame = EncodeFrame(Type::kExec, payload);
  ASSERT_EQ(frame.size(), 4 + 1 + payload.size());
  EXPECT_EQ(static_cast<uint8_t>(frame[0]), payload.size() + 1);
  Decoder d;
  Type t{};
  std::string got;
  uint32_t bad = 0;
  for (size_t i = 0; i + 1 < frame.size(); ++i) {
    d.Feed(&frame[i], 1);
    ASSERT_EQ(d.Next(&t, &got, &bad), Decoder::kNeedMore) << i;
  }
  d.Feed(&frame.back(), 1);
  ASSERT_EQ(d.Next(&t, &got, &bad), Decoder::kFrame);
  EXPECT_EQ(t, Type::kExec);
  Reader r(got);
  uint32_t id = 0;
  std::string s;
  uint64_t big = 0;
  int32_t neg = 0;
  ASSERT_TRUE(r.U32(&id) && r.Str(&s) && r.U64(&big) && r.I32(&neg));
  EXPECT_EQ(id, 7u);
  EXPECT_EQ(s, "hello");
  EXPECT_EQ(big, 1ull << 40);
  EXPECT_EQ(neg, -3);
  EXPECT_TRUE(r.done());
}

TEST(ProtocolTest, TwoFramesInOneReadComeOutInOrder) {
  std::string both = EncodeFrame(Type::kHello, "") + EncodeFrame(Type::kOk, Writer().U32(9).data());
  Decoder d;
  d.Feed(both.data(), both.size());
  Type t{};
  std::string p;
  uint32_t bad = 0;
  ASSERT_EQ(d.Next(&t, &p, &bad), Decoder::kFrame);
  EXPECT_EQ(t, Type::kHello);
  EXPECT_TRUE(p.empty());
  ASSERT_EQ(d.Next(&t, &p, &bad), Decoder::kFrame);
  EXPECT_EQ(t, Type::kOk);
  EXPECT_EQ(d.Next(&t, &p, &bad), Decoder::kNeedMore);
}

TEST(ProtocolTest, RejectsZeroAndOversizeLengths) {
  for (uint32_t n : {0u, kMaxFrameBody + 1, 0xffffffffu}) {
    std::string f = Writer().U32(n).U8(1).data();
    Decoder d;
    d.Feed(f.data(), f.size());
    Type t{};
    std::string p;
    uint32_t bad = 1234;
    EXPECT_EQ(d.Next(&t, &p, &bad), Decoder::kOversize) << n;
    EXPECT_EQ(bad, n);
  }
}

TEST(ProtocolTest, ReaderFailsOnTruncatedStringAndStaysFailed) {
  std::string p = Writer().U32(100).Raw("short").data();
  Reader r(p);
  std::string s;
  EXPECT_FALSE(r.Str(&s));
  uint8_t b = 0;
  EXPECT_FALSE(r.U8(&b));
}

}  // namespace
}  // namespace imagesmith::vm::proto
