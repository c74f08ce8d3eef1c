// Kills a real process (store_crash_child) at every crash point of publish
// (PutTree, PutDisk), replication and gc, then checks that the store is
// consistent (fsck finds nothing, no image is visible half-made, nothing
// live was lost) and that running the same operation again completes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "store/store.h"
#include "store/test_util.h"

namespace imagesmith::store {
namespace {

using testing::MakeTree;
using testing::TempDir;

Region R(const char* name) { return *Region::Parse(name); }

struct ChildResult {
  int signal = 0;
  int exit_code = -1;
  std::string out;
};

ChildResult RunChild(const std::vector<std::string>& args, const std::string& crash_at) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 1);
    if (crash_at.empty()) {
      unsetenv("IMAGESMITH_CRASH_AT");
    } else {
      setenv("IMAGESMITH_CRASH_AT", crash_at.c_str(), 1);
    }
    std::vector<char*> argv;
    std::string bin = STORE_CRASH_CHILD;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  ChildResult r;
  char buf[256];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) r.out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void ExpectFsckClean(Store& store, const std::string& when) {
  auto rep = store.Fsck(nullptr);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->ok()) << when << ": " << rep->problems[0];
}

void Age(const std::string& root) {
  std::string cmd = "find " + root + " -exec touch -h -d 2020-01-01 {} +";
  ASSERT_EQ(system(cmd.c_str()), 0);
}

struct CrashCase {
  std::string op;     // put-tree, put-disk, replicate, gc
  std::string point;  // IMAGESMITH_CRASH_AT
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.op << " killed at " << c.point; }

std::vector<CrashCase> Cases() {
  std::vector<CrashCase> v;
  for (const char* p :
       {"store.pin.created", "store.put.walked", "store.object.temp_written",
        "store.object.temp_written#3", "store.put.half_files", "store.batch.synced",
        "store.batch.mid_rename", "store.put.dirs_written", "store.put.before_manifest",
        "store.object.before_rename", "store.object.renamed", "store.put.before_marker",
        "store.marker.before_rename"}) {
    v.push_back({"put-tree", p});
  }
  for (const char* p : {"store.disk.mid", "store.batch.mid_rename", "store.put.before_marker"}) {
    v.push_back({"put-disk", p});
  }
  for (const char* p : {"store.replicate.started", "store.replicate.object_copied",
                        "store.replicate.object_copied#3", "store.object.temp_written#3",
                        "store.replicate.committed", "store.replicate.before_manifest",
                        "store.object.before_rename", "store.replicate.before_marker",
                        "store.marker.before_rename"}) {
    v.push_back({"replicate", p});
  }
  for (const char* p :
       {"store.gc.marked", "store.gc.trashed", "store.gc.trashed#3", "store.gc.mid_sweep"}) {
    v.push_back({"gc", p});
  }
  return v;
}

class CrashTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CrashTest, KilledAtPointLeavesAConsistentStoreAndARerunCompletes) {
  const CrashCase& c = GetParam();
  std::string dir = TempDir();
  std::string root = dir + "/store";
  auto store = Store::Open(*Env::Default(), root);
  ASSERT_TRUE(store.ok());
  MakeTree(dir + "/v1");
  MakeTree(dir + "/v2", "second version");
  // A disk with data, a hole and zeros.
  std::string disk = dir + "/disk.raw";
  {
    std::string data;
    for (uint32_t i = 0; i < (3u << 20); ++i) data.push_back(static_cast<char>((i * 7919u) >> 9));
    testing::WriteFile(disk, data);
    ASSERT_EQ(truncate(disk.c_str(), 40 << 20), 0);
  }
  std::vector<std::string> args;
  Sha256Digest expect;
  ImageRef keep{R("eastus"), Sha256Digest()};
  if (c.op == "put-tree") {
    // v1 is there already, so the put both reuses and writes objects.
    ASSERT_TRUE(
        (*store)->PutTree(R("eastus"), dir + "/v1", Json::MakeObject(), nullptr, nullptr).ok());
    args = {root, "put-tree", "eastus", dir + "/v2"};
  } else if (c.op == "put-disk") {
    args = {root, "put-disk", "eastus", disk};
  } else if (c.op == "replicate") {
    auto v1 = (*store)->PutTree(R("eastus"), dir + "/v1", Json::MakeObject(), nullptr, nullptr);
    ASSERT_TRUE(v1.ok());
    ASSERT_TRUE((*store)->Replicate(R("eastus"), R("westus2"), *v1, nullptr).ok());
    auto v2 = (*store)->PutTree(R("eastus"), dir + "/v2", Json::MakeObject(), nullptr, nullptr);
    ASSERT_TRUE(v2.ok());
    expect = *v2;
    args = {root, "replicate", "eastus", "westus2", v2->ToHex()};
  } else {
    auto v1 = (*store)->PutTree(R("eastus"), dir + "/v1", Json::MakeObject(), nullptr, nullptr);
    auto v2 = (*store)->PutTree(R("eastus"), dir + "/v2", Json::MakeObject(), nullptr, nullptr);
    ASSERT_TRUE(v1.ok() && v2.ok());
    keep = ImageRef{R("eastus"), *v1};
    expect = *v2;
    Age(root);
    args = {root, "gc", "eastus:" + v1->ToHex()};
  }

