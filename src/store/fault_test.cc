// Injected storage faults: every file-system call the store makes while it
// ingests, replicates and collects garbage (StoreFs) is made to fail in turn
// -- EIO and ENOSPC on each call, and a short write followed by ENOSPC on
// each write -- and after each fault:
//   - the error names the region and the object or file;
//   - nothing is published half: every image with a marker has all of its
//     objects (fsck is clean), and an image the failed call was making is
//     either absent or whole;
//   - the next gc leaves the store consistent, and running the operation
//     again completes.
#include <gtest/gtest.h>

#include <functional>
#include <regex>

#include "store/store.h"
#include "store/store_fs.h"
#include "store/test_util.h"

namespace imagesmith::store {
namespace {

using testing::WriteFile;

// Scratch directories on a tmpfs when there is one: the store calls syncfs(2)
// after every batch, and on a disk shared with other builds each one can
// take seconds; this test makes thousands of them. The calls and their
// failure paths are the same on any file system.
std::string TempDir() {
  std::string t = Env::Default()->IsDirectory("/dev/shm") ? "/dev/shm/store_fault.XXXXXX"
                                                          : "/tmp/store_fault.XXXXXX";
  if (mkdtemp(t.data()) == nullptr) abort();
  return t;
}

Region R(const char* name) { return *Region::Parse(name); }

// A small tree: nested directories, a few files (one of two 4 MiB chunks),
// a symlink. Enough objects for every call site; quick to store 1000 times.
std::string SmallTree(const std::string& salt) {
  std::string root = TempDir() + "/tree";
  mkdir(root.c_str(), 0755);
  mkdir((root + "/etc").c_str(), 0755);
  mkdir((root + "/usr").c_str(), 0755);
  mkdir((root + "/usr/lib").c_str(), 0755);
  WriteFile(root + "/etc/hostname", "host-" + salt + "\n");
  WriteFile(root + "/etc/os-release", "ID=debian\n");
  WriteFile(root + "/usr/lib/big", std::string((4 << 20) + 4096, 'x') + salt);
  WriteFile(root + "/usr/lib/small", "small " + salt);
  symlink("../etc/hostname", (root + "/usr/name").c_str());
  return root;
}

struct Scenario {
  std::string name;
  Region region;  // the region whose name an error must carry
  // Prepares a fresh store (no faults).
  std::function<void(Store&)> setup;
  // The operation under test.
  std::function<Status(Store&)> run;
  // The end state after a successful run.
  std::function<void(Store&)> check;
  // Gc roots that keep what the scenario needs.
  std::vector<ImageRef> roots;
};

class StoreFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tree_a_ = new std::string(SmallTree("a"));
    tree_b_ = new std::string(SmallTree("b"));
    // The digests, from a store without faults.
    std::string root = TempDir();
    auto s = Store::Open(*Env::Default(), root);
    image_a_ = *(*s)->PutTree(R("eastus"), *tree_a_, Json::MakeObject(), nullptr, nullptr);
    image_b_ = *(*s)->PutTree(R("eastus"), *tree_b_, Json::MakeObject(), nullptr, nullptr);
  }

  // Fails call k of every kind in turn and checks the invariants.
  void WalkFaults(const Scenario& sc) {
    // 1. Count the calls of a clean run.
    uint64_t counts[kFsOpCount] = {};
    {
      std::string root = TempDir();
      auto s = Store::Open(*Env::Default(), root, fs_);
      ASSERT_TRUE(s.ok());
      fs_.Disarm();
      sc.setup(**s);
      fs_.Disarm();
      Status st = sc.run(**s);
      ASSERT_TRUE(st.ok()) << st.message();
      for (int op = 0; op < kFsOpCount; ++op) counts[op] = fs_.Count(static_cast<FsOp>(op));
      sc.check(**s);
      (void)Env::Default()->RemoveAll(root);
    }
    int faults = 0, errors = 0;
    std::string summary;
    for (int op = 0; op < kFsOpCount; ++op) {
      summary +=
          std::string(FsOpName(static_cast<FsOp>(op))) + "=" + std::to_string(counts[op]) + " ";
      for (uint64_t k = 1; k <= counts[op]; ++k) {
        std::vector<FaultInjectionFs::Fault> variants = {{static_cast<FsOp>(op), k, EIO, false},
                                                         {static_cast<FsOp>(op), k, ENOSPC, false}};
        if (static_cast<FsOp>(op) == FsOp::kWrite) variants.push_back({FsOp::kWrite, k, 0, true});
        for (const auto& fault : variants) {
          SCOPED_TRACE(sc.name + ": " + FsOpName(fault.op) + " #" + std::to_string(k) +
                       (fault.short_write ? " short write, then ENOSPC"
                                          : " errno " + std::to_string(fault.err)));
          bool failed = false;
          OneFault(sc, fault, &failed);
          ++faults;
          errors += failed ? 1 : 0;
          if (HasFatalFailure() || ::testing::Test::HasFailure()) return;
        }
      }
    }
    std::cout << sc.name << ": calls " << summary << "-> " << faults << " faults injected, "
              << errors << " surfaced as errors, the rest absorbed (retried or harmless)\n";
    EXPECT_GT(errors, 0);
  }

