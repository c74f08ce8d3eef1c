#include "meta/meta_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <thread>

namespace imagesmith::meta {
namespace {

constexpr const char* kSub = "/subscriptions/11111111-2222-3333-4444-555555555555";

ResourceId Id(const std::string& s) { return *ResourceId::Parse(s); }

class MetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-meta-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    ASSERT_TRUE(Env::Default()->RemoveAll(dir_).ok());
  }
  Status Create(const std::string& id, const std::string& location = "eastus") {
    return store_->Update([&](Transaction& t) {
      Resource r{Id(id), location, Json::MakeObject(), Json::MakeObject(), 0, 0, 0};
      return t.Create(r);
    });
  }
  std::string dir_;
  std::unique_ptr<MetaStore> store_;
};

TEST_F(MetaStoreTest, CreatesGetsAndComparesIdsIgnoringCase) {
  std::string rg = std::string(kSub) + "/resourceGroups/MyGroup";
  ASSERT_TRUE(Create(rg).ok());
  Status s = store_->Read([&](Transaction& t) {
    ASSIGN_OR_RETURN(Resource r, t.Get(Id(std::string(kSub) + "/resourcegroups/mygroup")));
    EXPECT_EQ(r.id.name(), "MyGroup");
    EXPECT_EQ(r.generation, 1);
    EXPECT_EQ(r.ToJson().Find("type")->string_value(), "Microsoft.Resources/resourceGroups");
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Create(std::string(kSub) + "/resourceGroups/MYGROUP").code(),
            StatusCode::kAlreadyExists);
}

TEST_F(MetaStoreTest, ListsChildrenByTypeAndCountsDescendants) {
  std::string rg = std::string(kSub) + "/resourceGroups/rg";
  std::string g = rg + "/providers/Microsoft.Compute/galleries/g";
  ASSERT_TRUE(Create(rg).ok());
  ASSERT_TRUE(Create(g).ok());
  ASSERT_TRUE(Create(g + "/images/b").ok());
  ASSERT_TRUE(Create(g + "/images/a").ok());
  ASSERT_TRUE(Create(g + "/images/a/versions/1.0.0").ok());
  ASSERT_TRUE(Create(rg + "/providers/Microsoft.Compute/images/img").ok());
  Status s = store_->Read([&](Transaction& t) {
    ASSIGN_OR_RETURN(auto defs, t.ListChildren(Id(g), "Microsoft.Compute/galleries/images"));
    EXPECT_EQ(defs.size(), 2u);
    EXPECT_EQ(defs[0].id.name(), "a");
    ASSIGN_OR_RETURN(auto top, t.ListChildren(Id(rg), "Microsoft.Compute/galleries"));
    EXPECT_EQ(top.size(), 1u);
    ASSIGN_OR_RETURN(auto versions,
                     t.ListByType(Id(kSub), "microsoft.compute/galleries/images/versions"));
    EXPECT_EQ(versions.size(), 1u);
    ASSIGN_OR_RETURN(int64_t n, t.CountDescendants(Id(g)));
    EXPECT_EQ(n, 3);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST_F(MetaStoreTest, FailedTransactionRollsBackEverything) {
  std::string rg = std::string(kSub) + "/resourceGroups/rg";
  Status s = store_->Update([&](Transaction& t) {
    Resource r{Id(rg), "eastus", Json::MakeObject(), Json::MakeObject(), 0, 0, 0};
    RETURN_IF_ERROR(t.Create(r));
    return FailedPreconditionError("changed my mind");
  });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  Status check = store_->Read([&](Transaction& t) {
    ASSIGN_OR_RETURN(bool exists, t.Exists(Id(rg)));
    EXPECT_FALSE(exists);
    return Status::Ok();
  });
  ASSERT_TRUE(check.ok());
}

TEST_F(MetaStoreTest, ReplaceChecksGenerationAndKeepsCreationTime) {
  std::string rg = std::string(kSub) + "/resourceGroups/rg";
  ASSERT_TRUE(Create(rg).ok());
  Status s = store_->Update([&](Transaction& t) {
    ASSIGN_OR_RETURN(Resource r, t.Get(Id(rg)));
    r.tags.Set("a", Json::String("b"));
    RETURN_IF_ERROR(t.Replace(r, 1));
    EXPECT_EQ(r.generation, 2);
    Resource stale = r;
    Status conflict = t.Replace(stale, 1);
    EXPECT_EQ(conflict.code(), StatusCode::kAborted);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST_F(MetaStoreTest, DataSurvivesReopenAndUsesWalMode) {
  ASSERT_TRUE(Create(std::string(kSub) + "/resourceGroups/rg").ok());
  store_.reset();
  auto again = OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->SchemaVersion(), 1);
  EXPECT_TRUE(Env::Default()->FileExists(dir_ + "/meta.db-wal"));
  Status s = (*again)->Read([&](Transaction& t) {
    ASSIGN_OR_RETURN(bool exists, t.Exists(Id(std::string(kSub) + "/resourceGroups/rg")));
    EXPECT_TRUE(exists);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok());
}

TEST_F(MetaStoreTest, NotADatabaseIsDataLoss) {
  std::string path = dir_ + "/junk.db";
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, std::string(4096, 'x')).ok());
  auto s = OpenSqliteMetaStore(*Env::Default(), path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss) << s.status().ToString();
}

TEST_F(MetaStoreTest, SecondProcessWaitsForTheWriteLock) {
  // Another connection (as another process would) holds a write transaction
  // for a moment; our Update waits instead of failing.
  auto other = OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
  ASSERT_TRUE(other.ok());
  std::thread holder([&] {
    Status s = (*other)->Update([&](Transaction& t) {
      Resource r{Id(std::string(kSub) + "/resourceGroups/first"),
                 "",
                 Json::MakeObject(),
                 Json::MakeObject(),
                 0,
                 0,
                 0};
      RETURN_IF_ERROR(t.Create(r));
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(Create(std::string(kSub) + "/resourceGroups/second").ok());
  holder.join();
}

}  // namespace
}  // namespace imagesmith::meta
