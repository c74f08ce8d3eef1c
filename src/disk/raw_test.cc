#include "disk/raw.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "disk/convert.h"
#include "disk/scan.h"
#include "disk/test_util.h"

namespace imagesmith::disk {
namespace {

using testing::TempDir;

// Writes `data` at `offset` of the sparse file `path` of `size` bytes.
void MakeSparse(const std::string& path, uint64_t size,
                const std::vector<std::pair<uint64_t, std::string>>& pieces) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  for (const auto& [off, data] : pieces) {
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)),
              static_cast<ssize_t>(data.size()));
  }
  ::close(fd);
}

TEST(RawReader, ReportsHolesAsUnallocated) {
  TempDir dir;
  const std::string path = dir.File("sparse.raw");
  MakeSparse(path, 64 << 20, {{32 << 20, std::string(1 << 20, 'd')}});
  auto r = OpenDiskPath(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->format(), DiskFormat::kRaw);
  auto first = (*r)->BlockStatus(0, 64 << 20);
  EXPECT_EQ(first->kind, ExtentKind::kUnallocated);
  EXPECT_EQ(first->length, 32u << 20);
  auto data = (*r)->BlockStatus(32 << 20, 64 << 20);
  EXPECT_EQ(data->kind, ExtentKind::kData);
  EXPECT_EQ(data->length, 1u << 20);
}

TEST(DataScanner, YieldsOnlyUnitsThatOverlapData) {
  std::string disk(1 << 20, '\0');
  auto in = testing::RawInMemory(disk);  // memory files report everything as data
  DataScanner s(*in, disk.size(), 65536, 1 << 20);
  DataRun run;
  ASSERT_TRUE(*s.Next(&run));
  EXPECT_EQ(run.offset, 0u);
  EXPECT_EQ(run.data.size(), 1u << 20);
  EXPECT_FALSE(*s.Next(&run));
}

TEST(WriteRaw, EmptyGigabyteCostsNothing) {
  TempDir dir;
  MakeSparse(dir.File("in.raw"), 1 << 30, {{12345, "x"}});
  ConvertOptions o;
  o.format = DiskFormat::kRaw;
  ASSERT_TRUE(ConvertDisk(dir.File("in.raw"), dir.File("out.raw"), o).ok());
  auto r = OpenDiskPath(dir.File("out.raw"));
  ASSERT_TRUE(r.ok());
  auto info = (*r)->Info();
  EXPECT_EQ(info->virtual_size, 1u << 30);
  EXPECT_LE(info->allocated_bytes, 1u << 20);
  char c = 0;
  ASSERT_TRUE((*r)->Read(12345, 1, &c).ok());
  EXPECT_EQ(c, 'x');
}

TEST(WriteRaw, ZeroBlocksInsideDataAreNotWritten) {
  TempDir dir;
  // 8 MiB of explicitly written zeros (allocated, not a hole).
  MakeSparse(dir.File("in.raw"), 8 << 20, {{0, std::string(8 << 20, '\0')}});
  ConvertOptions o;
  ASSERT_TRUE(ConvertDisk(dir.File("in.raw"), dir.File("out.raw"), o).ok());
  auto r = OpenDiskPath(dir.File("out.raw"));
  EXPECT_EQ((*r)->Info()->allocated_bytes, 0u);
}

TEST(ConvertDisk, RefusesToOverwriteItsInput) {
  TempDir dir;
  MakeSparse(dir.File("a.raw"), 1 << 20, {});
  Status s = ConvertDisk(dir.File("a.raw"), dir.File("a.raw"), {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(ConvertDisk, FailedConversionLeavesNoOutput) {
  TempDir dir;
  MakeSparse(dir.File("a.raw"), (1 << 20) + 512, {});
  ConvertOptions o;
  o.format = DiskFormat::kVhdFixed;
  o.azure = true;  // not a whole MiB, no --round-up
  Status s = ConvertDisk(dir.File("a.raw"), dir.File("a.vhd"), o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(Env::Default()->FileExists(dir.File("a.vhd")));
  EXPECT_FALSE(Env::Default()->FileExists(dir.File("a.vhd.partial")));
}

TEST(ConvertDisk, CompressOnlyForQcow2) {
  TempDir dir;
  MakeSparse(dir.File("a.raw"), 1 << 20, {});
  ConvertOptions o;
  o.format = DiskFormat::kVhdDynamic;
  o.compress = true;
  EXPECT_EQ(ConvertDisk(dir.File("a.raw"), dir.File("a.vhd"), o).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace imagesmith::disk
