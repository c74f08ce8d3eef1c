#include "gallery/resources.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "meta/scopes.h"

namespace imagesmith::gallery {
namespace {

constexpr const char* kSub = "11111111-2222-3333-4444-555555555555";

Region R(const char* name) { return *Region::Parse(name); }

class ResourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-gallery-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = meta::OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    meta_ = std::move(*s);
    ASSERT_TRUE(
        Update([&](meta::Transaction& txn) {
          meta::Resource sub{ResourceId::ForSubscription(kSub),
                             "",
                             Json::MakeObject(),
                             Json::MakeObject(),
                             0,
                             0,
                             0};
          RETURN_IF_ERROR(txn.Create(sub));
          return meta::CreateGroup(txn, kSub, "rg", R("eastus"), Json::MakeObject()).status();
        }).ok());
  }
  void TearDown() override {
    meta_.reset();
    ASSERT_TRUE(Env::Default()->RemoveAll(dir_).ok());
  }
  Status Update(const std::function<Status(meta::Transaction&)>& fn) { return meta_->Update(fn); }

  ResourceId Group() const { return ResourceId::ForResourceGroup(kSub, "rg"); }
  ResourceId Gallery() const { return GalleryId(Group(), "gal"); }

  Status MakeGallery() {
    return Update([&](meta::Transaction& txn) {
      return CreateOrUpdateGallery(txn, {Group(), "gal", std::nullopt, "d", std::nullopt}).status();
    });
  }
  DefinitionSpec Def(const std::string& name, const std::string& sku) {
    DefinitionSpec d(Gallery(), name);
    d.publisher = "Contoso";
    d.offer = "Debian";
    d.sku = sku;
    return d;
  }
  StatusOr<meta::Resource> MakeDefinition(const DefinitionSpec& spec) {
    std::optional<meta::Resource> out;
    RETURN_IF_ERROR(Update([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource r, CreateOrUpdateDefinition(txn, spec));
      out = r;
      return Status::Ok();
    }));
    return *out;
  }
  // A version resource as PublishVersion writes it, with the given replica states.
  Status MakeVersion(const std::string& def, const std::string& version,
                     std::vector<std::pair<const char*, ReplicaState>> replicas,
                     bool exclude = false, std::optional<int64_t> eol = std::nullopt,
                     bool block = false) {
    VersionRecord rec(R("eastus"), R("eastus"));
    rec.version = *ImageVersion::Parse(version);
    for (const auto& [region, state] : replicas) {
      rec.target_regions.push_back({R(region), 1, std::nullopt});
      rec.replication.push_back({R(region), state, ""});
    }
    rec.exclude_from_latest = exclude;
    rec.end_of_life_us = eol;
    rec.block_deletion_before_end_of_life = block;
    rec.image = Sha256Of(version);
    rec.kind = "disk";
    rec.provisioning_state = rec.AllCompleted() ? "Succeeded" : "Creating";
    return Update([&](meta::Transaction& txn) {
      meta::Resource r{DefinitionId(Group(), "gal", def).Child("versions", version),
                       "eastus",
                       Json::MakeObject(),
                       rec.ToProperties(),
                       0,
                       0,
                       0};
      return txn.Create(r);
    });
  }

  std::string dir_;
  std::unique_ptr<meta::MetaStore> meta_;
};

TEST_F(ResourcesTest, GalleryNeedsAnExistingGroupAndAValidName) {
  Status missing = Update([&](meta::Transaction& txn) {
    return CreateOrUpdateGallery(txn,
                                 {ResourceId::ForResourceGroup(kSub, "nope"), "gal", {}, {}, {}})
        .status();
  });
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("imagesmith group create -n nope"), std::string::npos);
  Status bad = Update([&](meta::Transaction& txn) {
    return CreateOrUpdateGallery(txn, {Group(), "bad-name", {}, {}, {}}).status();
  });
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
}

TEST_F(ResourcesTest, GalleryTakesTheGroupLocationAndUpdatesInPlace) {
  ASSERT_TRUE(MakeGallery().ok());
  std::optional<meta::Resource> found;
  ASSERT_TRUE(Update([&](meta::Transaction& txn) -> Status {
                ASSIGN_OR_RETURN(found, CreateOrUpdateGallery(txn, {Group(), "GAL", std::nullopt,
                                                                    "new", std::nullopt}));
                return Status::Ok();
              }).ok());
  const meta::Resource& g = *found;
  EXPECT_EQ(g.location, "eastus");
  EXPECT_EQ(g.properties.Find("description")->string_value(), "new");
  EXPECT_EQ(g.properties.Find("identifier")->Find("uniqueName")->string_value(),
            std::string(kSub) + "-GAL");
  Status moved = Update([&](meta::Transaction& txn) {
    return CreateOrUpdateGallery(txn, {Group(), "gal", R("westus2"), {}, {}}).status();
  });
  EXPECT_EQ(moved.code(), StatusCode::kFailedPrecondition);
}

