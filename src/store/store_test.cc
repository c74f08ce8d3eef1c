#include "store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "store/objects.h"
#include "store/test_util.h"
#include "store/tree_io.h"

namespace imagesmith::store {
namespace {

using testing::MakeTree;
using testing::TempDir;
using testing::WriteFile;

Region R(const char* name) { return *Region::Parse(name); }

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Everything observable about a tree, one line per inode, in walk order.
std::string Describe(const std::string& root) {
  auto nodes = WalkTree(root);
  EXPECT_TRUE(nodes.ok()) << nodes.status().ToString();
  if (!nodes.ok()) return "";
  std::string out;
  for (const WalkNode& n : *nodes) {
    const DirEntry& e = n.entry;
    out += n.rel + " t=" + std::to_string(static_cast<int>(e.type)) +
           " m=" + std::to_string(e.attrs.mode) + " u=" + std::to_string(e.attrs.uid) +
           " g=" + std::to_string(e.attrs.gid) + " mt=" + std::to_string(e.attrs.mtime_sec) + "." +
           std::to_string(e.attrs.mtime_nsec) + " s=" + std::to_string(e.size) + " l=" + e.target +
           " dev=" + std::to_string(e.rdev_major) + ":" + std::to_string(e.rdev_minor);
    for (const auto& [k, v] : e.attrs.xattrs)
      out += " x:" + k + "=" + Sha256Of(v).ToHex().substr(0, 8);
    if (e.type == EntryType::kFile) out += " c=" + Sha256Of(ReadAll(n.path)).ToHex();
    out += "\n";
  }
  return out;
}

struct Fixture : ::testing::Test {
  std::string dir = TempDir();
  std::unique_ptr<Store> store;
  void SetUp() override {
    auto s = Store::Open(*Env::Default(), dir + "/store");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(*s);
  }
  void TearDown() override { (void)Env::Default()->RemoveAll(dir); }
};

using StoreTest = Fixture;

TEST_F(StoreTest, TreeRoundTripsEveryAttributeAndEntryType) {
  MakeTree(dir + "/src");
  Json meta = Json::MakeObject();
  meta.Set("diskSizeGB", Json::Int(2));
  PutStats stats;
  auto image = store->PutTree(R("eastus"), dir + "/src", meta, &stats, nullptr);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_GT(stats.new_objects, 0u);
  ASSERT_TRUE(store->HasImage(R("eastus"), *image));
  auto info = store->GetImage(R("eastus"), *image);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->kind, ImageKind::kTree);
  EXPECT_EQ(info->meta.Dump(-1), meta.Dump(-1));
  ASSERT_TRUE(store->MaterializeTree(R("eastus"), *image, dir + "/out", nullptr).ok());
  std::string want = Describe(dir + "/src");
  EXPECT_NE(want.find("security.capability"), std::string::npos);
  EXPECT_NE(want.find("usr/bin/ping6 t=8"), std::string::npos);  // a hard link
  EXPECT_EQ(Describe(dir + "/out"), want);
  // The hard link is a hard link again.
  struct stat a, b;
  ASSERT_EQ(stat((dir + "/out/usr/bin/ping").c_str(), &a), 0);
  ASSERT_EQ(stat((dir + "/out/usr/bin/ping6").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST_F(StoreTest, SameTreeStoresNothingNewAndGivesTheSameDigest) {
  MakeTree(dir + "/src");
  auto first = store->PutTree(R("eastus"), dir + "/src", Json::MakeObject(), nullptr, nullptr);
  ASSERT_TRUE(first.ok());
  // A materialized copy is the same tree: same digest, nothing new.
  ASSERT_TRUE(store->MaterializeTree(R("eastus"), *first, dir + "/copy", nullptr).ok());
  PutStats stats;
  auto second = store->PutTree(R("eastus"), dir + "/copy", Json::MakeObject(), &stats, nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(stats.new_objects, 0u);
  EXPECT_EQ(stats.new_bytes, 0u);
}

TEST_F(StoreTest, ChangingOneFileStoresOnlyItsPath) {
  MakeTree(dir + "/v1");
  MakeTree(dir + "/v2", "changed");
  PutStats s1, s2;
  ASSERT_TRUE(store->PutTree(R("eastus"), dir + "/v1", Json::MakeObject(), &s1, nullptr).ok());
  ASSERT_TRUE(store->PutTree(R("eastus"), dir + "/v2", Json::MakeObject(), &s2, nullptr).ok());
  // The file, its directory (etc), the root directory and the manifest.
  EXPECT_EQ(s2.new_objects, 4u);
  EXPECT_LT(s2.new_bytes, 2048u);
}

TEST_F(StoreTest, DiskRoundTripsExactBytesAndZerosCostNothing) {
  std::string disk = dir + "/disk.raw";
  {
    int fd = open(disk.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 64 << 20), 0);
    std::string data(300000, 'q');
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), 5 << 20), static_cast<ssize_t>(data.size()));
    std::string zeros(1 << 20, '\0');
    ASSERT_EQ(pwrite(fd, zeros.data(), zeros.size(), 20 << 20), static_cast<ssize_t>(zeros.size()));
    ASSERT_EQ(pwrite(fd, "tail", 4, (64 << 20) - 4), 4);
    close(fd);
  }
  PutStats stats;
  auto image = store->PutDisk(R("westus2"), disk, Json::MakeObject(), &stats, nullptr);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_LT(stats.new_bytes, 20000u);  // two distinct data chunks, compressible
  ASSERT_TRUE(store->MaterializeDisk(R("westus2"), *image, dir + "/out.raw", nullptr).ok());
  EXPECT_EQ(ReadAll(dir + "/out.raw"), ReadAll(disk));
  struct stat st;
  ASSERT_EQ(stat((dir + "/out.raw").c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 4 << 20);  // written sparse
}

TEST_F(StoreTest, CorruptObjectIsDataLossNamingItAndFsckFindsIt) {
  MakeTree(dir + "/src");
  auto image = store->PutTree(R("eastus"), dir + "/src", Json::MakeObject(), nullptr, nullptr);
  ASSERT_TRUE(image.ok());
  auto clean = store->Fsck(nullptr);
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << clean->problems[0];
  RegionObjects r(dir + "/store/eastus", "eastus");
  Sha256Digest target = Sha256Of("imagesmith\n");  // etc/hostname
  std::string path = r.ObjectPath(target);
  std::string framed = ReadAll(path);
  ASSERT_FALSE(framed.empty());
  framed[framed.size() - 1] ^= 0x55;
  chmod(path.c_str(), 0644);
  WriteFile(path, framed);
  Status s = store->MaterializeTree(R("eastus"), *image, dir + "/out", nullptr);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(target.ToHex()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("etc/hostname"), std::string::npos) << s.message();
  auto rep = store->Fsck(nullptr);
  ASSERT_TRUE(rep.ok());
  ASSERT_EQ(rep->problems.size(), 1u);
  EXPECT_NE(rep->problems[0].find(target.ToHex()), std::string::npos);
}

TEST_F(StoreTest, ReplicateCopiesOnlyWhatIsMissingAndIsIdempotent) {
  MakeTree(dir + "/v1");
  MakeTree(dir + "/v2", "changed");
  auto v1 = store->PutTree(R("eastus"), dir + "/v1", Json::MakeObject(), nullptr, nullptr);
  auto v2 = store->PutTree(R("eastus"), dir + "/v2", Json::MakeObject(), nullptr, nullptr);
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_FALSE(store->HasImage(R("westus2"), *v1));
  auto r1 = store->Replicate(R("eastus"), R("westus2"), *v1, nullptr);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_GT(r1->copied_objects, 5u);
  EXPECT_TRUE(store->HasImage(R("westus2"), *v1));
  auto r2 = store->Replicate(R("eastus"), R("westus2"), *v2, nullptr);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->copied_objects, 4u);
  auto again = store->Replicate(R("eastus"), R("westus2"), *v2, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->copied_objects, 0u);
  ASSERT_TRUE(store->MaterializeTree(R("westus2"), *v2, dir + "/out", nullptr).ok());
  EXPECT_EQ(Describe(dir + "/out"), Describe(dir + "/v2"));
  auto regions = store->Regions();
  ASSERT_TRUE(regions.ok());
  ASSERT_EQ(regions->size(), 2u);
  EXPECT_EQ((*regions)[0].name(), "eastus");
}

TEST_F(StoreTest, ReplicateOfMissingImageIsNotFoundNamingRegion) {
  auto r = store->Replicate(R("eastus"), R("westus2"), Sha256Of("nothing"), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("eastus"), std::string::npos);
}

// Makes every object and marker look old, as if written long before the gc.
void Age(const std::string& root) {
  std::string cmd = "find " + root + " -exec touch -h -d 2020-01-01 {} +";
  ASSERT_EQ(system(cmd.c_str()), 0);
}

TEST_F(StoreTest, GcRemovesUnrootedImagesAndKeepsRootsAndPins) {
  MakeTree(dir + "/v1");
  MakeTree(dir + "/v2", "changed");
  MakeTree(dir + "/v3", "third");
  auto v1 = store->PutTree(R("eastus"), dir + "/v1", Json::MakeObject(), nullptr, nullptr);
  auto v2 = store->PutTree(R("eastus"), dir + "/v2", Json::MakeObject(), nullptr, nullptr);
  auto v3 = store->PutTree(R("eastus"), dir + "/v3", Json::MakeObject(), nullptr, nullptr);
  ASSERT_TRUE(v1.ok() && v2.ok() && v3.ok());
  Age(dir + "/store/eastus");
  auto pin = store->NewPin();
  ASSERT_TRUE(pin.ok());
  ASSERT_TRUE(pin->Add(ImageRef{R("eastus"), *v3}).ok());
  auto rep = store->Gc({ImageRef{R("eastus"), *v1}});
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  // v2's own file, etc directory, root directory and manifest.
  EXPECT_EQ(rep->objects_removed, 4u);
  EXPECT_TRUE(store->HasImage(R("eastus"), *v1));
  EXPECT_FALSE(store->HasImage(R("eastus"), *v2));
  EXPECT_TRUE(store->HasImage(R("eastus"), *v3));
  auto fsck = store->Fsck(nullptr);
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->ok()) << fsck->problems[0];
  ASSERT_TRUE(store->MaterializeTree(R("eastus"), *v1, dir + "/out", nullptr).ok());
  // Released pin: v3 goes too.
  { Pin gone = std::move(*pin); }
  rep = store->Gc({ImageRef{R("eastus"), *v1}});
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->objects_removed, 4u);
  EXPECT_FALSE(store->HasImage(R("eastus"), *v3));
}

