#include "builder/staging.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "meta/scopes.h"

namespace imagesmith::build {
namespace {

constexpr const char kSub[] = "11111111-2222-3333-4444-555555555555";

std::string TagOf(const meta::Resource& r, const char* key) {
  const Json* v = r.tags.is_object() ? r.tags.Find(key) : nullptr;
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

class StagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-staging-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = meta::OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    meta_ = std::move(*s);
    ASSERT_TRUE(MakeGroup("rg", "eastus").ok());
  }
  void TearDown() override {
    meta_.reset();
    (void)Env::Default()->RemoveAll(dir_);
  }
  Status MakeGroup(const std::string& name, const std::string& region,
                   Json tags = Json::MakeObject()) {
    return meta_->Update([&](meta::Transaction& txn) {
      return meta::CreateGroup(txn, kSub, name, *Region::Parse(region), tags).status();
    });
  }
  ResourceId Template(const std::string& name) {
    return ResourceId::ForResource(kSub, "rg", "Microsoft.VirtualMachineImages", "imageTemplates",
                                   name);
  }
  StatusOr<StagingGroup> Prepare(const std::string& tmpl, std::optional<std::string> group) {
    StatusOr<StagingGroup> out = InternalError("not run");
    Status s = meta_->Update([&](meta::Transaction& txn) {
      std::optional<ResourceId> req;
      if (group) req = ResourceId::ForResourceGroup(kSub, *group);
      out = PrepareStagingGroup(txn, Template(tmpl), *Region::Parse("eastus"), req,
                                "0b0e5d3c-1f7a-4c55-9a43-6a3c50e0d7a1");
      return out.status();
    });
    if (!s.ok()) return s;
    return out;
  }
  meta::Resource Get(const ResourceId& id) {
    std::optional<meta::Resource> r;
    Status s = meta_->Read([&](meta::Transaction& txn) {
      ASSIGN_OR_RETURN(meta::Resource got, txn.Get(id));
      r = std::move(got);
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r.value_or(meta::Resource{id, "", Json::MakeObject(), Json::MakeObject(), 0, 0, 0});
  }
  bool Exists(const ResourceId& id) {
    bool e = false;
    EXPECT_TRUE(meta_
                    ->Read([&](meta::Transaction& txn) {
                      ASSIGN_OR_RETURN(e, txn.Exists(id));
                      return Status::Ok();
                    })
                    .ok());
    return e;
  }
  Status Release(const StagingGroup& g, const std::string& tmpl) {
    return meta_->Update(
        [&](meta::Transaction& txn) { return ReleaseStagingGroup(txn, g, Template(tmpl)); });
  }
  std::string dir_;
  std::unique_ptr<meta::MetaStore> meta_;
};

TEST_F(StagingTest, WithoutOneCreatesItTaggedAndDeletesItWithTheTemplate) {
  auto g = Prepare("web", std::nullopt);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_TRUE(g->created);
  EXPECT_EQ(g->id.resource_group(), "IT_rg_web_0b0e5d3c-1f7a-4c55-9a43-6a3c50e0d7a1");
  meta::Resource r = Get(g->id);
  EXPECT_EQ(r.location, "eastus");
  EXPECT_EQ(r.tags.Dump(-1), R"({"createdBy":"AzureVMImageBuilder","imageTemplateName":"web",)"
                             R"("imageTemplateResourceGroupName":"rg"})");
  ASSERT_TRUE(Release(*g, "web").ok());
  EXPECT_FALSE(Exists(g->id));
}

TEST_F(StagingTest, LongNamesAreShortenedToAzuresNinetyCharacters) {
  auto g = Prepare(std::string(64, 't'), std::nullopt);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->id.resource_group().size(), 90u);
  EXPECT_TRUE(g->id.resource_group().ends_with("_0b0e5d3c-1f7a-4c55-9a43-6a3c50e0d7a1"));
}

TEST_F(StagingTest, ANamedGroupThatDoesNotExistIsCreatedAndDeletedWithTheTemplate) {
  auto g = Prepare("web", "stage-web");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_TRUE(g->created);
  EXPECT_EQ(TagOf(Get(g->id), "createdBy"), "AzureVMImageBuilder");
  ASSERT_TRUE(Release(*g, "web").ok());
  EXPECT_FALSE(Exists(g->id));
}

TEST_F(StagingTest, AnExistingEmptyGroupIsTaggedUsedByAndKept) {
  Json tags = Json::MakeObject();
  tags.Set("owner", Json::String("platform"));
  ASSERT_TRUE(MakeGroup("mine", "eastus", tags).ok());
  auto g = Prepare("web", "mine");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_FALSE(g->created);
  meta::Resource r = Get(g->id);
  EXPECT_EQ(TagOf(r, "owner"), "platform");
  EXPECT_EQ(TagOf(r, "usedBy"), "AzureVMImageBuilder");
  EXPECT_EQ(TagOf(r, "imageTemplateName"), "web");
  ASSERT_TRUE(Release(*g, "web").ok());
  r = Get(g->id);  // still there, with the user's own tags only
  EXPECT_EQ(r.tags.Dump(-1), R"({"owner":"platform"})");
}

TEST_F(StagingTest, AnExistingGroupMustBeEmptyInTheRegionAndUnused) {
  ASSERT_TRUE(MakeGroup("west", "westus2").ok());
  auto g = Prepare("web", "west");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(g.status().message().find("is in westus2, not in the template's region eastus"),
            std::string::npos)
      << g.status().ToString();

  ASSERT_TRUE(MakeGroup("busy", "eastus").ok());
  ASSERT_TRUE(meta_
                  ->Update([&](meta::Transaction& txn) {
                    meta::Resource r{ResourceId::ForResource(kSub, "busy", "Microsoft.Compute",
                                                             "images", "img1"),
                                     "eastus",
                                     Json::MakeObject(),
                                     Json::MakeObject(),
                                     0,
                                     0,
                                     0};
                    return txn.Create(r);
                  })
                  .ok());
  g = Prepare("web", "busy");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("must be empty but holds 1 resource(s)"), std::string::npos)
      << g.status().ToString();
  EXPECT_NE(g.status().message().find("/images/img1"), std::string::npos);

