// PublishVersion, replication, updates, managed images and source resolution
// against a real SQLite database and a real store in a temp directory.
#include "gallery/publish.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "meta/scopes.h"

namespace imagesmith::gallery {
namespace {

constexpr const char* kSub = "11111111-2222-3333-4444-555555555555";

Region R(const char* name) { return *Region::Parse(name); }

std::string StateIn(const meta::Resource& r, const char* region) {
  auto rec = VersionRecord::FromResource(r);
  if (!rec.ok()) return "damaged";
  const ReplicaStatus* s = rec->Replica(R(region));
  return s == nullptr ? "absent" : ReplicaStateName(s->state);
}

std::vector<std::string> RefRegions(const meta::Resource& r) {
  std::vector<std::string> out;
  for (const Json& ref : r.properties.Find("imagesmith")->Find("storeRefs")->array_items()) {
    out.push_back(ref.Find("region")->string_value());
  }
  return out;
}

class PublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-publish-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto m = meta::OpenSqliteMetaStore(env_, dir_ + "/meta.db");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    meta_ = std::move(*m);
    auto s = store::Store::Open(env_, dir_ + "/store");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ASSERT_TRUE(
        meta_
            ->Update([&](meta::Transaction& txn) -> Status {
              meta::Resource sub{ResourceId::ForSubscription(kSub),
                                 "",
                                 Json::MakeObject(),
                                 Json::MakeObject(),
                                 0,
                                 0,
                                 0};
              RETURN_IF_ERROR(txn.Create(sub));
              RETURN_IF_ERROR(
                  meta::CreateGroup(txn, kSub, "rg", R("eastus"), Json::MakeObject()).status());
              RETURN_IF_ERROR(CreateOrUpdateGallery(txn, {Group(), "gal", {}, {}, {}}).status());
              DefinitionSpec d(GalleryId(Group(), "gal"), "deb");
              d.publisher = "Contoso";
              d.offer = "Debian";
              d.sku = "12";
              d.hyper_v_generation = "V2";
              return CreateOrUpdateDefinition(txn, d).status();
            })
            .ok());
    // A small real disk: 4 MiB with some data in it.
    disk_ = dir_ + "/disk.raw";
    std::ofstream f(disk_, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = static_cast<char>('a' + i % 26);
    for (int i = 0; i < 4; ++i) f << block;
  }
  void TearDown() override {
    store_.reset();
    meta_.reset();
    ASSERT_TRUE(env_.RemoveAll(dir_).ok());
  }

  ResourceId Group() const { return ResourceId::ForResourceGroup(kSub, "rg"); }
  ResourceId Def() const { return DefinitionId(Group(), "gal", "deb"); }

  SourceImage PutSource(const char* region) {
    auto d = store_->PutDisk(R(region), disk_, Json::MakeObject(), nullptr, {});
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    SourceImage s{R(region), *d};
    s.hyper_v_generation = "V2";
    s.size_bytes = 4 << 20;
    return s;
  }
  PublishRequest Request(const SourceImage& src, const char* version) {
    PublishRequest req(Def(), src);
    if (version != nullptr) req.version = *ImageVersion::Parse(version);
    req.target_regions = {{R("eastus"), 2, std::nullopt}, {R("westus2"), 1, std::nullopt}};
    return req;
  }
  StatusOr<meta::Resource> Read(const ResourceId& id) {
    std::optional<meta::Resource> out;
    RETURN_IF_ERROR(meta_->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(out, txn.Get(id));
      return Status::Ok();
    }));
    return *out;
  }
  int64_t CountVersions() {
    int64_t n = 0;
    EXPECT_TRUE(meta_
                    ->Read([&](meta::Transaction& txn) -> Status {
                      ASSIGN_OR_RETURN(n, txn.CountDescendants(Def()));
                      return Status::Ok();
                    })
                    .ok());
    return n;
  }

  Env& env_ = *Env::Default();
  std::string dir_, disk_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(PublishTest, PublishReplicatesToEveryTargetRegion) {
  SourceImage src = PutSource("eastus");
  std::vector<std::string> seen;
  PublishRequest req = Request(src, "1.0.0");
  req.on_region = [&](const Region& r, ReplicaState s) {
    seen.push_back(r.name() + "=" + ReplicaStateName(s));
  };
  auto v = PublishVersion(env_, *meta_, *store_, req);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->properties.Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(StateIn(*v, "eastus"), "Completed");
  EXPECT_EQ(StateIn(*v, "westus2"), "Completed");
  EXPECT_EQ(seen, (std::vector<std::string>{"eastus=Completed", "westus2=Completed"}));
  EXPECT_EQ(RefRegions(*v), (std::vector<std::string>{"eastus", "westus2"}));
  EXPECT_TRUE(store_->HasImage(R("westus2"), src.image));
  const Json* targets = v->properties.Find("publishingProfile")->Find("targetRegions");
  EXPECT_EQ(targets->array_items()[0].Find("regionalReplicaCount")->AsInt64(), 2);
  EXPECT_EQ(v->properties.Find("replicationStatus")->Find("aggregatedState")->string_value(),
            "Completed");
}