TEST_F(StoreTest, GcCollectsAFinishedImageNobodyRootsOrPins) {
  MakeTree(dir + "/v1");
  auto v1 = store->PutTree(R("eastus"), dir + "/v1", Json::MakeObject(), nullptr, nullptr);
  ASSERT_TRUE(v1.ok());
  auto info = store->GetImage(R("eastus"), *v1);
  ASSERT_TRUE(info.ok());
  // File-system timestamps are coarse (a clock tick): something written in
  // the tick gc starts in counts as "at or after the start" and is kept, the
  // safe side. Make the put clearly earlier than the gc.
  Age(dir + "/store");
  auto rep = store->Gc({});
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->objects_removed, info->object_count);
  EXPECT_EQ(rep->bytes_removed, info->stored_bytes);
  EXPECT_FALSE(store->HasImage(R("eastus"), *v1));
  auto fsck = store->Fsck(nullptr);
  ASSERT_TRUE(fsck.ok());
  EXPECT_TRUE(fsck->ok());
  EXPECT_EQ(fsck->objects_checked, 0u);
}

TEST_F(StoreTest, PinOfDeadProcessIsIgnored) {
  MakeTree(dir + "/v1");
  auto v1 = store->PutTree(R("eastus"), dir + "/v1", Json::MakeObject(), nullptr, nullptr);
  ASSERT_TRUE(v1.ok());
  pid_t pid = fork();
  if (pid == 0) {
    auto pin = store->NewPin();
    if (!pin.ok() || !pin->Add(ImageRef{R("eastus"), *v1}).ok()) _exit(1);
    raise(SIGKILL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  Age(dir + "/store");
  auto rep = store->Gc({});
  ASSERT_TRUE(rep.ok());
  EXPECT_FALSE(store->HasImage(R("eastus"), *v1));
  EXPECT_TRUE(Env::Default()->ListDir(dir + "/store/pins")->empty());
}

// Two processes: a child keeps publishing new versions (put + replicate,
// each reusing most of the previous one's objects) while the parent runs gc
// in a loop with no roots. Everything the child holds a pin on must survive
// complete; the child verifies each image after it is done.
TEST_F(StoreTest, GcInAnotherProcessNeverBreaksAConcurrentPublish) {
  MakeTree(dir + "/base");
  auto old = store->PutTree(R("eastus"), dir + "/base", Json::MakeObject(), nullptr, nullptr);
  ASSERT_TRUE(old.ok());
  Age(dir + "/store");  // everything the child reuses looks old to gc
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    auto child = Store::Open(*Env::Default(), dir + "/store");
    if (!child.ok()) _exit(2);
    for (int i = 0; i < 12; ++i) {
      auto pin = (*child)->NewPin();
      if (!pin.ok()) _exit(3);
      std::string tree = dir + "/t" + std::to_string(i);
      MakeTree(tree, "v" + std::to_string(i));
      auto image = (*child)->PutTree(R("eastus"), tree, Json::MakeObject(), nullptr, nullptr);
      if (!image.ok()) {
        fprintf(stderr, "put: %s\n", image.status().ToString().c_str());
        _exit(4);
      }
      if (!pin->Add(ImageRef{R("eastus"), *image}).ok()) _exit(5);
      if (!pin->Add(ImageRef{R("westus2"), *image}).ok()) _exit(5);
      auto rep = (*child)->Replicate(R("eastus"), R("westus2"), *image, nullptr);
      if (!rep.ok()) {
        fprintf(stderr, "replicate: %s\n", rep.status().ToString().c_str());
        _exit(6);
      }
      for (const char* region : {"eastus", "westus2"}) {
        std::string out = tree + "." + region;
        Status s = (*child)->MaterializeTree(R(region), *image, out, nullptr);
        if (!s.ok()) {
          fprintf(stderr, "materialize: %s\n", s.ToString().c_str());
          _exit(7);
        }
      }
    }
    if (write(pipefd[1], "x", 1) != 1) _exit(8);
    _exit(0);
  }
  close(pipefd[1]);
  int gcs = 0;
  uint64_t removed = 0;
  while (true) {
    auto rep = store->Gc({});
    if (rep.ok()) {
      ++gcs;
      removed += rep->objects_removed;
    } else {
      ASSERT_EQ(rep.status().code(), StatusCode::kUnavailable) << rep.status().ToString();
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      ASSERT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0);
      break;
    }
  }
  EXPECT_GT(gcs, 3);
  EXPECT_GT(removed, 0u);  // the old base image's unshared objects did go
}

}  // namespace
}  // namespace imagesmith::store
