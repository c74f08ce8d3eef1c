#include "disk/write_batch.h"

#include <gtest/gtest.h>

#include <string>

#include "disk/file.h"
#include "disk/test_util.h"

namespace imagesmith::disk {
namespace {

using testing::RandomBytes;
using testing::TempDir;

// Reads back the whole file at `path`.
std::string ReadBack(const std::string& path) {
  auto f = OpenFileForRead(path);
  EXPECT_TRUE(f.ok());
  uint64_t size = *(*f)->Size();
  std::string s(size, '\0');
  EXPECT_TRUE((*f)->ReadExactAt(0, size, s.data(), "all").ok());
  return s;
}

TEST(WriteBatch, HelperThreadsWriteEveryPieceOfARealFile) {
  TempDir dir;
  const std::string path = dir.File("out");
  WriteFileOptions options;
  options.write_behind_bytes = 1 << 20;  // exercised from several threads at once
  auto out = CreateFileForWrite(path, options);
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE((*out)->ConcurrentWriteSafe());
  // Several writes larger than a piece, one small one, and a gap that must
  // stay zero; two flushes reuse the helpers.
  const std::string a = RandomBytes(5 << 20, 1);
  const std::string b = RandomBytes((3 << 20) + 17, 2);
  const std::string c = RandomBytes(100, 3);
  {
    WriteBatch batch(**out, 4);
    batch.Add(0, a.data(), a.size());
    batch.Add(a.size() + 4096, c.data(), c.size());
    ASSERT_TRUE(batch.Flush().ok());
    batch.Add(8 << 20, b.data(), b.size());
    ASSERT_TRUE(batch.Flush().ok());
    ASSERT_TRUE(batch.Flush().ok());  // an empty flush is fine
  }
  std::string want(static_cast<size_t>(8 << 20) + b.size(), '\0');
  want.replace(0, a.size(), a);
  want.replace(a.size() + 4096, c.size(), c);
  want.replace(8 << 20, b.size(), b);
  EXPECT_EQ(ReadBack(path), want);
}

TEST(WriteBatch, MemoryFileIsWrittenInOrderOnTheCallingThread) {
  MemFile out;
  EXPECT_FALSE(out.ConcurrentWriteSafe());
  WriteBatch batch(out, 4);
  // Overlapping is not allowed, but adjacent writes merge; order is kept.
  batch.Add(0, "abc", 3);
  batch.Add(3, "def", 3);
  batch.Add(10, "xyz", 3);
  ASSERT_TRUE(batch.Flush().ok());
  EXPECT_EQ(out.data(), std::string("abcdef\0\0\0\0xyz", 13));
}

TEST(WriteBatch, ReportsAWriteFailure) {
  MemFile out;
  WriteBatch batch(out, 2);
  // MemFile refuses to grow past 4 GiB.
  batch.Add(uint64_t{5} << 30, "x", 1);
  Status s = batch.Flush();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
}

TEST(WriteBatch, HelperThreadsReportAWriteFailure) {
  // /dev/full fails every write with ENOSPC.
  auto out = CreateFileForWrite("/dev/full");
  if (!out.ok()) GTEST_SKIP() << out.status().ToString();
  const std::string a = RandomBytes(4 << 20, 4);
  WriteBatch batch(**out, 3);
  batch.Add(0, a.data(), a.size());
  Status s = batch.Flush();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/dev/full"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace imagesmith::disk
