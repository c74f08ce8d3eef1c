#include "disk/vhd.h"

#include <gtest/gtest.h>

#include "disk/bytes.h"
#include "disk/test_util.h"

namespace imagesmith::disk {
namespace {

using testing::PatternDisk;
using testing::RawInMemory;
using testing::ReadAll;

std::string WriteVhdToString(const std::string& disk, VhdWriteOptions options) {
  auto in = RawInMemory(disk);
  MemFile out;
  Status s = WriteVhd(*in, out, options, nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out.data();
}

StatusOr<std::unique_ptr<DiskReader>> OpenBytes(std::string bytes) {
  return OpenDisk(std::make_unique<MemFile>(std::move(bytes)));
}

// Rewrites the footer at `at` after applying `edit`, with a valid checksum.
void EditFooter(std::string& file, size_t at, const std::function<void(VhdFooter&)>& edit) {
  auto f = ParseVhdFooter(file.data() + at, at, "test");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  edit(*f);
  file.replace(at, kVhdFooterSize, f->Serialize());
}

void RechecksumDynamicHeader(std::string& file) {
  StoreBe32(file.data() + 512 + 36, VhdChecksum(file.data() + 512, kVhdDynamicHeaderSize, 36));
}

constexpr size_t kBat = 1536;  // where our writer puts the BAT

TEST(VhdGeometry, FollowsTheSpecificationAlgorithm) {
  EXPECT_EQ(VhdGeometryFor(204800), (ChsGeometry{1003, 12, 17}));    // 100 MiB
  EXPECT_EQ(VhdGeometryFor(8388608), (ChsGeometry{8322, 16, 63}));   // 4 GiB
  EXPECT_EQ(VhdGeometryFor(uint64_t{1} << 40), (ChsGeometry{65535, 16, 255}));
  // Small disks use at least four heads.
  EXPECT_EQ(VhdGeometryFor(2048).heads, 4);
}

TEST(VhdChecksum, IsOnesComplementOfByteSumWithoutTheField) {
  std::string b(16, '\0');
  b[0] = 1;
  b[5] = 2;
  b[8] = 100;  // inside the "checksum field" at 8..11: ignored
  EXPECT_EQ(VhdChecksum(b.data(), b.size(), 8), ~uint32_t{3});
}

TEST(VhdFooter, SerializeAndParseRoundTrip) {
  VhdFooter f;
  f.current_size = f.original_size = 64 << 20;
  f.geometry = VhdGeometryFor(f.current_size / 512);
  f.timestamp = 12345;
  std::string b = f.Serialize();
  ASSERT_EQ(b.size(), 512u);
  auto p = ParseVhdFooter(b.data(), 0, "x");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->current_size, f.current_size);
  EXPECT_EQ(p->geometry, f.geometry);
  EXPECT_EQ(p->timestamp, 12345u);
  EXPECT_EQ(p->CreatorString(), "win ");
}

TEST(VhdFooter, VirtualSizeUsesGeometryForVirtualPcCreators) {
  VhdFooter f;
  f.current_size = 100 << 20;
  f.geometry = VhdGeometryFor(f.current_size / 512);
  EXPECT_EQ(f.VirtualSize(), 100u << 20);  // "win ": the footer's size
  f.creator_app = {'v', 'p', 'c', ' '};
  EXPECT_EQ(f.VirtualSize(), f.geometry.total_sectors() * 512);
}

TEST(VhdOutputSize, AzureRejectsPartialMiBWithReason) {
  VhdWriteOptions o;
  o.azure = true;
  auto s = VhdOutputSize((10 << 20) + 512, o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("whole number of MiB"), std::string::npos);
  EXPECT_NE(s.status().message().find("--round-up"), std::string::npos);
}

TEST(VhdOutputSize, AzureRoundUpPadsToNextMiB) {
  VhdWriteOptions o;
  o.azure = true;
  o.round_up = true;
  EXPECT_EQ(*VhdOutputSize((10 << 20) + 1, o), 11u << 20);
  EXPECT_EQ(*VhdOutputSize(10 << 20, o), 10u << 20);
}

TEST(VhdOutputSize, AzureRejectsDynamic) {
  VhdWriteOptions o;
  o.azure = true;
  o.dynamic = true;
  auto s = VhdOutputSize(10 << 20, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("fixed"), std::string::npos);
}

TEST(VhdOutputSize, WithoutAzureRoundsOnlyToSectors) {
  EXPECT_EQ(*VhdOutputSize(1000, {}), 1024u);
  EXPECT_FALSE(VhdOutputSize(kVhdMaxSize + 512, {}).ok());
}

TEST(VhdWriter, FixedRoundTripsAndEndsWithFooter) {
  std::string disk = PatternDisk(3 << 20, 1);
  std::string file = WriteVhdToString(disk, {});
  ASSERT_EQ(file.size(), disk.size() + 512);
  EXPECT_EQ(file.substr(file.size() - 512, 8), "conectix");
  auto r = OpenBytes(file);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->format(), DiskFormat::kVhdFixed);
  EXPECT_EQ(*ReadAll(**r), disk);
}

TEST(VhdWriter, AzureRoundUpPadsWithZeros) {
  std::string disk = PatternDisk((2 << 20) + 4096, 2);
  VhdWriteOptions o;
  o.azure = o.round_up = true;
  auto r = OpenBytes(WriteVhdToString(disk, o));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->virtual_size(), 3u << 20);
  std::string back = *ReadAll(**r);
  EXPECT_EQ(back.substr(0, disk.size()), disk);
  EXPECT_EQ(back.substr(disk.size()), std::string(back.size() - disk.size(), '\0'));
}