  void OneFault(const Scenario& sc, const FaultInjectionFs::Fault& fault, bool* failed) {
    std::string root = TempDir();
    auto s = Store::Open(*Env::Default(), root, fs_);
    ASSERT_TRUE(s.ok());
    fs_.Disarm();
    sc.setup(**s);
    fs_.Arm(fault);
    Status st = sc.run(**s);
    fs_.Disarm();
    auto plain = Store::Open(*Env::Default(), root);
    ASSERT_TRUE(plain.ok());
    *failed = !st.ok();
    if (!st.ok()) {
      // The error says where: the region and an object or a file.
      EXPECT_NE(st.message().find(sc.region.name()), std::string::npos) << st.message();
      static const std::regex where("[0-9a-f]{64}|/[^ ]+");
      EXPECT_TRUE(std::regex_search(st.message(), where)) << st.message();
    }
    // Nothing half-published, whatever happened.
    auto fsck = (*plain)->Fsck(nullptr);
    ASSERT_TRUE(fsck.ok()) << fsck.status().message();
    EXPECT_TRUE(fsck->ok()) << "after " << st.message() << ": " << fsck->problems[0];
    // The next gc leaves the store consistent, and the operation completes.
    auto gc = (*plain)->Gc(sc.roots);
    ASSERT_TRUE(gc.ok()) << gc.status().message();
    fsck = (*plain)->Fsck(nullptr);
    ASSERT_TRUE(fsck.ok());
    EXPECT_TRUE(fsck->ok()) << fsck->problems[0];
    if (!st.ok()) {
      Status again = sc.run(**plain);
      ASSERT_TRUE(again.ok()) << again.message();
    }
    sc.check(**plain);
    (void)Env::Default()->RemoveAll(root);
  }

  static std::string* tree_a_;
  static std::string* tree_b_;
  static Sha256Digest image_a_, image_b_;
  FaultInjectionFs fs_{StoreFs::Default()};
};
std::string* StoreFaultTest::tree_a_ = nullptr;
std::string* StoreFaultTest::tree_b_ = nullptr;
Sha256Digest StoreFaultTest::image_a_;
Sha256Digest StoreFaultTest::image_b_;

TEST_F(StoreFaultTest, IngestFailsCleanlyAtEveryCall) {
  Scenario sc{
      "ingest",
      R("eastus"),
      [](Store&) {},
      [](Store& s) {
        // b shares most objects with a: the second put touches them.
        RETURN_IF_ERROR(
            s.PutTree(R("eastus"), *tree_a_, Json::MakeObject(), nullptr, nullptr).status());
        return s.PutTree(R("eastus"), *tree_b_, Json::MakeObject(), nullptr, nullptr).status();
      },
      [](Store& s) {
        EXPECT_TRUE(s.HasImage(R("eastus"), image_a_));
        EXPECT_TRUE(s.HasImage(R("eastus"), image_b_));
      },
      {ImageRef{R("eastus"), image_a_}, ImageRef{R("eastus"), image_b_}}};
  WalkFaults(sc);
}

TEST_F(StoreFaultTest, ReplicationFailsCleanlyAtEveryCall) {
  Scenario sc{
      "replication",
      R("westus2"),
      [](Store& s) {
        ASSERT_TRUE(s.PutTree(R("eastus"), *tree_a_, Json::MakeObject(), nullptr, nullptr).ok());
        ASSERT_TRUE(s.PutTree(R("eastus"), *tree_b_, Json::MakeObject(), nullptr, nullptr).ok());
      },
      [](Store& s) {
        RETURN_IF_ERROR(s.Replicate(R("eastus"), R("westus2"), image_a_, nullptr).status());
        return s.Replicate(R("eastus"), R("westus2"), image_b_, nullptr).status();
      },
      [](Store& s) {
        EXPECT_TRUE(s.HasImage(R("westus2"), image_a_));
        EXPECT_TRUE(s.HasImage(R("westus2"), image_b_));
      },
      {ImageRef{R("eastus"), image_a_}, ImageRef{R("eastus"), image_b_},
       ImageRef{R("westus2"), image_a_}, ImageRef{R("westus2"), image_b_}}};
  WalkFaults(sc);
}

TEST_F(StoreFaultTest, GcFailsCleanlyAtEveryCall) {
  Scenario sc{
      "gc",
      R("eastus"),
      [](Store& s) {
        ASSERT_TRUE(s.PutTree(R("eastus"), *tree_a_, Json::MakeObject(), nullptr, nullptr).ok());
        ASSERT_TRUE(s.PutTree(R("eastus"), *tree_b_, Json::MakeObject(), nullptr, nullptr).ok());
        // Old enough for gc to take what only b needs.
        Env::Default()->SleepFor(std::chrono::milliseconds(20));
      },
      [](Store& s) {
        return s.Gc({ImageRef{R("eastus"), image_a_}}).status();
      },
      [](Store& s) {
        EXPECT_TRUE(s.HasImage(R("eastus"), image_a_));
        EXPECT_FALSE(s.HasImage(R("eastus"), image_b_));
      },
      {ImageRef{R("eastus"), image_a_}}};
  WalkFaults(sc);
}

}  // namespace
}  // namespace imagesmith::store