  ASSERT_TRUE(MakeGroup("shared", "eastus").ok());
  ASSERT_TRUE(Prepare("first", "shared").ok());
  g = Prepare("second", "shared");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("already the staging group of image template 'first'"),
            std::string::npos)
      << g.status().ToString();
  // The same template asking again (a re-create) is fine.
  EXPECT_TRUE(Prepare("first", "shared").ok());
}

TEST_F(StagingTest, ReleaseDeletesTheStagedVhdsAndListsTheirFiles) {
  auto g = Prepare("web", std::nullopt);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(meta_
                  ->Update([&](meta::Transaction& txn) {
                    meta::Resource acct{
                        ResourceId::ForResource(kSub, g->id.resource_group(), "Microsoft.Storage",
                                                "storageAccounts", "imgsmithabc"),
                        "eastus",
                        Json::MakeObject(),
                        Json::MakeObject(),
                        0,
                        0,
                        0};
                    acct.properties.Set("path", Json::String("/data/staging/imgsmithabc"));
                    return txn.Create(acct);
                  })
                  .ok());
  std::vector<std::string> files;
  ASSERT_TRUE(meta_
                  ->Read([&](meta::Transaction& txn) {
                    ASSIGN_OR_RETURN(files, StagingFiles(txn, *g));
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(files, std::vector<std::string>{"/data/staging/imgsmithabc"});
  ASSERT_TRUE(Release(*g, "web").ok());
  EXPECT_FALSE(Exists(g->id));
}

}  // namespace
}  // namespace imagesmith::build
