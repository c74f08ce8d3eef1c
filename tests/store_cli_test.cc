// End-to-end tests of 'imagesmith store fsck' and 'imagesmith store gc': the
// store is filled through the store library (as the gallery layer does), the
// gc roots are written into meta.db the way the gallery records them
// (properties.imagesmith.storeRefs), and the binary does the rest.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "e2e_util.h"
#include "meta/meta_store.h"
#include "store/store.h"

namespace imagesmith::e2e {
namespace {

Region R(const char* name) { return *Region::Parse(name); }

void Write(const std::string& path, const std::string& data) {
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, data).ok()) << path;
}

// A small tree: `salt` makes its files differ from another one's.
std::string MakeTree(const std::string& dir, const std::string& salt) {
  EXPECT_TRUE(Env::Default()->CreateDirs(dir + "/etc").ok());
  Write(dir + "/etc/os-release", "ID=debian\n");
  Write(dir + "/etc/hostname", "host-" + salt + "\n");
  Write(dir + "/payload", std::string(100000, salt[0]));
  return dir;
}

// Sets properties.imagesmith.storeRefs on resource group `group`.
void SetRefs(const std::string& home, const std::string& group, const Json& refs) {
  auto meta = meta::OpenSqliteMetaStore(*Env::Default(), home + "/meta.db");
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  Status s = (*meta)->Update([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(auto subs, txn.ListSubscriptions());
    ResourceId id = ResourceId::ForResourceGroup(subs.at(0).id.subscription(), group);
    ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
    Json im = Json::MakeObject();
    im.Set("storeRefs", refs);
    r.properties.Set("imagesmith", std::move(im));
    return txn.Replace(r);
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
}

Json Ref(const char* region, const Sha256Digest& image) {
  Json o = Json::MakeObject();
  o.Set("region", Json::String(region));
  o.Set("image", Json::String(image.ToHex()));
  return o;
}

void AgeStore(const std::string& root) {
  ASSERT_EQ(system(("find " + root + " -exec touch -h -d 2020-01-01 {} +").c_str()), 0);
}

TEST(StoreCliTest, GcKeepsWhatMetadataReferencesAndFsckVerifiesIt) {
  std::string home = MakeTempDir() + "/data";
  std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", home}};
  CliResult g = RunCli({"group", "create", "-n", "keep", "-l", "eastus"}, "", env);
  ASSERT_EQ(g.exit_code, 0) << g.err;

  std::string tmp = MakeTempDir();
  Sha256Digest kept, dropped;
  {
    auto store = store::Store::Open(*Env::Default(), home + "/store");
    ASSERT_TRUE(store.ok());
    auto a = (*store)->PutTree(R("eastus"), MakeTree(tmp + "/a", "a"), Json::MakeObject(), nullptr,
                               nullptr);
    auto b = (*store)->PutTree(R("eastus"), MakeTree(tmp + "/b", "b"), Json::MakeObject(), nullptr,
                               nullptr);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE((*store)->Replicate(R("eastus"), R("westus2"), *a, nullptr).ok());
    kept = *a;
    dropped = *b;
  }
  Json refs = Json::MakeArray();
  refs.Append(Ref("eastus", kept));
  refs.Append(Ref("westus2", kept));
  SetRefs(home, "keep", refs);
  AgeStore(home + "/store");

  CliResult gc = RunCli({"store", "gc"}, "", env);
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  auto out = ParseJson(gc.out);
  ASSERT_TRUE(out.ok()) << gc.out;
  EXPECT_EQ(*out->Find("roots")->AsInt64(), 2);
  // b's payload, hostname, etc directory, root directory and manifest.
  EXPECT_EQ(*out->Find("objectsRemoved")->AsInt64(), 5);
  EXPECT_TRUE(Env::Default()->FileExists(home + "/store/eastus/images/" + kept.ToHex()));
  EXPECT_TRUE(Env::Default()->FileExists(home + "/store/westus2/images/" + kept.ToHex()));
  EXPECT_FALSE(Env::Default()->FileExists(home + "/store/eastus/images/" + dropped.ToHex()));

  CliResult fsck = RunCli({"store", "fsck"}, "", env);
  ASSERT_EQ(fsck.exit_code, 0) << fsck.err;
  auto f = ParseJson(fsck.out);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->Find("ok")->bool_value());
  EXPECT_EQ(*f->Find("imagesChecked")->AsInt64(), 2);
  EXPECT_GT(*f->Find("objectsChecked")->AsInt64(), 8);

  // Damage one object in westus2: fsck names the region and the object.
  Sha256Digest payload = Sha256Of(std::string(100000, 'a'));
  std::string hex = payload.ToHex();
  std::string path = home + "/store/westus2/objects/" + hex.substr(0, 2) + "/" + hex;
  ASSERT_TRUE(Env::Default()->FileExists(path));
  Write(path, "not an object");
  CliResult bad = RunCli({"store", "fsck"}, "", env);
  EXPECT_EQ(bad.exit_code, 70);
  auto b = ParseJson(bad.out);
  ASSERT_TRUE(b.ok()) << bad.out;
  EXPECT_FALSE(b->Find("ok")->bool_value());
  ASSERT_EQ(b->Find("problems")->array_items().size(), 1u);  // reported once, as the object
  EXPECT_NE(b->Dump().find("westus2: object " + hex), std::string::npos) << b->Dump();
  EXPECT_NE(bad.err.find("problem"), std::string::npos);
}

TEST(StoreCliTest, MalformedStoreRefsStopGcBeforeItRemovesAnything) {
  std::string home = MakeTempDir() + "/data";
  std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", home}};
  ASSERT_EQ(RunCli({"group", "create", "-n", "odd", "-l", "eastus"}, "", env).exit_code, 0);
  std::string tmp = MakeTempDir();
  Sha256Digest image;
  {
    auto store = store::Store::Open(*Env::Default(), home + "/store");
    ASSERT_TRUE(store.ok());
    auto a = (*store)->PutTree(R("eastus"), MakeTree(tmp + "/a", "a"), Json::MakeObject(), nullptr,
                               nullptr);
    ASSERT_TRUE(a.ok());
    image = *a;
  }
  Json refs = Json::MakeArray();
  Json broken = Json::MakeObject();
  broken.Set("region", Json::String("eastus"));
  broken.Set("image", Json::String("not-a-digest"));
  refs.Append(std::move(broken));
  SetRefs(home, "odd", refs);
  AgeStore(home + "/store");
  CliResult gc = RunCli({"store", "gc"}, "", env);
  EXPECT_EQ(gc.exit_code, 4) << gc.err;
  EXPECT_NE(gc.err.find("resourceGroups/odd"), std::string::npos) << gc.err;
  EXPECT_NE(gc.err.find("storeRefs"), std::string::npos) << gc.err;
  EXPECT_TRUE(Env::Default()->FileExists(home + "/store/eastus/images/" + image.ToHex()));
}

// ---- the metadata database failing: full, damaged, locked -----------------

// A file system that really fills up: a 512 KiB tmpfs mounted for the test.
class TinyFs {
 public:
  explicit TinyFs(const std::string& dir) : dir_(dir) {
    EXPECT_TRUE(Env::Default()->CreateDirs(dir).ok());
    ProcessOptions o;
    o.argv = {"mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir};
    auto r = Env::Default()->RunProcess(o);
    mounted_ = r.ok() && r->success();
    EXPECT_TRUE(mounted_) << "mounting a tmpfs at " << dir << ": "
                          << (r.ok() ? r->stderr_data : r.status().ToString());
  }
  ~TinyFs() {
    if (!mounted_) return;
    ProcessOptions o;
    o.argv = {"umount", dir_};
    (void)Env::Default()->RunProcess(o);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

TEST(MetaFaultCliTest, FullDiskFailsTheCommandNamingTheDatabaseAndKeepsEveryEarlierChange) {
  const std::string home = MakeTempDir() + "/tiny";
  TinyFs fs(home);
  ASSERT_TRUE(fs.mounted());
  const std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", home}};
  std::vector<std::string> tags = {"--tags"};
  for (int t = 0; t < 50; ++t)
    tags.push_back("k" + std::to_string(t) + "=" + std::string(250, 'v'));
  int created = 0;
  CliResult last;
  for (int i = 0; i < 200; ++i) {
    std::vector<std::string> args = {"group", "create", "-n", "g" + std::to_string(i),
                                     "-l",    "eastus"};
    args.insert(args.end(), tags.begin(), tags.end());
    last = RunCli(args, "", env);
    if (last.exit_code != 0) break;
    ++created;
  }
  ASSERT_NE(last.exit_code, 0) << "512 KiB never filled up";
  EXPECT_GT(created, 0);
  EXPECT_EQ(last.exit_code, 1) << last.err;
  EXPECT_NE(last.err.find("metadata database " + home + "/meta.db"), std::string::npos) << last.err;
  EXPECT_NE(last.err.find("is full: free space and retry"), std::string::npos) << last.err;
  // Every group that was reported created is there; the failed one is not.
  CliResult list = RunCli({"group", "list"}, "", env);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto groups = ParseJson(list.out);
  ASSERT_TRUE(groups.ok());
  EXPECT_EQ(static_cast<int>(groups->array_items().size()), created);
}

TEST(MetaFaultCliTest, DamagedDatabaseFailsEveryCommandNamingTheFileAndWhatToDo) {
  const std::string home = MakeTempDir();
  const std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", home}};
  ASSERT_EQ(RunCli({"group", "create", "-n", "g", "-l", "eastus"}, "", env).exit_code, 0);
  Write(home + "/meta.db", std::string(8192, 'z'));
  ::unlink((home + "/meta.db-wal").c_str());
  ::unlink((home + "/meta.db-shm").c_str());
  CliResult r = RunCli({"group", "list"}, "", env);
  EXPECT_EQ(r.exit_code, 70) << r.err;
  EXPECT_NE(r.err.find("metadata database " + home + "/meta.db"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("imagesmith backup restore"), std::string::npos) << r.err;
}

TEST(MetaFaultCliTest, DatabaseLockedLongerThanTheBusyTimeoutFailsNamingTheFile) {
  const std::string home = MakeTempDir();
  const std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", home}};
  ASSERT_EQ(RunCli({"group", "create", "-n", "g", "-l", "eastus"}, "", env).exit_code, 0);
  // This process holds the write lock for longer than the CLI waits (10 s).
  auto holder = meta::OpenSqliteMetaStore(*Env::Default(), home + "/meta.db");
  ASSERT_TRUE(holder.ok());
  CliResult r;
  Status held = (*holder)->Update([&](meta::Transaction&) {
    r = RunCli({"group", "create", "-n", "blocked", "-l", "eastus"}, "", env);
    return Status::Ok();
  });
  ASSERT_TRUE(held.ok()) << held.ToString();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("metadata database " + home + "/meta.db"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("retry when it has finished"), std::string::npos) << r.err;
  CliResult list = RunCli({"group", "list"}, "", env);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.find("blocked"), std::string::npos) << "the refused change was kept";
}

}  // namespace
}  // namespace imagesmith::e2e
