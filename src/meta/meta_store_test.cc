#include "meta/meta_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
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
  EXPECT_EQ((*again)->SchemaVersion(), 3);  // 1 resources, 2 operations, 3 records
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

// ---- faults: a full disk, a lock held too long, a damaged file ----------

int64_t CountAll(MetaStore& m) {
  int64_t n = -1;
  EXPECT_TRUE(m.Read([&](Transaction& t) -> Status {
                 ASSIGN_OR_RETURN(n, t.CountDescendants(Id(kSub)));
                 return Status::Ok();
               }).ok());
  return n;
}

TEST_F(MetaStoreTest, FullDatabaseIsResourceExhaustedNamingTheFileAndKeepsNothingOfTheChange) {
  // max_page_count makes SQLite answer SQLITE_FULL as it does on a full disk.
  const std::string path = dir_ + "/full.db";
  SqliteOptions small;
  small.max_page_count = 16;
  auto m = OpenSqliteMetaStore(*Env::Default(), path, small);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  Status full;
  int committed = 0;
  for (int i = 0; i < 200 && full.ok(); ++i) {
    full = (*m)->Update([&](Transaction& t) -> Status {
      // Two resources per transaction: either both are kept or neither.
      for (const char* half : {"a", "b"}) {
        Json props = Json::MakeObject();
        props.Set("blob", Json::String(std::string(1500, 'x')));
        Resource r{Id(std::string(kSub) + "/resourceGroups/g" + std::to_string(i) + half),
                   "",
                   Json::MakeObject(),
                   props,
                   0,
                   0,
                   0};
        RETURN_IF_ERROR(t.Create(r));
      }
      return Status::Ok();
    });
    if (full.ok()) ++committed;
  }
  ASSERT_FALSE(full.ok()) << "16 pages never filled up";
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted) << full.ToString();
  EXPECT_NE(full.message().find("metadata database " + path), std::string::npos) << full.message();
  EXPECT_NE(full.message().find("is full: free space and retry"), std::string::npos)
      << full.message();
  // Nothing of the failed transaction, everything of the committed ones.
  EXPECT_EQ(CountAll(**m), 2 * committed);
  m->reset();
  auto reopened = OpenSqliteMetaStore(*Env::Default(), path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(CountAll(**reopened), 2 * committed);
}

TEST_F(MetaStoreTest, LockHeldLongerThanTheBusyTimeoutIsUnavailableNamingTheFile) {
  ASSERT_TRUE(Create(std::string(kSub) + "/resourceGroups/before").ok());
  SqliteOptions impatient;
  impatient.busy_timeout = std::chrono::milliseconds(200);
  auto waiting = OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db", impatient);
  ASSERT_TRUE(waiting.ok());
  std::atomic<bool> release{false};
  std::atomic<bool> holding{false};
  std::thread holder([&] {
    Status s = store_->Update([&](Transaction&) {
      holding = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Status s = (*waiting)->Update([&](Transaction& t) {
    Resource r{Id(std::string(kSub) + "/resourceGroups/blocked"),
               "",
               Json::MakeObject(),
               Json::MakeObject(),
               0,
               0,
               0};
    return t.Create(r);
  });
  release = true;
  holder.join();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("metadata database " + dir_ + "/meta.db"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("retry when it has finished"), std::string::npos) << s.message();
  // Readers are not blocked by a writer (WAL), and the blocked change is absent.
  EXPECT_EQ(CountAll(**waiting), 1);
}

TEST_F(MetaStoreTest, DamagedDatabaseFileIsDataLossNamingItAndSayingWhatToDo) {
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(Create(std::string(kSub) + "/resourceGroups/g" + std::to_string(i)).ok());
  }
  store_.reset();  // checkpoints the WAL into meta.db
  const std::string path = dir_ + "/meta.db";
  ASSERT_FALSE(Env::Default()->FileExists(path + "-wal"));
  auto bytes = Env::Default()->ReadFile(path, 1 << 30);
  ASSERT_TRUE(bytes.ok());
  ASSERT_GE(bytes->size(), 3 * 4096u);
  // Page 2 onwards overwritten: the table's pages are garbage.
  std::string damaged = *bytes;
  for (size_t i = 4096; i < damaged.size(); ++i) damaged[i] = static_cast<char>(0xA5 ^ (i * 7));
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, damaged).ok());
  auto m = OpenSqliteMetaStore(*Env::Default(), path);
  Status s =
      m.ok()
          ? (*m)->Read([&](Transaction& t) { return t.ListDescendants(Id(kSub), 1000).status(); })
          : m.status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("metadata database " + path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("backup restore"), std::string::npos) << s.message();
  // A damaged header is refused when the database is opened.
  std::string header = *bytes;
  for (size_t i = 0; i < 100; ++i) header[i] = 'z';
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, header).ok());
  auto h = OpenSqliteMetaStore(*Env::Default(), path);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), StatusCode::kDataLoss) << h.status().ToString();
  EXPECT_NE(h.status().message().find(path), std::string::npos) << h.status().message();
}

TEST_F(MetaStoreTest, RecordsArePutReadListedAndDeletedByCaseInsensitiveKey) {
  Status s = store_->Update([&](Transaction& t) {
    Json v = Json::MakeObject();
    v.Set("a", Json::Int(1));
    RETURN_IF_ERROR(t.PutRecord("things", "Key-B", v));
    RETURN_IF_ERROR(t.PutRecord("things", "key-a", v));
    RETURN_IF_ERROR(t.PutRecord("others", "key-a", Json::MakeObject()));
    v.Set("a", Json::Int(2));
    RETURN_IF_ERROR(t.PutRecord("things", "KEY-B", v));  // replaces Key-B
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = store_->Read([&](Transaction& t) {
    ASSIGN_OR_RETURN(Record b, t.GetRecord("things", "key-b"));
    EXPECT_EQ(b.key, "KEY-B");
    EXPECT_EQ(b.value.Find("a")->AsInt64(), 2);
    ASSIGN_OR_RETURN(std::vector<Record> all, t.ListRecords("things"));
    EXPECT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].key, "key-a");
    EXPECT_EQ(t.GetRecord("things", "nope").status().code(), StatusCode::kNotFound);
    // Records are not resources: nothing below the subscription counts them.
    ASSIGN_OR_RETURN(int64_t n, t.CountDescendants(Id(kSub)));
    EXPECT_EQ(n, 0);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  s = store_->Update([&](Transaction& t) {
    RETURN_IF_ERROR(t.DeleteRecord("things", "Key-A"));
    EXPECT_EQ(t.DeleteRecord("things", "key-a").code(), StatusCode::kNotFound);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
}

}  // namespace
}  // namespace imagesmith::meta
