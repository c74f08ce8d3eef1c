#include "disk/qcow2.h"

#include <gtest/gtest.h>

#include "disk/bytes.h"
#include "disk/test_util.h"

namespace imagesmith::disk {
namespace {

using testing::PatternDisk;
using testing::RawInMemory;
using testing::ReadAll;

std::string WriteQcow2ToString(const std::string& disk, Qcow2WriteOptions options = {}) {
  auto in = RawInMemory(disk);
  MemFile out;
  Status s = WriteQcow2(*in, out, options, nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out.data();
}

StatusOr<std::unique_ptr<DiskReader>> OpenBytes(std::string bytes) {
  return OpenDisk(std::make_unique<MemFile>(std::move(bytes)));
}

TEST(Qcow2Header, SerializeAndParseRoundTrip) {
  Qcow2Header h;
  h.size = 1 << 20;
  h.l1_size = 1;
  h.l1_table_offset = 65536;
  h.refcount_table_offset = 2 * 65536;
  h.refcount_table_clusters = 1;
  std::string b = h.Serialize();
  b.resize(3 * 65536);
  auto p = ParseQcow2Header(b.data(), b.size(), b.size(), "x");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->size, 1u << 20);
  EXPECT_EQ(p->cluster_bits, 16u);
  EXPECT_EQ(p->refcount_order, 4u);
}

TEST(Qcow2Writer, PlainRoundTripIsConsistent) {
  std::string disk = PatternDisk(5 << 20, 1);
  auto r = OpenBytes(WriteQcow2ToString(disk));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->format(), DiskFormat::kQcow2);
  EXPECT_EQ((*r)->virtual_size(), disk.size());
  EXPECT_EQ(*ReadAll(**r), disk);
  auto c = (*r)->Check();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok()) << (c->errors.empty() ? "" : c->errors[0]);
  EXPECT_TRUE(c->warnings.empty());
}

TEST(Qcow2Writer, CompressedRoundTripIsConsistentAndSmaller) {
  std::string disk = PatternDisk(5 << 20, 2);
  disk.replace(0, 1 << 20, std::string(1 << 20, 'a'));  // compresses well
  std::string plain = WriteQcow2ToString(disk);
  std::string packed = WriteQcow2ToString(disk, {.compress = true});
  EXPECT_LT(packed.size(), plain.size());
  auto r = OpenBytes(packed);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*ReadAll(**r), disk);
  EXPECT_TRUE((*r)->Info()->compressed_clusters);
  auto c = (*r)->Check();
  EXPECT_TRUE(c->ok()) << (c->errors.empty() ? "" : c->errors[0]);
}

