#include "store/format.h"

#include <gtest/gtest.h>

namespace imagesmith::store {
namespace {

std::vector<DirEntry> SampleEntries() {
  std::vector<DirEntry> v;
  DirEntry a;
  a.name = "a";
  a.type = EntryType::kFile;
  a.size = kFileChunkBytes + 1;
  a.chunks = {Sha256Of("x"), Sha256Of("y")};
  a.attrs.mode = 04755;
  a.attrs.uid = 1000;
  a.attrs.mtime_sec = -5;
  a.attrs.mtime_nsec = 999999999;
  a.attrs.xattrs = {{"security.capability", std::string("\x01\x00", 2)}, {"user.x", ""}};
  DirEntry b;
  b.name = "b";
  b.type = EntryType::kDir;
  b.dir = Sha256Of("dir");
  DirEntry c;
  c.name = "c";
  c.type = EntryType::kBlockDev;
  c.rdev_major = 8;
  c.rdev_minor = 1;
  DirEntry d;
  d.name = "d";
  d.type = EntryType::kHardLink;
  d.target = "b/a";
  DirEntry e;
  e.name = "e";
  e.type = EntryType::kSymlink;
  e.target = "/nowhere";
  v = {a, b, c, d, e};
  return v;
}

TEST(DirectoryFormatTest, RoundTripsEveryEntryType) {
  auto entries = SampleEntries();
  std::string enc = EncodeDirectory(entries);
  auto dec = DecodeDirectory(enc);
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  EXPECT_EQ(*dec, entries);
}

TEST(DirectoryFormatTest, RejectsEveryTruncationWithoutCrashing) {
  std::string enc = EncodeDirectory(SampleEntries());
  for (size_t n = 0; n < enc.size(); ++n) {
    EXPECT_FALSE(DecodeDirectory(enc.substr(0, n)).ok()) << n;
  }
}

TEST(DirectoryFormatTest, RejectsUnsortedNamesAndSlashes) {
  auto entries = SampleEntries();
  std::swap(entries[0], entries[1]);
  EXPECT_FALSE(DecodeDirectory(EncodeDirectory(entries)).ok());
  entries = SampleEntries();
  entries[0].name = "x/y";
  EXPECT_FALSE(DecodeDirectory(EncodeDirectory(entries)).ok());
  entries = SampleEntries();
  entries[3].target = "../etc/shadow";
  EXPECT_FALSE(DecodeDirectory(EncodeDirectory(entries)).ok());
}

TEST(ManifestFormatTest, RoundTripsTreeAndDisk) {
  Manifest t;
  t.kind = Manifest::Kind::kTree;
  t.root = Sha256Of("r");
  t.logical_bytes = 12;
  t.root_attrs.mode = 0755;
  t.root_attrs.xattrs = {{"user.a", std::string("\x00\xff", 2)}};
  t.meta.Set("diskSizeGB", Json::Int(30));
  std::string enc = EncodeManifest(t);
  auto dt = DecodeManifest(enc);
  ASSERT_TRUE(dt.ok()) << dt.status().ToString();
  EXPECT_EQ(EncodeManifest(*dt), enc);
  EXPECT_EQ(dt->root_attrs, t.root_attrs);

  Manifest d;
  d.kind = Manifest::Kind::kDisk;
  d.logical_bytes = 5 * kDiskChunkBytes - 10;
  d.chunks.resize(5);
  d.zero = {true, false, true, true, false};
  d.chunks[1] = Sha256Of("1");
  d.chunks[4] = Sha256Of("4");
  enc = EncodeManifest(d);
  auto dd = DecodeManifest(enc);
  ASSERT_TRUE(dd.ok()) << dd.status().ToString();
  EXPECT_EQ(dd->zero, d.zero);
  EXPECT_EQ(dd->chunks, d.chunks);
  EXPECT_EQ(ManifestChildren(*dd).size(), 2u);
}

TEST(ManifestFormatTest, RejectsNonCanonicalAndShortChunkLists) {
  Manifest d;
  d.kind = Manifest::Kind::kDisk;
  d.logical_bytes = 2 * kDiskChunkBytes;
  d.chunks.resize(2);
  d.zero = {true, true};
  std::string enc = EncodeManifest(d);
  EXPECT_TRUE(DecodeManifest(enc).ok());
  EXPECT_FALSE(DecodeManifest(" " + enc).ok());
  std::string shorter = enc;
  shorter.replace(shorter.find("[2]"), 3, "[1]");
  EXPECT_FALSE(DecodeManifest(shorter).ok());
  EXPECT_FALSE(DecodeManifest("{}").ok());
  EXPECT_FALSE(DecodeManifest("not json").ok());
}

}  // namespace
}  // namespace imagesmith::store
