#include "api/operations.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "base/process.h"
#include "base/strings.h"
#include "meta/meta_store.h"

namespace imagesmith::api {
namespace {

constexpr char kType[] = "Test.Namespace/things/work";

// Counts how often each operation ran; optionally waits for cancel.
struct Counts {
  std::mutex mu;
  std::map<std::string, int> runs;  // guarded by mu
  std::atomic<int> concurrent{0};
  std::atomic<int> max_concurrent_same{0};
};

class CountingHandler : public OperationHandler {
 public:
  CountingHandler(Counts& counts, int64_t work_ms, bool until_cancel, bool resumable)
      : counts_(counts), work_ms_(work_ms), until_cancel_(until_cancel), resumable_(resumable) {}
  std::string_view Type() const override { return kType; }
  OperationOutcome Run(OperationContext& ctx) override {
    {
      std::lock_guard<std::mutex> lock(counts_.mu);
      ++counts_.runs[ctx.operation().id];
    }
    ctx.SetPercent(50);
    int64_t waited = 0;
    while (until_cancel_ ? !ctx.cancel().load() : waited < work_ms_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      waited += 5;
      if (waited > 20000) break;
    }
    OperationOutcome out;
    if (ctx.cancel().load()) {
      out.status = OperationStatus::kCanceled;
      out.error = ArmError{200, "OperationCanceled", "canceled", "", {}};
    }
    out.result.Set("ranBy", Json::String(ctx.operation().owner));
    return out;
  }
  bool Resumable(const Operation&) const override { return resumable_; }
  Status OnAbandoned(Services&, const Operation& op, const std::string& why) override {
    std::lock_guard<std::mutex> lock(counts_.mu);
    abandoned_[op.id] = why;
    return Status::Ok();
  }
  std::map<std::string, std::string> abandoned_;  // guarded by counts_.mu

 private:
  Counts& counts_;
  int64_t work_ms_;
  bool until_cancel_;
  bool resumable_;
};

// One "process": its own database connection, Services and Operations.
struct Node {
  std::unique_ptr<meta::MetaStore> meta;
  Services services;
  std::unique_ptr<Operations> ops;
  CountingHandler* handler = nullptr;
};

class OperationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ops_test.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    timing_.lease_us = 600'000;
    timing_.renew_us = 150'000;
    timing_.poll_us = 20'000;
  }
  void TearDown() override { (void)Env::Default()->RemoveAll(dir_); }

  std::unique_ptr<Node> MakeNode(const std::string& worker, int64_t work_ms = 0,
                                 bool until_cancel = false, bool resumable = false) {
    auto n = std::make_unique<Node>();
    auto meta = meta::OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
    EXPECT_TRUE(meta.ok()) << meta.status().message();
    n->meta = std::move(*meta);
    n->services.env = Env::Default();
    n->services.meta = n->meta.get();
    n->services.data_dir = dir_;
    n->services.subscription = "00000000-0000-0000-0000-000000000001";
    n->ops = std::make_unique<Operations>(n->services, timing_, worker);
    n->services.operations = n->ops.get();
    auto h = std::make_unique<CountingHandler>(counts_, work_ms, until_cancel, resumable);
    n->handler = h.get();
    n->ops->AddHandler(std::move(h));
    return n;
  }

