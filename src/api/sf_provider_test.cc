// Service Fabric managed clusters and node types through Registry::Dispatch
// on a real SQLite database, a real store and the sim node driver, with an
// injected clock (ManualClockEnv) so the 24-hour retry of a failed automatic
// OS upgrade is shown without waiting.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "api/arm_error.h"
#include "api/local.h"
#include "api/operations.h"
#include "auth/directory.h"
#include "auth/role_assignments.h"
#include "auth/roles.h"
#include "base/manual_clock_env.h"
#include "base/random.h"
#include "gallery/names.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

Json Parse(const std::string& text) {
  auto j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  return j.ok() ? *j : Json();
}

class SfProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sf_test.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::setenv("IMAGESMITH_HOME", dir_.c_str(), 1);
    ::unsetenv("IMAGESMITH_SIM_IMAGE_BOOT_FAILURE_RATES");
    auto l = OpenLocal(clock_);
    ASSERT_TRUE(l.ok()) << l.status().message();
    local_ = std::move(*l);
    disk_ = dir_ + "/disk.raw";
    std::ofstream f(disk_, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = 'x';
    for (int i = 0; i < 4; ++i) f << block;
  }
  void TearDown() override {
    ::unsetenv("IMAGESMITH_SIM_IMAGE_BOOT_FAILURE_RATES");
    local_.reset();
    (void)Env::Default()->RemoveAll(dir_);
  }

  StatusOr<Response> Call(Verb verb, const ResourceId& id, Json body = Json(),
                          const std::string& action = "") {
    Request r;
    r.verb = verb;
    r.id = id;
    r.body = std::move(body);
    r.action = action;
    return local_->Call(std::move(r));
  }
  ResourceId Group() const { return local_->services.Group("rg"); }
  ResourceId Gallery() const { return gallery::GalleryId(Group(), "gal"); }
  ResourceId Definition() const { return Gallery().Child("images", "deb"); }
  ResourceId Version(const std::string& v) const { return Definition().Child("versions", v); }
  ResourceId Image() const { return gallery::ManagedImageId(Group(), "img"); }
  ResourceId Cluster() const {
    return ResourceId::ForResource(local_->services.subscription, "rg", "Microsoft.ServiceFabric",
                                   "managedClusters", "sfcluster");
  }
  ResourceId NodeType(const std::string& name = "pnt") const {
    return Cluster().Child("nodeTypes", name);
  }

  void Publish(const std::string& v) {
    auto r = Call(Verb::kPut, Version(v),
                  Parse(R"({"properties": {"publishingProfile": {"targetRegions": [{"name":
                    "eastus"}]}, "storageProfile": {"source": {"id": ")" +
                        Image().ToString() + R"("}}}})"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // Group, gallery, definition, managed image, version 1.0.0, and a
  // Standard cluster with automatic OS upgrades.
  void MakeBasics(const std::string& sku = "Standard") {
    ASSERT_TRUE(Call(Verb::kPut, Group(), Parse(R"({"location": "eastus"})")).ok());
    ASSERT_TRUE(Call(Verb::kPut, Gallery(), Parse("{}")).ok());
    ASSERT_TRUE(Call(Verb::kPut, Definition(),
                     Parse(R"({"location": "eastus", "properties": {"identifier": {"publisher":
                       "P", "offer": "O", "sku": "S"}, "osType": "Linux"}})"))
                    .ok());
    auto i = Call(Verb::kPut, Image(),
                  Parse(R"({"location": "eastus", "properties": {"storageProfile": {"osDisk":
                    {"osType": "Linux", "blobUri": ")" +
                        disk_ + R"("}}}})"));
    ASSERT_TRUE(i.ok()) << i.status().ToString();
    Publish("1.0.0");
    auto c = Call(Verb::kPut, Cluster(),
                  Parse(R"({"sku": {"name": ")" + sku +
                        R"("}, "properties": {"enableAutoOSUpgrade": true}})"));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
  }

  void GrantReader(const ResourceId& scope) {
    ASSERT_TRUE(local_->meta
                    ->Update([&](meta::Transaction& txn) {
                      auth::RoleAssignment a;
                      a.name = NewUuidV4();
                      a.scope = scope;
                      a.principal_id = auth::kServiceFabricRpObjectId;
                      a.principal_type = "ServicePrincipal";
                      a.role_guid = auth::FindRole("Reader")->guid;
                      return auth::CreateRoleAssignment(txn, a);
                    })
                    .ok());
  }

  StatusOr<Response> CreateNodeType(const ResourceId& image, int count, bool primary = true,
                                    const std::string& name = "pnt") {
    return Call(Verb::kPut, NodeType(name),
                Parse(R"({"properties": {"isPrimary": )" + std::string(primary ? "true" : "false") +
                      R"(, "vmInstanceCount": )" + std::to_string(count) +
                      R"(, "vmImageResourceId": ")" + image.ToString() +
                      R"(", "imagesmith": {"nodeDriver": "sim", "rollingUpgradePolicy":
                        {"healthDeadline": "PT30S"}}}})"));
  }

  Json Show(const std::string& name = "pnt") {
    auto r = Call(Verb::kGet, NodeType(name));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->body : Json();
  }
  static std::string Ext(const Json& nt, const char* key) {
    const Json* v = nt.Find("properties")->Find("imagesmith")->Find(key);
    return v != nullptr && v->is_string() ? v->string_value() : "";
  }
  std::string CheckAction(const std::string& nt = "pnt") {
    auto r = Call(Verb::kAction, Cluster(), Json(), "checkOSUpgrades");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return "";
    for (const Json& e : r->body.Find("nodeTypes")->array_items()) {
      if (e.Find("name")->string_value() == nt) return e.Find("action")->string_value();
    }
    return "";
  }
  Json History() {
    auto r = Call(Verb::kAction, NodeType(), Json(), "rolloutHistory");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r->body.Find("value") : Json::MakeArray();
  }

  ManualClockEnv clock_;
  std::string dir_, disk_;
  std::unique_ptr<Local> local_;
};

