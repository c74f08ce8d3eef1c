// Backup and restore on a real SQLite database and a real store: round
// trips, incremental copies, in-flight work, and every refusal.
#include "backup/backup.h"

#include <gtest/gtest.h>

#include "base/json.h"
#include "gallery/resources.h"
#include "store/test_util.h"

namespace imagesmith::backup {
namespace {

using store::testing::MakeTree;
using store::testing::TempDir;
using store::testing::WriteFile;

constexpr char kSub[] = "00000000-0000-0000-0000-000000000001";

Region R(const char* name) { return *Region::Parse(name); }

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = TempDir();
    home_ = root_ + "/home";
    ASSERT_TRUE(env_.CreateDirs(home_).ok());
    meta_ = std::move(*meta::OpenSqliteMetaStore(env_, home_ + "/meta.db"));
    store_ = std::move(*store::Store::Open(env_, home_ + "/store"));
    ASSERT_TRUE(meta_
                    ->Update([&](meta::Transaction& txn) {
                      meta::Resource sub{ResourceId::ForSubscription(kSub), "", Json::MakeObject(),
                                         Json::MakeObject()};
                      return txn.Create(sub);
                    })
                    .ok());
  }
  void TearDown() override { (void)env_.RemoveAll(root_); }

  Sha256Digest PutTree(const std::string& salt) {
    std::string tree = root_ + "/tree-" + salt;
    MakeTree(tree, salt);
    auto d = store_->PutTree(R("eastus"), tree, Json::MakeObject(), nullptr, nullptr);
    EXPECT_TRUE(d.ok()) << d.status().message();
    return *d;
  }
  ResourceId VersionId(const std::string& v) {
    return *ResourceId::Parse("/subscriptions/" + std::string(kSub) +
                              "/resourceGroups/rg/providers/Microsoft.Compute/galleries/gal/"
                              "images/def/versions/" +
                              v);
  }
  // A version resource as PublishVersion writes it.
  void AddVersion(const std::string& v, const Sha256Digest& image, const std::string& state,
                  gallery::ReplicaState replica) {
    gallery::VersionRecord rec(R("eastus"), R("eastus"));
    rec.version = *gallery::ImageVersion::Parse(v);
    rec.target_regions = {tmpl::TargetRegion{R("eastus"), 1, std::nullopt}};
    rec.provisioning_state = state;
    rec.replication = {{R("eastus"), replica, ""}};
    rec.image = image;
    rec.kind = "tree";
    rec.os_type = "Linux";
    rec.os_state = "Generalized";
    rec.hyper_v_generation = "V2";
    meta::Resource r{VersionId(v), "eastus", Json::MakeObject(), rec.ToProperties()};
    ASSERT_TRUE(meta_->Update([&](meta::Transaction& txn) { return txn.Create(r); }).ok());
  }
  std::string State(meta::MetaStore& m, const std::string& v) {
    std::string out;
    EXPECT_TRUE(m.Read([&](meta::Transaction& txn) -> Status {
                   ASSIGN_OR_RETURN(meta::Resource r, txn.Get(VersionId(v)));
                   out = r.properties.Find("provisioningState")->string_value();
                   return Status::Ok();
                 }).ok());
    return out;
  }

  Env& env_ = *Env::Default();
  std::string root_, home_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(BackupTest, RoundTripsDatabaseAndNamedImagesOnly) {
  Sha256Digest a = PutTree("a");
  Sha256Digest unnamed = PutTree("unnamed");
  AddVersion("1.0.0", a, "Succeeded", gallery::ReplicaState::kCompleted);
  auto stats = CreateBackup(env_, *meta_, *store_, root_ + "/bk", nullptr);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->images, 1u);
  EXPECT_GT(stats->copied_objects, 5u);
  EXPECT_EQ(stats->resources, 2u);
  EXPECT_TRUE(stats->interrupted.empty());

  auto restored = RestoreBackup(env_, root_ + "/bk", root_ + "/new", nullptr);
  ASSERT_TRUE(restored.ok()) << restored.status().message();
  EXPECT_EQ(restored->images, 1u);
  EXPECT_EQ(restored->copied_objects, stats->copied_objects);
  auto s2 = store::Store::Open(env_, root_ + "/new/store");
  ASSERT_TRUE(s2.ok());
  auto fsck = (*s2)->Fsck(nullptr);
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->ok()) << fsck->problems[0];
  EXPECT_EQ(fsck->images_checked, 1u);
  EXPECT_TRUE((*s2)->HasImage(R("eastus"), a));
  EXPECT_FALSE((*s2)->HasImage(R("eastus"), unnamed));  // nothing names it
  // The same tree comes back.
  ASSERT_TRUE((*s2)->MaterializeTree(R("eastus"), a, root_ + "/out", nullptr).ok());
  EXPECT_EQ(*env_.ReadFile(root_ + "/out/etc/hostname", 1 << 20), "imagesmith\na");
  auto m2 = meta::OpenSqliteMetaStore(env_, root_ + "/new/meta.db");
  ASSERT_TRUE(m2.ok()) << m2.status().message();
  EXPECT_EQ(State(**m2, "1.0.0"), "Succeeded");
}