TEST(Qcow2Writer, SmallClustersSpanSeveralRefcountBlocks) {
  // 512-byte clusters: a refcount block covers only 256 clusters.
  std::string disk = PatternDisk(1 << 20, 3);
  for (bool compress : {false, true}) {
    auto r = OpenBytes(WriteQcow2ToString(disk, {.cluster_size = 512, .compress = compress}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*ReadAll(**r), disk);
    auto c = (*r)->Check();
    EXPECT_TRUE(c->ok()) << (c->errors.empty() ? "" : c->errors[0]);
  }
}

TEST(Qcow2Writer, SizeNotAMultipleOfTheCluster) {
  std::string disk = PatternDisk((1 << 20) + 1536, 4);
  for (bool compress : {false, true}) {
    auto r = OpenBytes(WriteQcow2ToString(disk, {.compress = compress}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*ReadAll(**r), disk);
  }
}

TEST(Qcow2Writer, EmptyDiskAllocatesNoDataClusters) {
  std::string file = WriteQcow2ToString(std::string(64 << 20, '\0'));
  EXPECT_LE(file.size(), 4u * 65536);  // header, L1, refcount block, table
  auto r = OpenBytes(file);
  ASSERT_TRUE(r.ok());
  auto e = (*r)->BlockStatus(0, 64 << 20);
  EXPECT_EQ(e->kind, ExtentKind::kUnallocated);
  EXPECT_EQ(e->length, 64u << 20);
}

class Qcow2Hostile : public ::testing::Test {
 protected:
  void SetUp() override { file_ = WriteQcow2ToString(PatternDisk(4 << 20, 5)); }
  void ExpectOpenError(StatusCode code, const std::string& needle) {
    auto r = OpenBytes(file_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  }
  // Opens fine, but reading the whole disk fails with `needle`.
  void ExpectReadError(const std::string& needle) {
    auto r = OpenBytes(file_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto data = ReadAll(**r);
    ASSERT_FALSE(data.ok());
    EXPECT_EQ(data.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(data.status().message().find(needle), std::string::npos) << data.status().ToString();
  }
  uint64_t L1Offset() const { return LoadBe64(file_.data() + 40); }
  uint64_t L2Offset() const { return LoadBe64(file_.data() + L1Offset()) & 0x00fffffffffffe00ULL; }
  std::string file_;
};

TEST_F(Qcow2Hostile, TruncatedHeader) {
  file_.resize(50);
  ExpectOpenError(StatusCode::kDataLoss, "truncated qcow2 header");
}

TEST_F(Qcow2Hostile, ClusterBitsOutOfRange) {
  StoreBe32(file_.data() + 20, 30);
  ExpectOpenError(StatusCode::kDataLoss, "cluster_bits");
}

TEST_F(Qcow2Hostile, AbsurdVirtualSize) {
  StoreBe64(file_.data() + 24, uint64_t{1} << 62);
  ExpectOpenError(StatusCode::kDataLoss, "too large");
}

TEST_F(Qcow2Hostile, L1SizeTooSmallForDisk) {
  StoreBe64(file_.data() + 24, uint64_t{1} << 40);
  ExpectOpenError(StatusCode::kDataLoss, "l1_size");
}

TEST_F(Qcow2Hostile, L1TablePastEndOfFile) {
  StoreBe64(file_.data() + 40, uint64_t{1} << 40);
  ExpectOpenError(StatusCode::kDataLoss, "past the end of the file");
}

TEST_F(Qcow2Hostile, L1TableOverlappingHeader) {
  StoreBe64(file_.data() + 40, 0);
  ExpectOpenError(StatusCode::kDataLoss, "overlaps the header");
}

TEST_F(Qcow2Hostile, HugeRefcountTable) {
  StoreBe32(file_.data() + 56, 1 << 20);
  ExpectOpenError(StatusCode::kDataLoss, "refcount_table_clusters");
}

TEST_F(Qcow2Hostile, UnknownIncompatibleFeature) {
  StoreBe64(file_.data() + 72, uint64_t{1} << 40);
  ExpectOpenError(StatusCode::kUnimplemented, "unknown incompatible features");
}

TEST_F(Qcow2Hostile, BackingFileIsUnsupported) {
  StoreBe64(file_.data() + 8, 200);
  StoreBe32(file_.data() + 16, 4);
  ExpectOpenError(StatusCode::kUnimplemented, "backing file");
}

TEST_F(Qcow2Hostile, L1EntryPastEndOfFile) {
  StoreBe64(file_.data() + L1Offset(), (uint64_t{1} << 40) | (uint64_t{1} << 63));
  ExpectReadError("past the end of the file");
}

TEST_F(Qcow2Hostile, L2TableOnTopOfL1Table) {
  StoreBe64(file_.data() + L1Offset(), L1Offset() | (uint64_t{1} << 63));
  ExpectReadError("overlaps the header, L1 table or refcount table");
}

TEST_F(Qcow2Hostile, L2EntryPointingAtItsOwnTable) {
  const uint64_t l2 = L2Offset();
  StoreBe64(file_.data() + l2 + 8 * 3, l2 | (uint64_t{1} << 63));
  ExpectReadError("own L2");
}

TEST_F(Qcow2Hostile, L2EntryWithReservedBits) {
  const uint64_t l2 = L2Offset();
  const uint64_t e = LoadBe64(file_.data() + l2 + 8 * 4);
  StoreBe64(file_.data() + l2 + 8 * 4, e | 0x10);
  ExpectReadError("reserved bits");
}

TEST_F(Qcow2Hostile, RefcountMismatchFailsCheck) {
  // Set the header cluster's refcount (first entry of the first block) to 5.
  const uint64_t rt = LoadBe64(file_.data() + 48);
  const uint64_t block = LoadBe64(file_.data() + rt);
  StoreBe16(file_.data() + block, 5);
  auto r = OpenBytes(file_);
  ASSERT_TRUE(r.ok());
  auto c = (*r)->Check();
  ASSERT_TRUE(c.ok());
  ASSERT_FALSE(c->ok());
  EXPECT_NE(c->errors[0].find("has refcount 5 but is referenced 1 times"), std::string::npos)
      << c->errors[0];
}

TEST_F(Qcow2Hostile, DataClusterOverlappingAnotherL2EntryFailsCheck) {
  const uint64_t l2 = L2Offset();
  // Two guest clusters pointing at the same host cluster.
  uint64_t a = 0;
  int found = 0;
  for (uint64_t i = 0; i < 65536 / 8 && found < 2; ++i) {
    uint64_t e = LoadBe64(file_.data() + l2 + 8 * i);
    if (e == 0) continue;
    if (found == 0) a = e;
    else StoreBe64(file_.data() + l2 + 8 * i, a);
    ++found;
  }
  ASSERT_EQ(found, 2);
  auto r = OpenBytes(file_);
  ASSERT_TRUE(r.ok());
  auto c = (*r)->Check();
  ASSERT_FALSE(c->ok());
}

TEST(Qcow2HostileCompressed, CorruptDeflateStream) {
  std::string disk = PatternDisk(2 << 20, 6);
  disk.replace(0, 65536, std::string(65536, 'q'));
  std::string file = WriteQcow2ToString(disk, {.compress = true});
  auto r0 = OpenBytes(file);
  ASSERT_TRUE(r0.ok());
  // Find the first compressed cluster's bytes through the L1/L2 tables.
  const uint64_t l1 = LoadBe64(file.data() + 40);
  const uint64_t l2 = LoadBe64(file.data() + l1) & 0x00fffffffffffe00ULL;
  const uint64_t e = LoadBe64(file.data() + l2);
  ASSERT_TRUE(e & (uint64_t{1} << 62));
  const uint64_t host = e & ((uint64_t{1} << 54) - 1);
  for (int i = 0; i < 16; ++i) file[host + i] = static_cast<char>(0xff);
  auto r = OpenBytes(file);
  ASSERT_TRUE(r.ok());
  std::string buf(4096, '\0');
  Status s = (*r)->Read(0, buf.size(), buf.data());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("does not inflate"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace imagesmith::disk
