// The rollout engine on the sim driver, with the clock moved by hand.
#include "fleet/rollout.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "base/manual_clock_env.h"
#include "fleet/node_set.h"

namespace imagesmith::fleet {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

std::string Name(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "n%04d", i);
  return buf;
}

class RolloutTest : public ::testing::Test {
 protected:
  // `n` nodes on "v1", all past their boot.
  void MakeFleet(int n, const SimSettings& extra = {}, std::vector<int> on_bad_image = {}) {
    SimSettings s = extra;
    s.boot_min = seconds(20);
    s.boot_max = seconds(60);
    s.task_duration = std::chrono::milliseconds(0);
    s.seed = 7;
    s.image_boot_failure_rate["v1-broken"] = 1.0;
    for (const auto& [image, rate] : failure_) s.image_boot_failure_rate[image] = rate;
    driver_ = MakeSimDriver(env_, s);
    NodeSetOptions o;
    o.resolve_image = [](const std::string& id) -> StatusOr<NodeImage> {
      NodeImage image;
      image.image_id = id;
      return image;
    };
    o.image_exists = [this](const std::string& id) { return images_.count(id) != 0; };
    o.new_node = [this](const NodeImage& image) -> StatusOr<NodeSpec> {
      return Spec("surge" + std::to_string(++surge_), image.image_id);
    };
    o.deferred = [this](const std::string& id) { return deferred_.count(id) != 0; };
    o.upgrade_domain = [](const std::string& id) { return std::atoi(id.c_str() + 1) % 5; };
    o.heartbeat_limit_us = 60'000'000;
    set_ = std::make_unique<NodeSet>(env_, *driver_, o);
    for (int i = 0; i < n; ++i) {
      bool bad = std::find(on_bad_image.begin(), on_bad_image.end(), i) != on_bad_image.end();
      std::string image = bad ? "v1-broken" : "v1";
      ASSERT_TRUE(driver_->Create(Spec(Name(i), image)).ok());
      set_->Add(Name(i), image);
    }
    env_.Advance(minutes(2));
  }
  NodeSpec Spec(const std::string& id, const std::string& image) {
    NodeSpec spec;
    spec.node_id = id;
    spec.hostname = id;
    spec.image.image_id = image;
    spec.size = *LookupVmSize("Standard_D2s_v3");
    return spec;
  }
  RolloutState Begin(const UpgradePolicy& policy = {}) {
    StatusOr<RolloutState> s = Rollout::Begin(*set_, "r1", "v2", policy, env_.NowMicros());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s.value() : RolloutState{};
  }
  // Steps once a second until the rollout is done (or `max_steps`).
  void RunToEnd(RolloutState& s, int max_steps = 20000) {
    for (int i = 0; i < max_steps && !s.done(); ++i) {
      Status st = Rollout::Step(*set_, s, env_.NowMicros());
      ASSERT_TRUE(st.ok()) << st.ToString();
      env_.Advance(seconds(1));
    }
    ASSERT_TRUE(s.done()) << s.ToJson().Dump();
  }
  std::vector<size_t> BatchSizes(const RolloutState& s) {
    std::vector<size_t> out;
    for (const RolloutBatch& b : s.batches) out.push_back(b.instances.size());
    return out;
  }
  int Count(const std::string& image, Health health) {
    auto all = set_->Instances();
    int n = 0;
    for (const InstanceView& v : *all) n += v.image == image && v.health == health;
    return n;
  }

  ManualClockEnv env_;
  std::map<std::string, double> failure_;
  std::set<std::string> images_ = {"v1", "v2", "v1-broken"};
  std::set<std::string> deferred_;
  int surge_ = 0;
  std::unique_ptr<NodeDriver> driver_;
  std::unique_ptr<NodeSet> set_;
};