TEST_F(BackupTest, AgainIntoTheSameDirectoryCopiesOnlyNewObjects) {
  AddVersion("1.0.0", PutTree("a"), "Succeeded", gallery::ReplicaState::kCompleted);
  const std::string bk = root_ + "/bk";
  auto first = CreateBackup(env_, *meta_, *store_, bk, nullptr);
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto again = CreateBackup(env_, *meta_, *store_, bk, nullptr);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->copied_objects, 0u);
  EXPECT_EQ(again->present_objects, first->copied_objects);
  // A second version that shares all but one file with the first.
  AddVersion("1.0.1", PutTree("b"), "Succeeded", gallery::ReplicaState::kCompleted);
  auto third = CreateBackup(env_, *meta_, *store_, bk, nullptr);
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_EQ(third->images, 2u);
  EXPECT_GT(third->copied_objects, 0u);
  EXPECT_LT(third->copied_objects, 6u);  // the changed file, its directories, the manifest
  // Only the newest database file is kept, and it is the one backup.json names.
  auto names = env_.ListDir(bk);
  ASSERT_TRUE(names.ok());
  int dbs = 0;
  for (const auto& n : *names) dbs += n.rfind("meta-", 0) == 0 ? 1 : 0;
  EXPECT_EQ(dbs, 1);
  EXPECT_TRUE(env_.FileExists(bk + "/" + third->meta_file));
}

TEST_F(BackupTest, VersionInFlightComesBackFailedAndResumable) {
  Sha256Digest a = PutTree("a");
  AddVersion("1.0.0", a, "Creating", gallery::ReplicaState::kInProgress);
  auto stats = CreateBackup(env_, *meta_, *store_, root_ + "/bk", nullptr);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  ASSERT_EQ(stats->interrupted.size(), 1u);
  EXPECT_EQ(stats->interrupted[0], VersionId("1.0.0").ToString());
  // The live database is not touched.
  EXPECT_EQ(State(*meta_, "1.0.0"), "Creating");
  ASSERT_TRUE(RestoreBackup(env_, root_ + "/bk", root_ + "/new", nullptr).ok());
  auto m2 = meta::OpenSqliteMetaStore(env_, root_ + "/new/meta.db");
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(State(**m2, "1.0.0"), "Failed");
  // Its source image is in the restored store, so `update` can finish it.
  auto s2 = store::Store::Open(env_, root_ + "/new/store");
  EXPECT_TRUE((*s2)->HasImage(R("eastus"), a));
  ASSERT_TRUE((*m2)
                  ->Read([&](meta::Transaction& txn) -> Status {
                    ASSIGN_OR_RETURN(meta::Resource r, txn.Get(VersionId("1.0.0")));
                    auto rec = gallery::VersionRecord::FromResource(r);
                    EXPECT_TRUE(rec.ok());
                    EXPECT_EQ(rec->replication[0].state, gallery::ReplicaState::kFailed);
                    EXPECT_NE(rec->replication[0].details.find("sig image-version update"),
                              std::string::npos);
                    return Status::Ok();
                  })
                  .ok());
}

TEST_F(BackupTest, OperationInFlightComesBackFailedNotInProgress) {
  Sha256Digest a = PutTree("a");
  AddVersion("1.0.0", a, "Creating", gallery::ReplicaState::kInProgress);
  ASSERT_TRUE(meta_
                  ->Update([&](meta::Transaction& txn) -> Status {
                    meta::OperationRow op;
                    op.id = "0f0f0f0f-0000-4000-8000-000000000001";
                    op.type = "Microsoft.Compute/galleries/images/versions/replicate";
                    op.target = VersionId("1.0.0").ToString();
                    op.status = "InProgress";
                    op.owner = "host:1234:5678";
                    op.lease_expiry_us = 1;
                    return txn.CreateOperation(op);
                  })
                  .ok());
  auto stats = CreateBackup(env_, *meta_, *store_, root_ + "/bk", nullptr);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  ASSERT_TRUE(RestoreBackup(env_, root_ + "/bk", root_ + "/new", nullptr).ok());
  auto m2 = meta::OpenSqliteMetaStore(env_, root_ + "/new/meta.db");
  ASSERT_TRUE(m2.ok());
  ASSERT_TRUE((*m2)
                  ->Read([&](meta::Transaction& txn) -> Status {
                    ASSIGN_OR_RETURN(meta::OperationRow op,
                                     txn.GetOperation("0f0f0f0f-0000-4000-8000-000000000001"));
                    EXPECT_EQ(op.status, "Failed");
                    EXPECT_TRUE(op.owner.empty());
                    EXPECT_EQ(op.doc.Find("error")->Find("code")->string_value(),
                              "BackupInterrupted");
                    return Status::Ok();
                  })
                  .ok());
  // The live database is not touched.
  ASSERT_TRUE(meta_
                  ->Read([&](meta::Transaction& txn) -> Status {
                    ASSIGN_OR_RETURN(meta::OperationRow op,
                                     txn.GetOperation("0f0f0f0f-0000-4000-8000-000000000001"));
                    EXPECT_EQ(op.status, "InProgress");
                    return Status::Ok();
                  })
                  .ok());
}