TEST_F(ResourcesTest, DefinitionIdentityIsUniquePerGalleryAndImmutable) {
  ASSERT_TRUE(MakeGallery().ok());
  auto d = MakeDefinition(Def("deb", "12"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->properties.Find("osType")->string_value(), "Linux");
  EXPECT_EQ(d->properties.Find("hyperVGeneration")->string_value(), "V1");
  EXPECT_EQ(d->location, "eastus");

  auto same_triple = MakeDefinition(Def("other", "12"));
  EXPECT_EQ(same_triple.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(same_triple.status().message().find("already used by image definition 'deb'"),
            std::string::npos);

  DefinitionSpec changed = Def("deb", "12");
  changed.hyper_v_generation = "V2";
  auto gen = MakeDefinition(changed);
  EXPECT_EQ(gen.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(gen.status().message().find("changing property 'hyperVGeneration' from 'V1' to 'V2' "
                                        "is not allowed"),
            std::string::npos);
  DefinitionSpec sku = Def("deb", "13");
  EXPECT_NE(MakeDefinition(sku).status().message().find("'identifier.sku'"), std::string::npos);
  DefinitionSpec state = Def("deb", "12");
  state.os_state = "Specialized";
  EXPECT_EQ(MakeDefinition(state).status().code(), StatusCode::kFailedPrecondition);

  // The same identity updates the mutable fields.
  DefinitionSpec again = Def("deb", "12");
  again.description = "Debian 12";
  auto updated = MakeDefinition(again);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->properties.Find("description")->string_value(), "Debian 12");
}

TEST_F(ResourcesTest, DefinitionMustBeInTheGallerysLocation) {
  ASSERT_TRUE(MakeGallery().ok());
  DefinitionSpec d = Def("deb", "12");
  d.location = R("westus2");
  auto r = MakeDefinition(d);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("must be in its gallery's location eastus"),
            std::string::npos);
}

TEST_F(ResourcesTest, DefinitionInAMissingGallerySaysHowToCreateIt) {
  auto r = MakeDefinition(Def("deb", "12"));
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "gallery 'gal' could not be found in resource group 'rg'; create it with "
            "'imagesmith sig create -g rg -r gal'");
}

TEST_F(ResourcesTest, NestedDeletionListsWhatIsInTheWay) {
  ASSERT_TRUE(MakeGallery().ok());
  ASSERT_TRUE(MakeDefinition(Def("deb", "12")).ok());
  ASSERT_TRUE(MakeVersion("deb", "1.0.0", {{"eastus", ReplicaState::kCompleted}}).ok());
  Status gal = Update([&](meta::Transaction& txn) { return DeleteGallery(txn, Gallery()); });
  EXPECT_EQ(gal.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(gal.message().find("still holds 1 image definition(s)"), std::string::npos);
  EXPECT_NE(gal.message().find("/galleries/gal/images/deb"), std::string::npos);
  ResourceId def = DefinitionId(Group(), "gal", "deb");
  Status d = Update([&](meta::Transaction& txn) { return DeleteDefinition(txn, def); });
  EXPECT_EQ(d.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(d.message().find("/images/deb/versions/1.0.0"), std::string::npos);

  ASSERT_TRUE(Update([&](meta::Transaction& txn) {
                return DeleteVersion(txn, def.Child("versions", "1.0.0"), 0);
              }).ok());
  ASSERT_TRUE(Update([&](meta::Transaction& txn) { return DeleteDefinition(txn, def); }).ok());
  ASSERT_TRUE(Update([&](meta::Transaction& txn) { return DeleteGallery(txn, Gallery()); }).ok());
  Status gone = Update([&](meta::Transaction& txn) { return GetGallery(txn, Gallery()).status(); });
  EXPECT_EQ(gone.code(), StatusCode::kNotFound);
}

TEST_F(ResourcesTest, BlockDeletionBeforeEndOfLifeIsHonoured) {
  ASSERT_TRUE(MakeGallery().ok());
  ASSERT_TRUE(MakeDefinition(Def("deb", "12")).ok());
  int64_t eol = *ParseDateTime("eol", "2030-01-01");
  ASSERT_TRUE(
      MakeVersion("deb", "1.0.0", {{"eastus", ReplicaState::kCompleted}}, false, eol, true).ok());
  ResourceId v = DefinitionId(Group(), "gal", "deb").Child("versions", "1.0.0");
  int64_t before = eol - 1000000;
  Status early = Update([&](meta::Transaction& txn) { return DeleteVersion(txn, v, before); });
  EXPECT_EQ(early.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(early.message().find("cannot be deleted before its end of life date "
                                 "2030-01-01T00:00:00+00:00"),
            std::string::npos);
  Status later = Update([&](meta::Transaction& txn) { return DeleteVersion(txn, v, eol); });
  EXPECT_TRUE(later.ok()) << later.ToString();
}

TEST_F(ResourcesTest, LatestSkipsExcludedAndIncompleteReplicas) {
  ASSERT_TRUE(MakeGallery().ok());
  ASSERT_TRUE(MakeDefinition(Def("deb", "12")).ok());
  ASSERT_TRUE(
      MakeVersion("deb", "1.0.0",
                  {{"eastus", ReplicaState::kCompleted}, {"westus2", ReplicaState::kCompleted}})
          .ok());
  ASSERT_TRUE(
      MakeVersion("deb", "1.1.0",
                  {{"eastus", ReplicaState::kCompleted}, {"westus2", ReplicaState::kInProgress}})
          .ok());
  ASSERT_TRUE(MakeVersion("deb", "2.0.0", {{"eastus", ReplicaState::kCompleted}}, true).ok());
  ResourceId def = DefinitionId(Group(), "gal", "deb");
  auto latest = [&](const char* region) -> StatusOr<std::string> {
    std::string name;
    RETURN_IF_ERROR(meta_->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource r, ResolveLatestVersion(txn, def, R(region)));
      name = r.id.name();
      return Status::Ok();
    }));
    return name;
  };
  EXPECT_EQ(*latest("eastus"), "1.1.0");
  EXPECT_EQ(*latest("westus2"), "1.0.0");
  auto none = latest("northeurope");
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("no version usable as latest in northeurope"),
            std::string::npos);
}