TEST(VhdWriter, DynamicRoundTripsAndAllocatesOnlyNonzeroBlocks) {
  std::string disk(9 << 20, '\0');
  disk.replace(5 << 20, 10, "0123456789");
  std::string file = WriteVhdToString(disk, {.dynamic = true});
  auto r = OpenBytes(file);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->format(), DiskFormat::kVhdDynamic);
  EXPECT_EQ(*ReadAll(**r), disk);
  auto info = (*r)->Info();
  EXPECT_EQ(info->data_bytes, 2u << 20);  // one 2 MiB block
  auto ext = (*r)->BlockStatus(0, disk.size());
  EXPECT_EQ(ext->kind, ExtentKind::kUnallocated);
  EXPECT_EQ(ext->length, 4u << 20);
  EXPECT_TRUE((*r)->Check()->ok());
}

TEST(VhdWriter, DynamicDiskWithShortLastBlock) {
  std::string disk = PatternDisk((3 << 20) + 512, 3);
  auto r = OpenBytes(WriteVhdToString(disk, {.dynamic = true}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*ReadAll(**r), disk);
}

class VhdHostile : public ::testing::Test {
 protected:
  void SetUp() override { file_ = WriteVhdToString(PatternDisk(6 << 20, 4), {.dynamic = true}); }
  void ExpectError(const std::string& file, StatusCode code, const std::string& needle) {
    auto r = OpenBytes(file);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  }
  void SetBat(size_t i, uint32_t v) { StoreBe32(file_.data() + kBat + 4 * i, v); }
  std::string file_;
};

TEST_F(VhdHostile, TruncatedDynamicIsReportedNotReadAsRaw) {
  ExpectError(file_.substr(0, file_.size() - 100), StatusCode::kDataLoss, "truncated");
}

TEST_F(VhdHostile, BadFooterChecksum) {
  file_[file_.size() - 512 + 48] ^= 1;  // current size byte
  ExpectError(file_, StatusCode::kDataLoss, "checksum");
}

TEST_F(VhdHostile, BadDynamicHeaderChecksum) {
  file_[512 + 40] ^= 1;
  ExpectError(file_, StatusCode::kDataLoss, "dynamic header: checksum");
}

TEST_F(VhdHostile, BatEntryPastEndOfFile) {
  SetBat(0, 0x7fffffff);
  ExpectError(file_, StatusCode::kDataLoss, "past the end");
}

TEST_F(VhdHostile, BatEntryIntoDynamicHeader) {
  SetBat(1, 1);  // sector 1 is the dynamic header
  ExpectError(file_, StatusCode::kDataLoss, "overlaps the dynamic header");
}

TEST_F(VhdHostile, BatEntriesSharingABlock) {
  uint32_t first = LoadBe32(file_.data() + kBat);
  ASSERT_NE(first, 0xffffffffu);
  SetBat(2, first);
  ExpectError(file_, StatusCode::kDataLoss, "overlap");
}

TEST_F(VhdHostile, BatTooSmallForDisk) {
  StoreBe32(file_.data() + 512 + 28, 1);
  RechecksumDynamicHeader(file_);
  ExpectError(file_, StatusCode::kDataLoss, "needs 3 blocks");
}

TEST_F(VhdHostile, BlockSizeNotPowerOfTwo) {
  StoreBe32(file_.data() + 512 + 32, 3 << 20);
  RechecksumDynamicHeader(file_);
  ExpectError(file_, StatusCode::kDataLoss, "block size");
}

TEST_F(VhdHostile, AbsurdVirtualSize) {
  EditFooter(file_, file_.size() - 512, [](VhdFooter& f) { f.current_size = uint64_t{1} << 60; });
  ExpectError(file_, StatusCode::kDataLoss, "2040 GiB");
}

TEST_F(VhdHostile, HeaderOffsetOutsideFile) {
  EditFooter(file_, file_.size() - 512, [](VhdFooter& f) { f.data_offset = uint64_t{1} << 40; });
  ExpectError(file_, StatusCode::kDataLoss, "dynamic header offset");
}

TEST_F(VhdHostile, DifferencingIsUnsupported) {
  EditFooter(file_, file_.size() - 512, [](VhdFooter& f) { f.disk_type = kVhdTypeDifferencing; });
  ExpectError(file_, StatusCode::kUnimplemented, "differencing");
}

TEST_F(VhdHostile, FooterCopyMismatchFailsCheck) {
  EditFooter(file_, 0, [](VhdFooter& f) { f.timestamp += 1; });
  auto r = OpenBytes(file_);
  ASSERT_TRUE(r.ok());
  auto c = (*r)->Check();
  ASSERT_TRUE(c.ok());
  ASSERT_FALSE(c->ok());
  EXPECT_NE(c->errors[0].find("footer copy"), std::string::npos);
}

TEST(VhdHostileFixed, FooterClaimsMoreDataThanPresent) {
  std::string file = WriteVhdToString(PatternDisk(1 << 20, 5), {});
  EditFooter(file, file.size() - 512, [](VhdFooter& f) { f.current_size = 4 << 20; });
  auto r = OpenBytes(file);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated fixed VHD"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith::disk