TEST_F(SfProviderTest, NodeTypeNeedsReaderForTheServiceFabricProvider) {
  MakeBasics();
  auto denied = CreateNodeType(Definition(), 5);
  ASSERT_FALSE(denied.ok());
  ArmError e = ToArmError(denied.status());
  EXPECT_EQ(e.code, "AuthorizationFailed");
  EXPECT_EQ(e.http_status, 403);
  EXPECT_NE(e.message.find("Reader"), std::string::npos) << e.message;
  EXPECT_NE(
      e.message.find("--assignee fbc587f2-66f5-4459-a027-bcd908b9d278 --role Reader --scope " +
                     Definition().ToString()),
      std::string::npos)
      << e.message;
  // Nothing half-created.
  EXPECT_EQ(Call(Verb::kGet, NodeType()).status().code(), StatusCode::kNotFound);
  // Reader on the gallery covers the definition (the seed's example scope).
  GrantReader(Gallery());
  auto ok = CreateNodeType(Definition(), 5);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  Json nt = Show();
  EXPECT_EQ(nt.Find("properties")->Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(Ext(nt, "currentImage"), Version("1.0.0").ToString());
  EXPECT_EQ(nt.Find("properties")->Find("imagesmith")->Find("nodes")->array_items().size(), 5u);
  auto c = Call(Verb::kGet, Cluster());
  EXPECT_EQ(c->body.Find("properties")->Find("clusterState")->string_value(), "Ready");
}

TEST_F(SfProviderTest, InstanceCountAndPrimaryRules) {
  MakeBasics();
  GrantReader(Group());
  // Standard: the primary needs 5.
  auto low = CreateNodeType(Definition(), 4);
  ASSERT_FALSE(low.ok());
  EXPECT_NE(low.status().message().find("needs at least 5 instances"), std::string::npos)
      << low.status().message();
  EXPECT_EQ(ToArmError(low.status()).target, "properties.vmInstanceCount");
  EXPECT_FALSE(CreateNodeType(Definition(), 0).ok());
  auto autoscale = CreateNodeType(Definition(), -1);
  ASSERT_FALSE(autoscale.ok());
  EXPECT_NE(autoscale.status().message().find("-1 (autoscale) is not allowed on the primary"),
            std::string::npos);
  auto missing = Call(Verb::kPut, NodeType(),
                      Parse(R"({"properties": {"vmInstanceCount": 5, "vmImageResourceId": ")" +
                            Definition().ToString() + R"("}})"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(ToArmError(missing.status()).target, "properties.isPrimary");
  ASSERT_TRUE(CreateNodeType(Definition(), 5).ok());
  // Scaling below the minimum is refused with the rule; isPrimary cannot change.
  auto scale = Call(Verb::kPut, NodeType(), Parse(R"({"properties": {"vmInstanceCount": 3}})"));
  ASSERT_FALSE(scale.ok());
  EXPECT_NE(scale.status().message().find("Standard cluster needs at least 5"), std::string::npos);
  auto flip = Call(Verb::kPut, NodeType(), Parse(R"({"properties": {"isPrimary": false}})"));
  ASSERT_FALSE(flip.ok());
  EXPECT_EQ(ToArmError(flip.status()).target, "properties.isPrimary");
  // Scale up to 7: domains 0 and 1 get a second node.
  auto up = Call(Verb::kPut, NodeType(), Parse(R"({"properties": {"vmInstanceCount": 7}})"));
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(Show().Find("properties")->Find("imagesmith")->Find("nodes")->array_items().size(), 7u);
  // A secondary node type may have 1; it cannot go when it is not the last...
  ASSERT_TRUE(CreateNodeType(Image(), 1, false, "snt").ok());
  auto del_primary = Call(Verb::kDelete, NodeType());
  ASSERT_FALSE(del_primary.ok());
  EXPECT_TRUE(Call(Verb::kDelete, NodeType("snt")).ok());
  EXPECT_FALSE(Call(Verb::kDelete, Cluster()).ok());  // still has pnt
  EXPECT_TRUE(Call(Verb::kDelete, NodeType()).ok());
  EXPECT_TRUE(Call(Verb::kDelete, Cluster()).ok());
}