TEST_F(BackupTest, RefusesANonEmptyDataDirectoryAndSaysWhatToDo) {
  AddVersion("1.0.0", PutTree("a"), "Succeeded", gallery::ReplicaState::kCompleted);
  ASSERT_TRUE(CreateBackup(env_, *meta_, *store_, root_ + "/bk", nullptr).ok());
  auto r = RestoreBackup(env_, root_ + "/bk", home_, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("is not empty (it holds meta.db"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("move this one aside"), std::string::npos);
  // An empty existing directory is fine.
  ASSERT_TRUE(env_.CreateDirs(root_ + "/empty").ok());
  EXPECT_TRUE(RestoreBackup(env_, root_ + "/bk", root_ + "/empty", nullptr).ok());
}

TEST_F(BackupTest, RefusesDirectoriesThatAreNotBackups) {
  auto missing = RestoreBackup(env_, root_ + "/nope", root_ + "/new", nullptr);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(env_.CreateDirs(root_ + "/plain").ok());
  auto plain = RestoreBackup(env_, root_ + "/plain", root_ + "/new", nullptr);
  EXPECT_EQ(plain.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(plain.status().message().find("no backup.json"), std::string::npos);
  EXPECT_FALSE(env_.FileExists(root_ + "/new"));
  // Nor is a backup written into a directory holding other things.
  WriteFile(root_ + "/plain/notes.txt", "mine");
  auto into = CreateBackup(env_, *meta_, *store_, root_ + "/plain", nullptr);
  EXPECT_EQ(into.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(into.status().message().find("\"notes.txt\""), std::string::npos)
      << into.status().message();
}

class DamagedBackupTest : public BackupTest {
 protected:
  void SetUp() override {
    BackupTest::SetUp();
    image_ = PutTree("a");
    AddVersion("1.0.0", image_, "Succeeded", gallery::ReplicaState::kCompleted);
    auto stats = CreateBackup(env_, *meta_, *store_, bk(), nullptr);
    ASSERT_TRUE(stats.ok()) << stats.status().message();
    meta_file_ = bk() + "/" + stats->meta_file;
  }
  std::string bk() const { return root_ + "/bk"; }
  // Restores into a new directory and expects it to fail with `code`,
  // leaving that directory absent.
  Status ExpectRefused(StatusCode code) {
    auto r = RestoreBackup(env_, bk(), root_ + "/new", nullptr);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().message();
    EXPECT_FALSE(env_.FileExists(root_ + "/new")) << "restore left " << root_ << "/new";
    return r.status();
  }
  // One object file of the backed-up image other than its manifest.
  std::string SomeObject() {
    std::string objects = bk() + "/store/eastus/objects";
    auto fans = env_.ListDir(objects);
    if (!fans.ok()) return "";
    for (const std::string& fan : *fans) {
      auto names = env_.ListDir(objects + "/" + fan);
      if (!names.ok()) continue;
      for (const std::string& n : *names) {
        if (n != image_.ToHex()) return objects + "/" + fan + "/" + n;
      }
    }
    return "";
  }
  Sha256Digest image_;
  std::string meta_file_;
};

TEST_F(DamagedBackupTest, MissingOrGarbledManifest) {
  WriteFile(bk() + "/backup.json", "{\"imagesmithBackup\": 1, \"meta\": ");
  Status s = ExpectRefused(StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("backup.json is damaged"), std::string::npos) << s.message();
  unlink((bk() + "/backup.json").c_str());
  s = ExpectRefused(StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("no backup.json"), std::string::npos) << s.message();
}

TEST_F(DamagedBackupTest, DatabaseFileMissingOrChanged) {
  std::string db = *env_.ReadFile(meta_file_, 1 << 30);
  unlink(meta_file_.c_str());
  Status s = ExpectRefused(StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(meta_file_ + " is missing"), std::string::npos) << s.message();
  db[db.size() / 2] ^= 0x5a;
  WriteFile(meta_file_, db);
  s = ExpectRefused(StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("has SHA-256"), std::string::npos) << s.message();
}

TEST_F(DamagedBackupTest, ObjectWhoseContentDoesNotMatchItsDigest) {
  std::string obj = SomeObject();
  ASSERT_FALSE(obj.empty());
  std::string data = *env_.ReadFile(obj, 1 << 30);
  data[data.size() - 1] ^= 0x01;
  WriteFile(obj, data);
  Status s = ExpectRefused(StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(obj), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("restore from " + bk() + " failed"), std::string::npos) << s.message();
}

TEST_F(DamagedBackupTest, ObjectMissing) {
  std::string obj = SomeObject();
  ASSERT_FALSE(obj.empty());
  unlink(obj.c_str());
  Status s = ExpectRefused(StatusCode::kNotFound);
  EXPECT_NE(s.message().find("eastus"), std::string::npos) << s.message();
}

TEST_F(DamagedBackupTest, ImageMarkerMissing) {
  unlink((bk() + "/store/eastus/images/" + image_.ToHex()).c_str());
  Status s = ExpectRefused(StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("is missing or incomplete"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace imagesmith::backup