  // A new operation on Target(1) already held by `node` (as a foreground
  // run starts), or an empty one on failure.
  Operation StartHeld(Node& node) {
    Operation op;
    Status s = node.meta->Update([&](meta::Transaction& txn) {
      ASSIGN_OR_RETURN(op, node.ops->StartIn(txn, kType, Target(1), "", Json::MakeObject(), true));
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.message();
    return op;
  }

  ResourceId Target(int i) {
    return ResourceId::ForResource("00000000-0000-0000-0000-000000000001", "g", "Test.Namespace",
                                   "things", "t" + std::to_string(i));
  }

  std::string dir_;
  OperationTiming timing_;
  Counts counts_;
};

TEST_F(OperationsTest, QueuedOperationIsClaimedRunAndRecordedSucceeded) {
  auto a = MakeNode("worker-a");
  auto op = a->ops->Enqueue(kType, Target(1), "eastus", Json::MakeObject());
  ASSERT_TRUE(op.ok()) << op.status().message();
  EXPECT_EQ(op->status, OperationStatus::kInProgress);
  EXPECT_TRUE(op->owner.empty());
  auto ran = a->ops->RunOne();
  ASSERT_TRUE(ran.ok()) << ran.status().message();
  EXPECT_TRUE(*ran);
  auto got = a->ops->Get(op->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, OperationStatus::kSucceeded);
  EXPECT_EQ(got->percent_complete, 100);
  EXPECT_GT(got->end_us, 0);
  EXPECT_TRUE(got->owner.empty());
  EXPECT_EQ(got->result.Find("ranBy")->string_value(), "worker-a");
  Json j = got->ToJson();
  EXPECT_EQ(j.Find("status")->string_value(), "Succeeded");
  EXPECT_EQ(j.Find("name")->string_value(), op->id);
  EXPECT_EQ(j.Find("id")->string_value(),
            "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Test.Namespace/"
            "locations/eastus/operations/" +
                op->id);
  EXPECT_EQ(j.Find("error"), nullptr);
  // Nothing left to claim.
  auto again = a->ops->RunOne();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(OperationsTest, HeldOperationIsNotClaimedWhileItsLeaseIsRenewed) {
  auto a = MakeNode("worker-a", /*work_ms=*/1500);
  auto b = MakeNode("worker-b");
  Operation op;
  ASSERT_TRUE(a->meta
                  ->Update([&](meta::Transaction& txn) {
                    ASSIGN_OR_RETURN(
                        op, a->ops->StartIn(txn, kType, Target(1), "", Json::MakeObject(), true));
                    return Status::Ok();
                  })
                  .ok());
  std::atomic<bool> stop{false};
  int claims_by_b = 0;
  std::thread other([&] {
    while (!stop.load()) {
      auto ran = b->ops->RunOne();
      if (ran.ok() && *ran) ++claims_by_b;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  // 1.5 s of work with a 0.6 s lease: only renewal keeps it.
  auto done = a->ops->Execute(op.id);
  stop.store(true);
  other.join();
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_EQ(done->status, OperationStatus::kSucceeded);
  EXPECT_EQ(claims_by_b, 0);
  EXPECT_EQ(counts_.runs[op.id], 1);
}

TEST_F(OperationsTest, ExpiredLeaseIsTakenOverAndFailedNamingTheDeadWorker) {
  auto dead = MakeNode("otherhost:4242:1");
  auto b = MakeNode("worker-b");
  Operation op = StartHeld(*dead);
  ASSERT_FALSE(op.id.empty());
  // Within the lease nobody takes it.
  auto early = b->ops->RunOne();
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(*early);
  std::this_thread::sleep_for(std::chrono::microseconds(timing_.lease_us + 100'000));
  auto ran = b->ops->RunOne();
  ASSERT_TRUE(ran.ok()) << ran.status().message();
  EXPECT_TRUE(*ran);
  auto got = b->ops->Get(op.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, OperationStatus::kFailed);
  ASSERT_TRUE(got->error.has_value());
  EXPECT_EQ(got->error->code, "WorkerLost");
  EXPECT_NE(got->error->message.find("otherhost:4242:1"), std::string::npos) << got->error->message;
  EXPECT_NE(got->error->message.find("lease ended at"), std::string::npos) << got->error->message;
  EXPECT_EQ(counts_.runs.count(op.id), 0u) << "a non-resumable operation must not run again";
  EXPECT_EQ(b->handler->abandoned_.count(op.id), 1u) << "OnAbandoned was not called";
  ASSERT_EQ(got->abandoned_by.array_items().size(), 1u);
  EXPECT_EQ(got->abandoned_by.array_items()[0].Find("worker")->string_value(), "otherhost:4242:1");
}

TEST_F(OperationsTest, ResumableOperationOfADeadWorkerRunsAgainElsewhere) {
  auto dead = MakeNode("otherhost:4242:1", 0, false, /*resumable=*/true);
  auto b = MakeNode("worker-b", 0, false, /*resumable=*/true);
  Operation op = StartHeld(*dead);
  ASSERT_FALSE(op.id.empty());
  // Get does not fail a resumable operation; a worker resumes it.
  std::this_thread::sleep_for(std::chrono::microseconds(timing_.lease_us + 100'000));
  auto mid = b->ops->Get(op.id);
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->status, OperationStatus::kInProgress);
  auto ran = b->ops->RunOne();
  ASSERT_TRUE(ran.ok()) << ran.status().message();
  auto got = b->ops->Get(op.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, OperationStatus::kSucceeded);
  EXPECT_EQ(got->result.Find("ranBy")->string_value(), "worker-b");
  EXPECT_EQ(got->abandoned_by.array_items().size(), 1u);
}

TEST_F(OperationsTest, DeadLocalOwnerIsNoticedWithoutWaitingForTheLease) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  ::waitpid(child, &status, 0);
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::string owner = std::string(host) + ":" + std::to_string(child) + ":12345";
  EXPECT_TRUE(Operations::OwnerDead(owner));
  EXPECT_FALSE(Operations::OwnerDead(std::string(host) + ":" + std::to_string(::getpid()) + ":" +
                                     std::to_string(ProcessStartTicks(::getpid()))));
  timing_.lease_us = 60'000'000;
  auto dead = MakeNode(owner);
  auto b = MakeNode("worker-b");
  Operation op = StartHeld(*dead);
  ASSERT_FALSE(op.id.empty());
  EXPECT_TRUE(Operations::Abandoned(op, Env::Default()->NowMicros()));
  auto got = b->ops->Get(op.id);  // Get reaps it
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, OperationStatus::kFailed);
  EXPECT_NE(got->error->message.find("killed or crashed"), std::string::npos);
  EXPECT_NE(got->error->message.find("its process is gone"), std::string::npos)
      << got->error->message;
}

TEST_F(OperationsTest, TwoWorkersOnOneDatabaseNeverRunAnOperationTwice) {
  constexpr int kOps = 200;
  auto a = MakeNode("worker-a", /*work_ms=*/1);
  auto b = MakeNode("worker-b", /*work_ms=*/1);
  std::vector<std::string> ids;
  for (int i = 0; i < kOps; ++i) {
    auto op = (i % 2 == 0 ? a : b)->ops->Enqueue(kType, Target(i), "", Json::MakeObject());
    ASSERT_TRUE(op.ok()) << op.status().message();
    ids.push_back(op->id);
  }
  std::atomic<bool> stop{false};
  Status sa, sb;
  std::thread ta([&] { sa = a->ops->Work(stop, true, 10'000); });
  std::thread tb([&] { sb = b->ops->Work(stop, true, 10'000); });
  ta.join();
  tb.join();
  ASSERT_TRUE(sa.ok()) << sa.message();
  ASSERT_TRUE(sb.ok()) << sb.message();
  int by_a = 0, by_b = 0;
  for (const std::string& id : ids) {
    EXPECT_EQ(counts_.runs[id], 1) << id;
    auto got = a->ops->Get(id);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->status, OperationStatus::kSucceeded) << id;
    (got->result.Find("ranBy")->string_value() == "worker-a" ? by_a : by_b)++;
  }
  EXPECT_EQ(by_a + by_b, kOps);
  // Both shared the work (each claims one at a time).
  EXPECT_GT(by_a, 0);
  EXPECT_GT(by_b, 0);
}

// Appends each operation it runs to a file (O_APPEND: one write per line),
// so processes can count together.
class AppendingHandler : public OperationHandler {
 public:
  explicit AppendingHandler(std::string path) : path_(std::move(path)) {}
  std::string_view Type() const override { return kType; }
  OperationOutcome Run(OperationContext& ctx) override {
    std::string line = ctx.operation().id + " " + ctx.operation().owner + "\n";
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      (void)!::write(fd, line.data(), line.size());
      ::close(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return OperationOutcome{};
  }

 private:
  std::string path_;
};

TEST_F(OperationsTest, TwoWorkerProcessesOnOneDatabaseNeverRunAnOperationTwice) {
  constexpr int kOps = 150;
  auto a = MakeNode("parent");
  std::vector<std::string> ids;
  for (int i = 0; i < kOps; ++i) {
    auto op = a->ops->Enqueue(kType, Target(i), "", Json::MakeObject());
    ASSERT_TRUE(op.ok()) << op.status().message();
    ids.push_back(op->id);
  }
  const std::string ran = dir_ + "/ran.txt";
  std::vector<pid_t> children;
  for (int c = 0; c < 2; ++c) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto meta = meta::OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
      if (!meta.ok()) ::_exit(2);
      Services services;
      services.env = Env::Default();
      services.meta = meta->get();
      services.data_dir = dir_;
      services.subscription = "00000000-0000-0000-0000-000000000001";
      Operations ops(services, timing_, "child-" + std::to_string(c));
      services.operations = &ops;
      ops.AddHandler(std::make_unique<AppendingHandler>(ran));
      std::atomic<bool> stop{false};
      Status s = ops.Work(stop, true, 10'000);
      ::_exit(s.ok() ? 0 : 3);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto text = Env::Default()->ReadFile(ran, 1 << 20);
  ASSERT_TRUE(text.ok());
  std::map<std::string, int> runs;
  std::map<std::string, int> by_worker;
  for (const std::string& line : Split(*text, '\n')) {
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    ++runs[line.substr(0, sp)];
    ++by_worker[line.substr(sp + 1)];
  }
  for (const std::string& id : ids) {
    EXPECT_EQ(runs[id], 1) << id;
    auto got = a->ops->Get(id);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->status, OperationStatus::kSucceeded);
  }
  EXPECT_EQ(runs.size(), ids.size());
  EXPECT_EQ(by_worker.size(), 2u) << "both processes should have claimed work";
}

TEST_F(OperationsTest, CancelRequestedFromAnotherConnectionStopsTheWork) {
  auto a = MakeNode("worker-a", 0, /*until_cancel=*/true);
  auto b = MakeNode("worker-b");
  auto op = a->ops->Enqueue(kType, Target(1), "", Json::MakeObject());
  ASSERT_TRUE(op.ok());
  std::thread worker([&] { (void)a->ops->RunOne(); });
  while (true) {
    std::lock_guard<std::mutex> lock(counts_.mu);
    if (counts_.runs[op->id] == 1) break;
  }
  int64_t asked = Env::Default()->MonotonicMicros();
  ASSERT_TRUE(b->ops->RequestCancel(op->id).ok());
  auto done = b->ops->Wait(op->id, 10'000'000);
  worker.join();
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_EQ(done->status, OperationStatus::kCanceled);
  EXPECT_LT(Env::Default()->MonotonicMicros() - asked, 2'000'000);
  // Once ended, cancel is refused.
  Status again = b->ops->RequestCancel(op->id);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
}

TEST_F(OperationsTest, WaitTimesOutNamingTheOperationAndUnknownIdsAreNotFound) {
  auto a = MakeNode("worker-a");
  auto op = a->ops->Enqueue(kType, Target(1), "", Json::MakeObject());
  ASSERT_TRUE(op.ok());
  auto waited = a->ops->Wait(op->id, 300'000);
  EXPECT_EQ(waited.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(waited.status().message().find(op->id), std::string::npos);
  auto missing = a->ops->Get("00000000-0000-0000-0000-00000000dead");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("00000000-0000-0000-0000-00000000dead"),
            std::string::npos);
}

// SIGTERM: a stopped worker hands a resumable operation back at once (no
// waiting for the lease) and another worker finishes it.
TEST_F(OperationsTest, StoppedWorkerHandsBackAResumableOperationAndAnotherFinishesIt) {
  auto a = MakeNode("worker-a", 0, /*until_cancel=*/true, /*resumable=*/true);
  auto op = a->ops->Enqueue(kType, Target(1), "", Json::MakeObject());
  ASSERT_TRUE(op.ok());
  std::thread runner([&] { EXPECT_TRUE(*a->ops->RunOne()); });
  // Wait until it runs, then stop the worker.
  for (int i = 0; i < 400; ++i) {
    if (a->ops->Get(op->id)->owner == "worker-a") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  a->ops->Stop();
  runner.join();
  auto back = a->ops->Get(op->id);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->status, OperationStatus::kInProgress);
  EXPECT_TRUE(back->owner.empty()) << "queued again, not held until the lease ends";
  ASSERT_EQ(back->handed_back_by.array_items().size(), 1u);
  EXPECT_EQ(back->handed_back_by.array_items()[0].Find("worker")->string_value(), "worker-a");
  EXPECT_FALSE(*a->ops->RunOne()) << "a stopped worker claims nothing";

  auto b = MakeNode("worker-b", 10, /*until_cancel=*/false, /*resumable=*/true);
  EXPECT_TRUE(*b->ops->RunOne());
  auto done = b->ops->Get(op->id);
  EXPECT_EQ(done->status, OperationStatus::kSucceeded);
  EXPECT_EQ(done->finished_by, "worker-b");
  EXPECT_EQ(done->abandoned_by.array_items().size(), 0u);
}

// A stopped worker fails an operation that cannot be resumed with
// WorkerStopped naming itself, instead of leaving it InProgress.
TEST_F(OperationsTest, StoppedWorkerFailsAnOperationThatCannotResumeSayingWhy) {
  auto a = MakeNode("worker-a", 0, /*until_cancel=*/true, /*resumable=*/false);
  Operation op = StartHeld(*a);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    a->ops->Stop();
  });
  auto ended = a->ops->Execute(op.id);
  stopper.join();
  ASSERT_TRUE(ended.ok()) << ended.status().message();
  EXPECT_EQ(ended->status, OperationStatus::kFailed);
  ASSERT_TRUE(ended->error.has_value());
  EXPECT_EQ(ended->error->code, "WorkerStopped");
  EXPECT_NE(ended->error->message.find("worker-a"), std::string::npos) << ended->error->message;
  EXPECT_NE(ended->error->message.find("SIGTERM"), std::string::npos) << ended->error->message;
  EXPECT_TRUE(ended->owner.empty());
}

// A cancel a user asked for still ends Canceled while the worker stops.
TEST_F(OperationsTest, UserCancelDuringStopStillEndsCanceled) {
  auto a = MakeNode("worker-a", 0, /*until_cancel=*/true, /*resumable=*/true);
  Operation op = StartHeld(*a);
  ASSERT_TRUE(a->ops->RequestCancel(op.id).ok());
  a->ops->Stop();
  auto ended = a->ops->Execute(op.id);
  ASSERT_TRUE(ended.ok()) << ended.status().message();
  EXPECT_EQ(ended->status, OperationStatus::kCanceled);
}

// ReleaseHeld: what a worker holds when it cannot wait any longer.
TEST_F(OperationsTest, ReleaseHeldHandsBackOrFailsEverythingThisWorkerHolds) {
  auto a = MakeNode("worker-a", 0, false, /*resumable=*/true);
  Operation op = StartHeld(*a);
  a->ops->Stop();
  auto n = a->ops->ReleaseHeld();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  auto back = a->ops->Get(op.id);
  EXPECT_TRUE(back->owner.empty());
  EXPECT_EQ(back->status, OperationStatus::kInProgress);
}

}  // namespace
}  // namespace imagesmith::api