TEST_F(SfProviderTest, BasicClusterPrimaryNeedsThree) {
  MakeBasics("Basic");
  GrantReader(Group());
  auto two = CreateNodeType(Definition(), 2);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("Basic cluster needs at least 3"), std::string::npos);
  EXPECT_TRUE(CreateNodeType(Definition(), 3).ok());
}

TEST_F(SfProviderTest, NewLatestRollsByUpgradeDomainAndPinnedNodeTypesStay) {
  MakeBasics();
  GrantReader(Group());
  ASSERT_TRUE(CreateNodeType(Definition(), 7).ok());
  ASSERT_TRUE(CreateNodeType(Version("1.0.0"), 2, false, "pinned").ok());
  EXPECT_EQ(CheckAction(), "UpToDate");
  Publish("2.0.0");
  EXPECT_EQ(CheckAction("pinned"), "None");  // checked in the same pass: pinned never moves
  Json nt = Show();
  EXPECT_EQ(Ext(nt, "currentImage"), Version("2.0.0").ToString());
  Json h = History();
  ASSERT_EQ(h.array_items().size(), 1u);
  const Json& r = h.array_items()[0];
  EXPECT_EQ(r.Find("runningStatus")->Find("code")->string_value(), "Completed");
  EXPECT_EQ(r.Find("startedBy")->string_value(), "Platform");
  // 7 instances: domains 0 and 1 hold two, the others one; a batch is one domain.
  std::vector<size_t> sizes;
  for (const Json& b : r.Find("batches")->array_items()) {
    sizes.push_back(b.Find("instances")->array_items().size());
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 2, 1, 1, 1}));
  EXPECT_EQ(Ext(Show("pinned"), "currentImage"), Version("1.0.0").ToString());
}

TEST_F(SfProviderTest, FailedUpgradeIsRetriedAfter24HoursAtMostThreeTimes) {
  MakeBasics();
  GrantReader(Group());
  ASSERT_TRUE(CreateNodeType(Definition(), 5).ok());
  Publish("2.0.0");
  ::setenv("IMAGESMITH_SIM_IMAGE_BOOT_FAILURE_RATES", (Version("2.0.0").ToString() + "=1").c_str(),
           1);
  EXPECT_EQ(CheckAction(), "Started");
  Json h = History();
  ASSERT_EQ(h.array_items().size(), 1u);
  const Json& first = h.array_items()[0];
  EXPECT_EQ(first.Find("runningStatus")->Find("code")->string_value(), "Faulted");
  EXPECT_EQ(first.Find("error")->Find("code")->string_value(),
            "MaxUnhealthyUpgradedInstancePercentExceeded");
  // The gate names the instance of batch 1 (upgrade domain 0) and its health.
  std::string message = first.Find("error")->Find("message")->string_value();
  EXPECT_NE(message.find("-0: not healthy within PT30S"), std::string::npos) << message;
  EXPECT_EQ(first.Find("rollbackInfo")->Find("successfullyRolledbackInstanceCount")->AsInt64(), 1);
  Json nt = Show();
  EXPECT_EQ(Ext(nt, "currentImage"), Version("1.0.0").ToString());
  for (const Json& n : nt.Find("properties")->Find("imagesmith")->Find("nodes")->array_items()) {
    EXPECT_EQ(n.Find("image")->string_value(), Version("1.0.0").ToString());
  }
  // Not again before 24 hours.
  clock_.Advance(std::chrono::hours(23));
  EXPECT_EQ(CheckAction(), "WaitingForRetry");
  // Three retries, 24 hours apart, each Faulted; then no more.
  for (int retry = 1; retry <= 3; ++retry) {
    clock_.Advance(std::chrono::hours(25));
    EXPECT_EQ(CheckAction(), "Retried") << "retry " << retry;
    EXPECT_EQ(CheckAction(), retry < 3 ? "WaitingForRetry" : "GaveUp") << "retry " << retry;
  }
  clock_.Advance(std::chrono::hours(25));
  EXPECT_EQ(CheckAction(), "GaveUp");
  EXPECT_EQ(History().array_items().size(), 4u);  // the first try and 3 retries
  // A newer version starts over.
  ::unsetenv("IMAGESMITH_SIM_IMAGE_BOOT_FAILURE_RATES");
  Publish("3.0.0");
  EXPECT_EQ(CheckAction(), "Started");
  EXPECT_EQ(Ext(Show(), "currentImage"), Version("3.0.0").ToString());
  EXPECT_EQ(History().array_items()[0].Find("runningStatus")->Find("code")->string_value(),
            "Completed");
  EXPECT_EQ(History().array_items().size(), 5u);
}