TEST(IsoDurationTest, ParsesAndFormatsAzuresDurations) {
  EXPECT_EQ(*ParseIsoDurationUs("PT0S", "p"), 0);
  EXPECT_EQ(*ParseIsoDurationUs("PT5M", "p"), 300'000'000);
  EXPECT_EQ(*ParseIsoDurationUs("PT1H30M", "p"), 5'400'000'000);
  EXPECT_EQ(*ParseIsoDurationUs("P1DT2H", "p"), 93'600'000'000);
  EXPECT_EQ(*ParseIsoDurationUs("PT0.5S", "p"), 500'000);
  for (const char* bad : {"", "5M", "PT", "P5M5", "PTM", "PT5X", "P5H", "PT-1S", "PT1M1M1X"}) {
    StatusOr<int64_t> r = ParseIsoDurationUs(bad, "properties.x");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("properties.x"), std::string::npos);
  }
  EXPECT_EQ(FormatIsoDuration(0), "PT0S");
  EXPECT_EQ(FormatIsoDuration(90'000'000), "PT1M30S");
  EXPECT_EQ(FormatIsoDuration(3'600'000'000), "PT1H");
  EXPECT_EQ(FormatIsoDuration(86'400'000'000), "P1D");
  EXPECT_EQ(FormatIsoDuration(500'000), "PT0.5S");
}

TEST(UpgradePolicyTest, DefaultsAndRefusesPercentagesOutsideFiveToHundred) {
  StatusOr<UpgradePolicy> d = UpgradePolicy::FromJson(nullptr, nullptr, "properties");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max_batch_instance_percent, 20);
  EXPECT_EQ(d->max_unhealthy_instance_percent, 20);
  EXPECT_EQ(d->max_unhealthy_upgraded_instance_percent, 20);
  EXPECT_EQ(d->health_deadline_us, 300'000'000);
  EXPECT_FALSE(d->disable_automatic_rollback);

  Json rolling = *ParseJson(
      R"({"maxBatchInstancePercent": 50, "pauseTimeBetweenBatches": "PT10M", "maxSurge": true})");
  Json automatic =
      *ParseJson(R"({"enableAutomaticOSUpgrade": true, "disableAutomaticRollback": true})");
  StatusOr<UpgradePolicy> p =
      UpgradePolicy::FromJson(&rolling, &automatic, "properties.upgradePolicy");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->max_batch_instance_percent, 50);
  EXPECT_EQ(p->pause_time_between_batches_us, 600'000'000);
  EXPECT_TRUE(p->max_surge);
  EXPECT_TRUE(p->disable_automatic_rollback);

  for (const char* text :
       {R"({"maxBatchInstancePercent": 4})", R"({"maxUnhealthyInstancePercent": 101})",
        R"({"maxUnhealthyUpgradedInstancePercent": "20"})"}) {
    Json bad = *ParseJson(text);
    StatusOr<UpgradePolicy> r = UpgradePolicy::FromJson(&bad, nullptr, "properties.upgradePolicy");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find("properties.upgradePolicy.rollingUpgradePolicy.max"),
              std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("from 5 to 100"), std::string::npos);
  }
  Json unknown = *ParseJson(R"({"maxBatchPercent": 20})");
  StatusOr<UpgradePolicy> r = UpgradePolicy::FromJson(&unknown, nullptr, "p");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p.rollingUpgradePolicy.maxBatchPercent: unknown field"),
            std::string::npos)
      << r.status().message();
}

TEST_F(RolloutTest, ThousandInstancesWithoutFailuresMoveInFiveBatchesOfTwoHundred) {
  MakeFleet(1000);
  RolloutState s = Begin();
  RunToEnd(s);
  EXPECT_EQ(s.status, RunningStatus::kCompleted);
  EXPECT_EQ(BatchSizes(s), (std::vector<size_t>{200, 200, 200, 200, 200}));
  EXPECT_EQ(s.succeeded.size(), 1000u);
  EXPECT_TRUE(s.failed.empty());
  EXPECT_EQ(Count("v2", Health::kHealthy), 1000);
  Json j = s.ToJson();
  EXPECT_EQ(j.Find("runningStatus")->Find("code")->string_value(), "Completed");
  EXPECT_EQ(*j.Find("progress")->Find("successfulInstanceCount")->AsInt64(), 1000);
  EXPECT_EQ(*j.Find("progress")->Find("pendingInstanceCount")->AsInt64(), 0);
  EXPECT_EQ(j.Find("error"), nullptr);
}

TEST_F(RolloutTest, BatchByUpgradeDomainTakesOneDomainPerBatch) {
  // 12 nodes; node i is in domain i % 5 (Service Fabric's 5 upgrade domains).
  MakeFleet(12);
  UpgradePolicy policy;
  policy.batch_by_upgrade_domain = true;
  RolloutState s = Begin(policy);
  RunToEnd(s);
  ASSERT_EQ(s.status, RunningStatus::kCompleted) << s.error_message;
  ASSERT_EQ(s.batches.size(), 5u);
  EXPECT_EQ(s.batches[0].instances, (std::vector<std::string>{"n0000", "n0005", "n0010"}));
  EXPECT_EQ(s.batches[1].instances, (std::vector<std::string>{"n0001", "n0006", "n0011"}));
  EXPECT_EQ(s.batches[4].instances, (std::vector<std::string>{"n0004", "n0009"}));
  // The policy survives the resumable JSON form.
  auto back = RolloutState::FromJson(s.ToJson(true));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->policy.batch_by_upgrade_domain);
}

TEST_F(RolloutTest, TenPercentFailuresStayUnderTheGatesAndComplete) {
  failure_["v2"] = 0.10;
  MakeFleet(1000);
  RolloutState s = Begin();
  RunToEnd(s);
  EXPECT_EQ(s.status, RunningStatus::kCompleted) << s.error_message;
  EXPECT_EQ(BatchSizes(s), (std::vector<size_t>{200, 200, 200, 200, 200}));
  // Every failure is a node that never said hello on v2, and is counted.
  int stuck = 0;
  for (const auto& [id, image] : set_->images()) {
    stuck += image == "v2" && driver_->Observe(id).machine == NodeObservation::Machine::kBooting;
  }
  EXPECT_EQ(static_cast<int>(s.failed.size()), stuck);
  EXPECT_GT(stuck, 50);
  EXPECT_LT(stuck, 150);
  EXPECT_EQ(s.succeeded.size() + s.failed.size(), 1000u);
  for (const RolloutBatch& b : s.batches) EXPECT_LE(b.failed.size() * 100, 20u * 200) << b.number;
  for (const auto& [id, why] : s.failed) {
    EXPECT_NE(why.find("not healthy within PT5M"), std::string::npos) << why;
  }
  EXPECT_EQ(s.rolled_back_succeeded, 0);
}

TEST_F(RolloutTest, ThirtyPercentFailuresStopAfterTheFirstBatchAndRollItBack) {
  failure_["v2"] = 0.30;
  MakeFleet(1000);
  RolloutState s = Begin();
  RunToEnd(s);
  EXPECT_EQ(s.status, RunningStatus::kFaulted);
  EXPECT_EQ(BatchSizes(s), (std::vector<size_t>{200}));
  EXPECT_EQ(s.error_code, "MaxUnhealthyUpgradedInstancePercentExceeded");
  EXPECT_NE(s.error_message.find("after batch 1, " + std::to_string(s.failed.size()) +
                                 " of 200 upgraded instances are unhealthy"),
            std::string::npos)
      << s.error_message;
  EXPECT_NE(s.error_message.find("maxUnhealthyUpgradedInstancePercent (20%)"), std::string::npos);
  EXPECT_GT(s.failed.size() * 100, 20u * 200);
  // Each failed instance is named with why.
  ASSERT_EQ(s.error_details.size(), s.failed.size());
  EXPECT_NE(s.error_message.find(s.error_details[0].first + ": not healthy within PT5M"),
            std::string::npos);
  // The whole batch went back to v1, which boots: 200 rolled back, none failed.
  EXPECT_EQ(s.rolled_back_succeeded, 200);
  EXPECT_EQ(s.rolled_back_failed, 0);
  EXPECT_EQ(Count("v1", Health::kHealthy), 1000);
  Json j = s.ToJson();
  EXPECT_EQ(j.Find("runningStatus")->Find("code")->string_value(), "Faulted");
  EXPECT_EQ(*j.Find("rollbackInfo")->Find("successfullyRolledbackInstanceCount")->AsInt64(), 200);
  EXPECT_EQ(*j.Find("progress")->Find("pendingInstanceCount")->AsInt64(), 800);
}

TEST_F(RolloutTest, DisabledRollbackLeavesTheUpgradedInstancesOnTheNewImage) {
  failure_["v2"] = 0.30;
  MakeFleet(100);
  UpgradePolicy p;
  p.disable_automatic_rollback = true;
  RolloutState s = Begin(p);
  RunToEnd(s);
  EXPECT_EQ(s.status, RunningStatus::kFaulted);
  EXPECT_EQ(BatchSizes(s), (std::vector<size_t>{20}));
  EXPECT_EQ(s.rolled_back_succeeded + s.rolled_back_failed, 0);
  EXPECT_NE(s.error_message.find("automatic rollback is disabled"), std::string::npos);
  // The flag survives the saved state (it is automaticOSUpgradePolicy's).
  StatusOr<RolloutState> saved = RolloutState::FromJson(*ParseJson(s.ToJson(true).Dump()));
  ASSERT_TRUE(saved.ok());
  EXPECT_TRUE(saved->policy.disable_automatic_rollback);
  int on_v2 = 0;
  for (const auto& [id, image] : set_->images()) on_v2 += image == "v2";
  EXPECT_EQ(on_v2, 20);
}

TEST_F(RolloutTest, TooManyUnhealthyInstancesBeforeABatchStopsWithoutTouchingAny) {
  MakeFleet(10, {}, {2, 5, 8});  // three never booted
  // A node whose machine is gone is unhealthy, not pending.
  for (int i : {2, 5, 8}) ASSERT_TRUE(driver_->Delete(Name(i)).ok());
  RolloutState s = Begin();
  RunToEnd(s);
  EXPECT_EQ(s.status, RunningStatus::kFaulted);
  EXPECT_EQ(s.error_code, "MaxUnhealthyInstancePercentExceeded");
  EXPECT_NE(s.error_message.find("before batch 1, 3 of 10 instances are unhealthy (30%)"),
            std::string::npos)
      << s.error_message;
  EXPECT_NE(s.error_message.find("n0002, n0005, n0008"), std::string::npos);
  EXPECT_TRUE(s.batches.empty());
  ASSERT_EQ(s.error_details.size(), 3u);
  EXPECT_NE(s.error_details[0].second.find("the machine is not running"), std::string::npos);
}

TEST_F(RolloutTest, PrioritizeUnhealthyInstancesPutsThemInTheFirstBatch) {
  for (bool prioritize : {false, true}) {
    MakeFleet(10, {}, {7, 8});
    UpgradePolicy p;
    p.prioritize_unhealthy_instances = prioritize;
    RolloutState s = Begin(p);
    ASSERT_TRUE(Rollout::Step(*set_, s, env_.NowMicros()).ok());
    ASSERT_EQ(s.batches.size(), 1u);
    EXPECT_EQ(s.batches[0].instances, prioritize ? (std::vector<std::string>{"n0007", "n0008"})
                                                 : (std::vector<std::string>{"n0000", "n0001"}));
  }
}

TEST_F(RolloutTest, PauseBetweenBatchesIsKept) {
  MakeFleet(10);
  UpgradePolicy p;
  p.max_batch_instance_percent = 50;
  p.pause_time_between_batches_us = 600'000'000;
  RolloutState s = Begin(p);
  RunToEnd(s);
  ASSERT_EQ(BatchSizes(s), (std::vector<size_t>{5, 5}));
  EXPECT_GE(s.batches[1].start_us - s.batches[0].end_us, 600'000'000);
  EXPECT_LT(s.batches[1].start_us - s.batches[0].end_us, 602'000'000);
}

TEST_F(RolloutTest, MaxSurgeMakesTheNewInstancesBeforeRemovingTheOldOnes) {
  MakeFleet(5);
  UpgradePolicy p;
  p.max_surge = true;
  RolloutState s = Begin(p);
  ASSERT_TRUE(Rollout::Step(*set_, s, env_.NowMicros()).ok());
  ASSERT_EQ(s.batches.size(), 1u);
  EXPECT_EQ(set_->images().size(), 6u) << "one more instance while the batch runs";
  EXPECT_EQ(s.batches[0].replaces, std::vector<std::string>{"n0000"});
  RunToEnd(s);
  EXPECT_EQ(s.status, RunningStatus::kCompleted);
  EXPECT_EQ(BatchSizes(s), (std::vector<size_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(set_->images().size(), 5u);
  for (const auto& [id, image] : set_->images()) {
    EXPECT_EQ(image, "v2");
    EXPECT_EQ(id.rfind("surge", 0), 0u) << id;
  }
}

TEST_F(RolloutTest, DeferredInstancesWaitUntilTheirTasksEnd) {
  MakeFleet(5);
  deferred_ = {"n0000", "n0001", "n0002", "n0003", "n0004"};
  RolloutState s = Begin();
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(Rollout::Step(*set_, s, env_.NowMicros()).ok());
    env_.Advance(seconds(1));
  }
  EXPECT_FALSE(s.done());
  EXPECT_TRUE(s.batches.empty());
  EXPECT_NE(s.waiting.find("defer"), std::string::npos) << s.waiting;
  deferred_ = {"n0004"};
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(Rollout::Step(*set_, s, env_.NowMicros()).ok());
    env_.Advance(seconds(1));
  }
  EXPECT_FALSE(s.done());
  EXPECT_EQ(s.succeeded.size(), 4u);
  EXPECT_NE(s.waiting.find("defer"), std::string::npos) << s.waiting;
  deferred_.clear();
  RunToEnd(s);
  EXPECT_EQ(s.status, RunningStatus::kCompleted);
  EXPECT_EQ(s.batches.back().instances, std::vector<std::string>{"n0004"});
}

TEST_F(RolloutTest, CancelStopsStartingBatchesAndRollsNothingBack) {
  MakeFleet(10);
  RolloutState s = Begin();
  ASSERT_TRUE(Rollout::Step(*set_, s, env_.NowMicros()).ok());
  Rollout::Cancel(s, env_.NowMicros());
  EXPECT_EQ(s.status, RunningStatus::kCancelled);
  EXPECT_EQ(s.last_action, "Cancel");
  env_.Advance(minutes(10));
  ASSERT_TRUE(Rollout::Step(*set_, s, env_.NowMicros()).ok());
  EXPECT_EQ(s.batches.size(), 1u);
  int on_v2 = 0;
  for (const auto& [id, image] : set_->images()) on_v2 += image == "v2";
  EXPECT_EQ(on_v2, 2);
  EXPECT_EQ(s.ToJson().Find("runningStatus")->Find("lastAction")->string_value(), "Cancel");
}

TEST_F(RolloutTest, ATargetImageDeletedMidwayFaultsAndRollsBack) {
  MakeFleet(10);
  RolloutState s = Begin();
  ASSERT_TRUE(Rollout::Step(*set_, s, env_.NowMicros()).ok());
  images_.erase("v2");
  RunToEnd(s);
  EXPECT_EQ(s.status, RunningStatus::kFaulted);
  EXPECT_EQ(s.error_code, "TargetImageDeleted");
  EXPECT_NE(s.error_message.find("v2 was deleted while the rollout moved to it"),
            std::string::npos);
  EXPECT_EQ(s.rolled_back_succeeded, 2);
  EXPECT_EQ(Count("v1", Health::kHealthy), 10);
  // And a rollout to a missing image does not start.
  StatusOr<RolloutState> again = Rollout::Begin(*set_, "r2", "v2", {}, env_.NowMicros());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("v2"), std::string::npos);
}

TEST_F(RolloutTest, AResumedRolloutEndsAsAnUninterruptedOneWould) {
  failure_["v2"] = 0.30;
  MakeFleet(50);
  RolloutState s = Begin();
  for (int i = 0; i < 100; ++i) {  // into the first batch's wait
    ASSERT_TRUE(Rollout::Step(*set_, s, env_.NowMicros()).ok());
    env_.Advance(seconds(1));
  }
  ASSERT_FALSE(s.done());
  // The worker dies; another reads the record back.
  StatusOr<RolloutState> resumed = RolloutState::FromJson(*ParseJson(s.ToJson(true).Dump()));
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  RolloutState r = resumed.value();
  EXPECT_EQ(r.ToJson(true).Dump(), s.ToJson(true).Dump());
  RunToEnd(r);
  EXPECT_EQ(r.status, RunningStatus::kFaulted);
  EXPECT_EQ(BatchSizes(r), (std::vector<size_t>{10}));
  EXPECT_EQ(r.rolled_back_succeeded, 10);
  StatusOr<RolloutState> done = RolloutState::FromJson(*ParseJson(r.ToJson(true).Dump()));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->ToJson().Dump(), r.ToJson().Dump());
}

TEST(RolloutHistoryTest, KeepsTheLastFiveNewestFirst) {
  Json history = Json::MakeArray();
  for (int i = 1; i <= 7; ++i) {
    RolloutState s;
    s.id = "r" + std::to_string(i);
    s.status = RunningStatus::kCompleted;
    RecordHistory(history, s);
  }
  RolloutState again;
  again.id = "r6";
  again.status = RunningStatus::kFaulted;
  RecordHistory(history, again);
  ASSERT_EQ(history.array_items().size(), 5u);
  std::vector<std::string> ids;
  for (const Json& h : history.array_items()) ids.push_back(h.Find("id")->string_value());
  EXPECT_EQ(ids, (std::vector<std::string>{"r6", "r7", "r5", "r4", "r3"}));
  EXPECT_EQ(history.array_items()[0].Find("runningStatus")->Find("code")->string_value(),
            "Faulted");
}

}  // namespace
}  // namespace imagesmith::fleet