  ChildResult crashed = RunChild(args, c.point);
  ASSERT_EQ(crashed.signal, SIGKILL)
      << c.op << " never reached " << c.point << " (exit " << crashed.exit_code << ")";
  ExpectFsckClean(**store, "after the crash");

  ChildResult rerun = RunChild(args, "");
  ASSERT_EQ(rerun.exit_code, 0) << "rerun of " << c.op << " after a crash at " << c.point;
  ExpectFsckClean(**store, "after the rerun");

  if (c.op == "put-tree" || c.op == "replicate") {
    const char* region = c.op == "put-tree" ? "eastus" : "westus2";
    Sha256Digest image = c.op == "put-tree" ? *Sha256Digest::FromHex(rerun.out) : expect;
    ASSERT_TRUE((*store)->HasImage(R(region), image));
    ASSERT_TRUE((*store)->MaterializeTree(R(region), image, dir + "/out", nullptr).ok());
    EXPECT_EQ(ReadAll(dir + "/out/etc/hostname"), "imagesmith\nsecond version");
    EXPECT_EQ(ReadAll(dir + "/out/usr/bin/big"), ReadAll(dir + "/v2/usr/bin/big"));
    keep = ImageRef{R(region), image};
  } else if (c.op == "put-disk") {
    Sha256Digest image = *Sha256Digest::FromHex(rerun.out);
    ASSERT_TRUE((*store)->MaterializeDisk(R("eastus"), image, dir + "/out.raw", nullptr).ok());
    EXPECT_EQ(ReadAll(dir + "/out.raw"), ReadAll(disk));
    keep = ImageRef{R("eastus"), image};
  } else {
    EXPECT_TRUE((*store)->HasImage(R("eastus"), keep.image));
    EXPECT_FALSE((*store)->HasImage(R("eastus"), expect));
    ASSERT_TRUE((*store)->MaterializeTree(R("eastus"), keep.image, dir + "/out", nullptr).ok());
    EXPECT_EQ(ReadAll(dir + "/out/etc/hostname"), "imagesmith\n");
  }
  // A gc afterwards keeps what the rerun made and clears the dead child's
  // leftovers (temp files, pins, trash).
  auto gc = (*store)->Gc({keep});
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_TRUE((*store)->HasImage(keep.region, keep.image));
  ExpectFsckClean(**store, "after gc");
  for (const char* region : {"eastus", "westus2"}) {
    std::string tmp = root + "/" + region + "/tmp";
    if (Env::Default()->IsDirectory(tmp)) {
      EXPECT_TRUE(Env::Default()->ListDir(tmp)->empty()) << tmp;
    }
  }
  EXPECT_TRUE(Env::Default()->ListDir(root + "/pins")->empty());
  (void)Env::Default()->RemoveAll(dir);
}

INSTANTIATE_TEST_SUITE_P(Points, CrashTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<CrashCase>& param) {
                           std::string n = param.param.op + "_" + param.param.point;
                           for (char& ch : n) {
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace imagesmith::store
