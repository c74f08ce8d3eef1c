#include "catalog/catalog.h"

#include <gtest/gtest.h>

#include "catalog/test_util.h"

namespace imagesmith::catalog {
namespace {

using testing::Put;
using testing::TempDir;

tmpl::PlatformImageSource Src(std::string publisher, std::string offer, std::string sku,
                              std::string version) {
  tmpl::PlatformImageSource s;
  s.publisher = std::move(publisher);
  s.offer = std::move(offer);
  s.sku = std::move(sku);
  s.version = std::move(version);
  return s;
}

// A cache with three complete versions of debian-12 and some things that
// are not versions: an unfinished build, a version directory without a
// manifest (not complete), and a stray name.
class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"0.20250101.1", "0.20250102.2", "0.20250102.10"}) {
      AddVersion(v);
    }
    Put(dir_.File("debian-12/.build-0.20250103.1-99/rootfs/etc/hostname"), "x\n");
    Put(dir_.File("debian-12/0.20250104.1/rootfs/etc/hostname"), "x\n");
    Put(dir_.File("debian-12/notes.txt"), "x\n");
  }
  void AddVersion(const std::string& v) {
    Put(dir_.File("debian-12/" + v + "/manifest.json"),
        "{\"base\": \"debian-12\", \"version\": \"" + v + "\", \"kernel\": \"6.1.0-1-cloud-amd64\"}\n");
    Put(dir_.File("debian-12/" + v + "/rootfs/etc/hostname"), "localhost\n");
  }

  TempDir dir_;
  Catalog catalog_{*Env::Default(), dir_.path()};
};

TEST_F(CatalogTest, LatestIsTheNewestCompleteVersion) {
  auto e = catalog_.Resolve(Src("Debian", "debian-12", "12", "latest"));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->version, "0.20250102.10");
  EXPECT_TRUE(e->cached);
  EXPECT_EQ(e->generation, Generation::kV1);
  EXPECT_EQ(e->base, "debian-12");
  EXPECT_EQ(e->Urn(), "Debian:debian-12:12:0.20250102.10");
}

TEST_F(CatalogTest, MatchesNamesIgnoringCaseAndReturnsCanonicalSpelling) {
  auto e = catalog_.Resolve(Src("DEBIAN", "Debian-12", "12-GEN2", "LATEST"));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->publisher, "Debian");
  EXPECT_EQ(e->offer, "debian-12");
  EXPECT_EQ(e->sku, "12-gen2");
  EXPECT_EQ(e->generation, Generation::kV2);
  EXPECT_EQ(e->version, "0.20250102.10");
}

TEST_F(CatalogTest, ExplicitCachedVersionResolvesToItself) {
  auto e = catalog_.Resolve(Src("Debian", "debian-12", "12-gen2", "0.20250101.1"));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->version, "0.20250101.1");
  EXPECT_TRUE(e->cached);
}

TEST_F(CatalogTest, UnknownPublisherListsPublishers) {
  auto e = catalog_.Resolve(Src("Canonical", "ubuntu-24_04-lts", "server", "latest"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(e.status().message(),
            "platform image publisher \"Canonical\" is not in the catalog; publishers: Debian");
}

TEST_F(CatalogTest, UnknownOfferListsThePublishersOffers) {
  auto e = catalog_.Resolve(Src("debian", "debian-11", "11", "latest"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(e.status().message(), "publisher Debian has no offer \"debian-11\"; offers: debian-12");
}

TEST_F(CatalogTest, UnknownSkuListsTheOffersSkus) {
  auto e = catalog_.Resolve(Src("Debian", "debian-12", "12-arm64", "latest"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(e.status().message(),
            "offer Debian:debian-12 has no sku \"12-arm64\"; skus: 12, 12-gen2");
}

TEST_F(CatalogTest, UncachedVersionListsCachedVersions) {
  auto e = catalog_.Resolve(Src("Debian", "debian-12", "12", "0.20250104.1"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(e.status().message(),
            "version \"0.20250104.1\" of Debian:debian-12:12 is not in the catalog cache " +
                dir_.path() + "; versions: 0.20250101.1, 0.20250102.2, 0.20250102.10");
}

TEST_F(CatalogTest, MalformedVersionSaysWhatIsExpected) {
  auto e = catalog_.Resolve(Src("Debian", "debian-12", "12", "1.2.3"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find("expected \"latest\" or 0.YYYYMMDD.N"), std::string::npos)
      << e.status().message();
  EXPECT_NE(e.status().message().find("versions: 0.20250101.1"), std::string::npos);
}

TEST_F(CatalogTest, ListShowsOneLatestRowPerSku) {
  std::vector<CatalogEntry> rows = catalog_.List(false);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].Urn(), "Debian:debian-12:12:latest");
  EXPECT_EQ(rows[1].Urn(), "Debian:debian-12:12-gen2:latest");
  EXPECT_TRUE(rows[0].cached);
  EXPECT_EQ(rows[1].generation, Generation::kV2);
}

TEST_F(CatalogTest, ListAllShowsEveryCachedVersionOldestFirst) {
  std::vector<CatalogEntry> rows = catalog_.List(true);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].Urn(), "Debian:debian-12:12:0.20250101.1");
  EXPECT_EQ(rows[2].Urn(), "Debian:debian-12:12:0.20250102.10");
  EXPECT_EQ(rows[5].Urn(), "Debian:debian-12:12-gen2:0.20250102.10");
}

TEST_F(CatalogTest, EnsureReusesTheCachedTreeWithoutBuilding) {
  auto image = catalog_.Ensure(Src("Debian", "debian-12", "12-gen2", "latest"), nullptr);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(image->rootfs_dir, dir_.File("debian-12/0.20250102.10/rootfs"));
  EXPECT_EQ(image->entry.version, "0.20250102.10");
  ASSERT_NE(image->manifest.Find("kernel"), nullptr);
  EXPECT_EQ(image->manifest.Find("kernel")->string_value(), "6.1.0-1-cloud-amd64");
  // The unfinished build of another process is left alone (no lock taken).
  EXPECT_TRUE(Env::Default()->IsDirectory(dir_.File("debian-12/.build-0.20250103.1-99")));
}

TEST_F(CatalogTest, EnsureOfUncachedExplicitVersionFailsWithoutBuilding) {
  auto image = catalog_.Ensure(Src("Debian", "debian-12", "12", "0.20990101.1"), nullptr);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(Env::Default()->FileExists(dir_.File("debian-12/.lock")));
}

TEST(CatalogEmptyTest, LatestWithNothingBuiltSaysNotCached) {
  TempDir dir;
  Catalog catalog(*Env::Default(), dir.File("does-not-exist-yet"));
  auto e = catalog.Resolve(Src("Debian", "debian-12", "12", "latest"));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->version, "latest");
  EXPECT_FALSE(e->cached);
  EXPECT_TRUE(catalog.List(true).empty());
  ASSERT_EQ(catalog.List(false).size(), 2u);
  EXPECT_FALSE(catalog.List(false)[0].cached);
  auto v = catalog.Resolve(Src("Debian", "debian-12", "12", "0.20250101.1"));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("no versions are built yet"), std::string::npos);
}

TEST(CatalogEmptyTest, GenerationNames) {
  EXPECT_EQ(GenerationName(Generation::kV1), "V1");
  EXPECT_EQ(GenerationName(Generation::kV2), "V2");
}

}  // namespace
}  // namespace imagesmith::catalog