TEST_F(ResourcesTest, VersionRecordRoundTripsAndNamesItsStoreRefs) {
  VersionRecord rec(R("eastus"), R("northeurope"));
  rec.version = ImageVersion(1, 2, 3);
  rec.target_regions = {{R("eastus"), 2, tmpl::StorageAccountType::kStandardZRS},
                        {R("westus2"), 1, std::nullopt}};
  rec.replication = {{R("eastus"), ReplicaState::kCompleted, ""},
                     {R("westus2"), ReplicaState::kInProgress, ""}};
  rec.image = Sha256Of("x");
  rec.kind = "tree";
  rec.end_of_life_us = *ParseDateTime("eol", "2030-01-01");
  rec.size_bytes = 3ull << 30;
  Json p = rec.ToProperties();
  EXPECT_EQ(p.Find("publishingProfile")
                ->Find("targetRegions")
                ->array_items()[0]
                .Find("name")
                ->string_value(),
            "East US");
  EXPECT_EQ(p.Find("replicationStatus")->Find("aggregatedState")->string_value(), "InProgress");
  EXPECT_EQ(p.Find("storageProfile")->Find("osDiskImage")->Find("sizeInGB")->AsInt64(), 3);
  const Json* refs = p.Find("imagesmith")->Find("storeRefs");
  ASSERT_EQ(refs->array_items().size(), 1u);  // home done: only completed replicas
  EXPECT_EQ(refs->array_items()[0].Find("region")->string_value(), "eastus");
  EXPECT_EQ(refs->array_items()[0].Find("image")->string_value(), rec.image.ToHex());

  meta::Resource r{*ResourceId::Parse(std::string("/subscriptions/") + kSub +
                                      "/resourceGroups/rg/providers/Microsoft.Compute/galleries/"
                                      "g/images/d/versions/1.2.3"),
                   "eastus",
                   Json::MakeObject(),
                   p,
                   0,
                   0,
                   0};
  auto back = VersionRecord::FromResource(r);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToProperties().Dump(), p.Dump());

  // Before the home replica is complete the source keeps the image alive.
  rec.replication[0].state = ReplicaState::kInProgress;
  Json early_props = rec.ToProperties();
  const Json* early = early_props.Find("imagesmith")->Find("storeRefs");
  ASSERT_EQ(early->array_items().size(), 1u);
  EXPECT_EQ(early->array_items()[0].Find("region")->string_value(), "northeurope");

  Json shown = VersionJson(r, false);
  EXPECT_EQ(shown.Find("properties")->Find("replicationStatus"), nullptr);
  EXPECT_NE(VersionJson(r, true).Find("properties")->Find("replicationStatus"), nullptr);
}

}  // namespace
}  // namespace imagesmith::gallery