TEST_F(PublishTest, HomeRegionIsAlwaysATargetAndComesFirst) {
  SourceImage src = PutSource("eastus");
  PublishRequest req = Request(src, "1.0.0");
  req.target_regions = {{R("westus2"), 1, std::nullopt}};
  auto v = PublishVersion(env_, *meta_, *store_, req);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto rec = VersionRecord::FromResource(*v);
  ASSERT_EQ(rec->target_regions.size(), 2u);
  EXPECT_EQ(rec->target_regions[0].region.name(), "eastus");
}

TEST_F(PublishTest, SourceInAnotherRegionIsCopiedHomeFirst) {
  SourceImage src = PutSource("northeurope");
  auto v = PublishVersion(env_, *meta_, *store_, Request(src, "1.0.0"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(store_->HasImage(R("eastus"), src.image));
  // The source region is not a target: nothing keeps the image alive there.
  EXPECT_EQ(RefRegions(*v), (std::vector<std::string>{"eastus", "westus2"}));
}

TEST_F(PublishTest, BadInputCreatesNothing) {
  SourceImage src = PutSource("eastus");
  SourceImage gen1 = src;
  gen1.hyper_v_generation = "V1";
  auto mismatch = PublishVersion(env_, *meta_, *store_, Request(gen1, "1.0.0"));
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find("hyperVGeneration V1 but image definition 'deb' is "
                                             "V2"),
            std::string::npos);
  SourceImage missing = src;
  missing.image = Sha256Of("nothing");
  auto gone = PublishVersion(env_, *meta_, *store_, Request(missing, "1.0.0"));
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  PublishRequest dup_regions = Request(src, "1.0.0");
  dup_regions.target_regions.push_back({R("westus2"), 1, std::nullopt});
  EXPECT_EQ(PublishVersion(env_, *meta_, *store_, dup_regions).status().code(),
            StatusCode::kInvalidArgument);
  PublishRequest zero = Request(src, "1.0.0");
  zero.target_regions[1].replica_count = 0;
  auto z = PublishVersion(env_, *meta_, *store_, zero);
  EXPECT_EQ(z.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(z.status().message().find("use 1 to 100"), std::string::npos);
  EXPECT_EQ(CountVersions(), 0);
}

TEST_F(PublishTest, ExplicitVersionMustBeNewAndVersioningPicksTheNext) {
  SourceImage src = PutSource("eastus");
  ASSERT_TRUE(PublishVersion(env_, *meta_, *store_, Request(src, "1.0.0")).ok());
  auto again = PublishVersion(env_, *meta_, *store_, Request(src, "1.0.0"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  auto next = PublishVersion(env_, *meta_, *store_, Request(src, nullptr));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->id.name(), "1.0.1");
  PublishRequest major = Request(src, nullptr);
  major.versioning = tmpl::Versioning{tmpl::VersioningScheme::kLatest, 3};
  EXPECT_EQ(PublishVersion(env_, *meta_, *store_, major)->id.name(), "3.0.0");
}

TEST_F(PublishTest, FailedReplicaIsReportedAndRetried) {
  SourceImage src = PutSource("eastus");
  // A version whose source is not in the store any more (as after a crash
  // and a gc): the home replica fails.
  SourceImage elsewhere = src;
  elsewhere.region = R("northeurope");
  auto put = store_->PutDisk(R("northeurope"), disk_, Json::MakeObject(), nullptr, {});
  ASSERT_TRUE(put.ok());
  ASSERT_TRUE(env_.RemoveAll(dir_ + "/store/northeurope").ok());
  ASSERT_TRUE(meta_
                  ->Update([&](meta::Transaction& txn) {
                    VersionRecord rec(R("eastus"), R("northeurope"));
                    rec.version = ImageVersion(1, 0, 0);
                    rec.target_regions = {{R("eastus"), 1, std::nullopt}};
                    rec.replication = {{R("eastus"), ReplicaState::kInProgress, ""}};
                    rec.image = src.image;
                    rec.kind = "disk";
                    meta::Resource r{Def().Child("versions", "1.0.0"),
                                     "eastus",
                                     Json::MakeObject(),
                                     rec.ToProperties(),
                                     0,
                                     0,
                                     0};
                    return txn.Create(r);
                  })
                  .ok());
  ResourceId id = Def().Child("versions", "1.0.0");
  // The image is in eastus already (PutSource), but resuming copies from the
  // recorded source region, which lost it.
  ASSERT_TRUE(env_.RemoveAll(dir_ + "/store/eastus").ok());
  auto failed = ReplicateVersion(env_, *meta_, *store_, id);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("to eastus failed"), std::string::npos)
      << failed.status().ToString();
  auto after = Read(id);
  EXPECT_EQ(after->properties.Find("provisioningState")->string_value(), "Failed");
  EXPECT_EQ(StateIn(*after, "eastus"), "Failed");
  EXPECT_FALSE(after->properties.Find("replicationStatus")
                   ->Find("summary")
                   ->array_items()[0]
                   .Find("details")
                   ->string_value()
                   .empty());

  // Put the source back and retry: it completes.
  ASSERT_TRUE(store_->PutDisk(R("northeurope"), disk_, Json::MakeObject(), nullptr, {}).ok());
  auto done = ReplicateVersion(env_, *meta_, *store_, id);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->properties.Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(StateIn(*done, "eastus"), "Completed");
}

TEST_F(PublishTest, InterruptedPublishIsResumedByPublishingAgain) {
  SourceImage src = PutSource("eastus");
  // The state a crash after the first region leaves behind.
  ASSERT_TRUE(
      meta_
          ->Update([&](meta::Transaction& txn) {
            VersionRecord rec(R("eastus"), R("eastus"));
            rec.version = ImageVersion(1, 0, 0);
            rec.target_regions = {{R("eastus"), 2, std::nullopt}, {R("westus2"), 1, std::nullopt}};
            rec.replication = {{R("eastus"), ReplicaState::kCompleted, ""},
                               {R("westus2"), ReplicaState::kInProgress, ""}};
            rec.image = src.image;
            rec.kind = "disk";
            meta::Resource r{Def().Child("versions", "1.0.0"),
                             "eastus",
                             Json::MakeObject(),
                             rec.ToProperties(),
                             0,
                             0,
                             0};
            return txn.Create(r);
          })
          .ok());
  // Not usable in westus2 yet, and not latest there.
  ASSERT_TRUE(meta_
                  ->Read([&](meta::Transaction& txn) {
                    auto latest = ResolveLatestVersion(txn, Def(), R("westus2"));
                    EXPECT_EQ(latest.status().code(), StatusCode::kNotFound);
                    return Status::Ok();
                  })
                  .ok());
  auto v = PublishVersion(env_, *meta_, *store_, Request(src, "1.0.0"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->properties.Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(StateIn(*v, "westus2"), "Completed");
  EXPECT_TRUE(store_->HasImage(R("westus2"), src.image));
}

TEST_F(PublishTest, UpdateChangesOnlyWhatMayChange) {
  SourceImage src = PutSource("eastus");
  ASSERT_TRUE(PublishVersion(env_, *meta_, *store_, Request(src, "1.0.0")).ok());
  ResourceId id = Def().Child("versions", "1.0.0");

  VersionUpdate add;
  add.target_regions = std::vector<tmpl::TargetRegion>{{R("eastus"), 1, std::nullopt},
                                                       {R("westus2"), 1, std::nullopt},
                                                       {R("northeurope"), 3, std::nullopt}};
  add.exclude_from_latest = true;
  auto added = UpdateVersion(env_, *meta_, *store_, id, add);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(StateIn(*added, "northeurope"), "Completed");
  EXPECT_TRUE(store_->HasImage(R("northeurope"), src.image));
  EXPECT_TRUE(added->properties.Find("publishingProfile")->Find("excludeFromLatest")->bool_value());
  EXPECT_EQ(added->properties.Find("provisioningState")->string_value(), "Succeeded");

  VersionUpdate remove;
  remove.target_regions = std::vector<tmpl::TargetRegion>{{R("eastus"), 1, std::nullopt}};
  auto refused = UpdateVersion(env_, *meta_, *store_, id, remove);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("--allow-replicated-location-deletion"),
            std::string::npos);
  remove.allow_deletion_of_replicated_locations = true;
  auto removed = UpdateVersion(env_, *meta_, *store_, id, remove);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(StateIn(*removed, "westus2"), "absent");
  EXPECT_EQ(RefRegions(*removed), std::vector<std::string>{"eastus"});

  VersionUpdate no_home;
  no_home.target_regions = std::vector<tmpl::TargetRegion>{{R("westus2"), 1, std::nullopt}};
  auto home = UpdateVersion(env_, *meta_, *store_, id, no_home);
  EXPECT_EQ(home.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(home.status().message().find("home region eastus cannot be removed"),
            std::string::npos);
}

TEST_F(PublishTest, ManagedImagesImportAndResolve) {
  ManagedImageRequest req(ManagedImageId(Group(), "img"), SourceImage(R("eastus"), {}));
  req.source.hyper_v_generation = "V2";
  auto img = ImportManagedImage(env_, *meta_, *store_, disk_, dir_ + "/scratch", req);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->location, "eastus");
  EXPECT_EQ(RefRegions(*img), std::vector<std::string>{"eastus"});
  EXPECT_EQ(img->properties.Find("hyperVGeneration")->string_value(), "V2");
  EXPECT_EQ(*env_.ListDir(dir_ + "/scratch"), std::vector<std::string>{});

  auto dup = ImportManagedImage(env_, *meta_, *store_, disk_, dir_ + "/scratch", req);
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  auto missing = ImportManagedImage(
      env_, *meta_, *store_, dir_ + "/none.vhd", dir_ + "/scratch",
      ManagedImageRequest(ManagedImageId(Group(), "x"), SourceImage(R("eastus"), {})));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  // The managed image is a source: resolve it and publish it.
  std::optional<SourceImage> src;
  ASSERT_TRUE(meta_
                  ->Read([&](meta::Transaction& txn) -> Status {
                    ASSIGN_OR_RETURN(src, ResolveImageSource(txn, img->id, R("eastus")));
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(src->size_bytes, 4u << 20);
  EXPECT_EQ(src->hyper_v_generation, "V2");
  auto v = PublishVersion(env_, *meta_, *store_, Request(*src, "1.0.0"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->properties.Find("storageProfile")->Find("source")->Find("id")->string_value(),
            img->id.ToString());

  // .../versions/latest resolves per region.
  ASSERT_TRUE(meta_
                  ->Read([&](meta::Transaction& txn) -> Status {
                    ResourceId latest = Def().Child("versions", "latest");
                    ASSIGN_OR_RETURN(SourceImage s, ResolveImageSource(txn, latest, R("westus2")));
                    EXPECT_EQ(s.version, "1.0.0");
                    EXPECT_EQ(s.region.name(), "westus2");
                    auto none = ResolveImageSource(txn, latest, R("northeurope"));
                    EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
                    auto wrong = ResolveImageSource(txn, GalleryId(Group(), "gal"), R("eastus"));
                    EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
                    return Status::Ok();
                  })
                  .ok());

  // A managed image from a store image in another region is copied there.
  SourceImage far = PutSource("northeurope");
  ManagedImageRequest copy(ManagedImageId(Group(), "img2"), far);
  copy.location = R("eastus");
  auto copied = CreateManagedImage(env_, *meta_, *store_, copy);
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_TRUE(store_->HasImage(R("eastus"), far.image));
}

}  // namespace
}  // namespace imagesmith::gallery