TEST_F(SfProviderTest, AutoUpgradeOnlyWhenTheClusterEnablesIt) {
  MakeBasics();
  GrantReader(Group());
  ASSERT_TRUE(Call(Verb::kPut, Cluster(), Parse(R"({"properties": {"enableAutoOSUpgrade":
    false}})"))
                  .ok());
  ASSERT_TRUE(CreateNodeType(Definition(), 5).ok());
  Publish("2.0.0");
  EXPECT_EQ(CheckAction(), "None");
  EXPECT_EQ(Ext(Show(), "currentImage"), Version("1.0.0").ToString());
  // A user-started rollout still works (az vmss rolling-upgrade start).
  auto r = Call(Verb::kAction, NodeType(), Json(), "osRollingUpgrade");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Ext(Show(), "currentImage"), Version("2.0.0").ToString());
  auto last = Call(Verb::kAction, NodeType(), Json(), "getRollout");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->body.Find("startedBy")->string_value(), "User");
}

TEST_F(SfProviderTest, VersionDeletedBeforeTheRolloutMovesFaultsWithTargetImageDeleted) {
  MakeBasics();
  GrantReader(Group());
  ASSERT_TRUE(CreateNodeType(Definition(), 5).ok());
  Publish("2.0.0");
  // Start without waiting, delete the version, then let a worker run it.
  Request req;
  req.verb = Verb::kAction;
  req.id = Cluster();
  req.action = "checkOSUpgrades";
  req.wait = false;
  auto started = local_->Call(req);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_TRUE(Call(Verb::kDelete, Version("2.0.0")).ok());
  auto ran = local_->operations->RunOne();
  ASSERT_TRUE(ran.ok() && *ran);
  Json h = History();
  ASSERT_EQ(h.array_items().size(), 1u);
  EXPECT_EQ(h.array_items()[0].Find("runningStatus")->Find("code")->string_value(), "Faulted");
  EXPECT_EQ(h.array_items()[0].Find("error")->Find("code")->string_value(), "TargetImageDeleted");
  EXPECT_EQ(Ext(Show(), "currentImage"), Version("1.0.0").ToString());
}

TEST_F(SfProviderTest, RestartReimageAndBadImageIds) {
  MakeBasics();
  GrantReader(Group());
  auto bad = CreateNodeType(Gallery(), 5);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ToArmError(bad.status()).target, "properties.vmImageResourceId");
  auto absent = CreateNodeType(Definition().Child("versions", "9.9.9"), 5);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(CreateNodeType(Image(), 5).ok());
  EXPECT_EQ(Ext(Show(), "currentImage"), Image().ToString());
  EXPECT_TRUE(Call(Verb::kAction, NodeType(), Json(), "restart").ok());
  EXPECT_TRUE(Call(Verb::kAction, NodeType(), Json(), "reimage").ok());
  auto cancel = Call(Verb::kAction, NodeType(), Json(), "cancelRollout");
  ASSERT_FALSE(cancel.ok());
  EXPECT_EQ(ToArmError(cancel.status()).code, "NoRollingUpgradeInProgress")
      << cancel.status().ToString();
}

}  // namespace
}  // namespace imagesmith::api
