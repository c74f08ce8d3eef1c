// Galleries, image definitions, image versions and managed images through
// Registry::Dispatch, on a real SQLite database and a real store.
#include <fstream>
#include <map>
#include <thread>

#include "api/provider_test_util.h"
#include "api/version_replication.h"
#include "gallery/names.h"
#include "gallery/resources.h"

namespace imagesmith::api {
namespace {

class GalleryProviderTest : public ProviderTest {
 protected:
  void SetUp() override {
    ProviderTest::SetUp();
    // A small real disk: 4 MiB with some data in it.
    disk_ = dir_ + "/disk.raw";
    std::ofstream f(disk_, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = static_cast<char>('a' + i % 26);
    for (int i = 0; i < 4; ++i) f << block;
  }

  ResourceId GalleryId() const { return gallery::GalleryId(Group("rg"), "gal"); }
  ResourceId DefinitionId() const { return GalleryId().Child("images", "deb"); }
  ResourceId VersionId(const std::string& v) const { return DefinitionId().Child("versions", v); }
  ResourceId ImageId() const { return gallery::ManagedImageId(Group("rg"), "img"); }

  static Json DefinitionBody(const std::string& gen) {
    return Parse(R"({"location": "eastus", "properties": {"identifier": {"publisher": "Contoso",
      "offer": "Debian", "sku": "12"}, "osType": "Linux", "hyperVGeneration": ")" +
                 gen + R"("}})");
  }
  Json ImageBody() const {
    return Parse(R"({"location": "eastus", "properties": {"hyperVGeneration": "V2",
      "storageProfile": {"osDisk": {"osType": "Linux", "blobUri": "file://)" +
                 disk_ + R"("}}}})");
  }
  Json VersionBody(const std::string& targets = R"([{"name": "eastus"}])") const {
    return Parse(R"({"properties": {"publishingProfile": {"targetRegions": )" + targets +
                 R"(}, "storageProfile": {"source": {"id": ")" + ImageId().ToString() + R"("}}}})");
  }

  // Group rg, gallery gal, a V2 definition deb and a managed image img.
  void MakeBasics() {
    MakeGroup("rg");
    auto g = Call(Verb::kPut, GalleryId(), Parse("{}"));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    auto d = Call(Verb::kPut, DefinitionId(), DefinitionBody("V2"));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    auto i = Call(Verb::kPut, ImageId(), ImageBody());
    ASSERT_TRUE(i.ok()) << i.status().ToString();
  }

  std::string disk_;
};

TEST_F(GalleryProviderTest, GalleryVerbsAndStatusCodes) {
  MakeGroup("rg");
  auto created = Call(Verb::kPut, GalleryId(),
                      Parse(R"({"tags": {"t": "1"}, "properties": {"description": "d1"}})"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->http_status, 201);
  EXPECT_EQ(created->body.Find("location")->string_value(), "eastus");  // the group's
  EXPECT_EQ(created->body.Find("etag")->string_value(), "\"1\"");
  // PUT again with what GET returned (read-only members included): 200.
  auto got = Call(Verb::kGet, GalleryId());
  ASSERT_TRUE(got.ok());
  Json back = got->body;
  back.Find("properties")->Set("description", Json::String("d2"));
  auto replaced = Call(Verb::kPut, GalleryId(), back);
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_EQ(replaced->http_status, 200);
  EXPECT_EQ(replaced->body.Find("properties")->Find("description")->string_value(), "d2");
  EXPECT_EQ(replaced->etag, "\"2\"");
  auto patched = Call(Verb::kPatch, GalleryId(), Parse(R"({"tags": {"t": "2"}})"));
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(patched->body.Find("tags")->Find("t")->string_value(), "2");
  EXPECT_EQ(patched->body.Find("properties")->Find("description")->string_value(), "d2");
  // A gallery's location cannot change.
  EXPECT_EQ(Arm(Call(Verb::kPut, GalleryId(), Parse(R"({"location": "westus2"})"))).http_status,
            409);
  // Lists at group and subscription scope.
  auto in_group = List(Group("rg"), gallery::kGalleryType);
  ASSERT_TRUE(in_group.ok());
  EXPECT_EQ(Names(*in_group), std::vector<std::string>{"gal"});
  auto in_sub = List(Sub(), gallery::kGalleryType);
  ASSERT_TRUE(in_sub.ok());
  EXPECT_EQ(Names(*in_sub), std::vector<std::string>{"gal"});
  EXPECT_EQ(Arm(List(Group("nope"), gallery::kGalleryType)).http_status, 404);
  // Missing: 404 naming the ID; PATCH of a missing gallery too.
  ResourceId missing = gallery::GalleryId(Group("rg"), "nope");
  ArmError nf = Arm(Call(Verb::kGet, missing));
  EXPECT_EQ(nf.code, "ResourceNotFound");
  EXPECT_EQ(nf.target, missing.ToString());
  EXPECT_EQ(Arm(Call(Verb::kPatch, missing, Parse("{}"))).http_status, 404);
  // A bad name is refused before anything happens.
  ArmError bad = Arm(Call(Verb::kPut, gallery::GalleryId(Group("rg"), "my-gallery"), Parse("{}")));
  EXPECT_EQ(bad.http_status, 400);
  // Unknown members are named.
  EXPECT_EQ(Arm(Call(Verb::kPut, GalleryId(), Parse(R"({"properties": {"sharing": 1}})"))).target,
            "properties.sharing");
  auto del = Call(Verb::kDelete, GalleryId());
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->http_status, 200);
  auto del2 = Call(Verb::kDelete, GalleryId());
  ASSERT_TRUE(del2.ok());
  EXPECT_EQ(del2->http_status, 204);
}

TEST_F(GalleryProviderTest, DefinitionIdentityIsImmutableAndBodyErrorsNameThePath) {
  MakeGroup("rg");
  ASSERT_TRUE(Call(Verb::kPut, GalleryId(), Parse("{}")).ok());
  auto created = Call(Verb::kPut, DefinitionId(), DefinitionBody("V2"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->http_status, 201);
  EXPECT_EQ(created->body.Find("properties")->Find("osState")->string_value(), "Generalized");
  auto same = Call(Verb::kPut, DefinitionId(), DefinitionBody("V2"));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->http_status, 200);
  ArmError gen = Arm(Call(Verb::kPut, DefinitionId(), DefinitionBody("V1")));
  EXPECT_EQ(gen.http_status, 409);
  EXPECT_EQ(gen.code, "Conflict");
  EXPECT_NE(gen.message.find("changing property 'hyperVGeneration' from 'V2' to 'V1'"),
            std::string::npos);
  // PATCH changes the description and keeps the identity it leaves out.
  auto patched =
      Call(Verb::kPatch, DefinitionId(), Parse(R"({"properties": {"description": "Debian 12",
                               "endOfLifeDate": "2030-01-31"}})"));
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(patched->body.Find("properties")->Find("hyperVGeneration")->string_value(), "V2");
  EXPECT_EQ(patched->body.Find("properties")->Find("endOfLifeDate")->string_value(),
            "2030-01-31T00:00:00+00:00");

  ResourceId other = GalleryId().Child("images", "other");
  Json bad_publisher = DefinitionBody("V2");
  bad_publisher.Find("properties")->Find("identifier")->Set("publisher", Json::String("Con toso"));
  ArmError pub = Arm(Call(Verb::kPut, other, bad_publisher));
  EXPECT_EQ(pub.http_status, 400);
  EXPECT_EQ(pub.target, "properties.identifier.publisher");
  EXPECT_NE(pub.message.find("properties.identifier.publisher"), std::string::npos);
  ArmError unknown =
      Arm(Call(Verb::kPut, other,
               Parse(R"({"properties": {"identifier": {"publisher": "p", "offer": "o", "sku": "s",
              "version": "1"}, "osType": "Linux"}})")));
  EXPECT_EQ(unknown.code, "InvalidRequestContent");
  EXPECT_EQ(unknown.target, "properties.identifier.version");
  ArmError os =
      Arm(Call(Verb::kPut, other,
               Parse(R"({"properties": {"identifier": {"publisher": "p", "offer": "o", "sku": "s"},
              "osType": "Linx"}})")));
  EXPECT_EQ(os.target, "properties.osType");
  ArmError required = Arm(Call(
      Verb::kPut, other,
      Parse(R"({"properties": {"identifier": {"publisher": "p", "offer": "o", "sku": "s"}}})")));
  EXPECT_EQ(required.target, "properties.osType");
  ArmError type = Arm(
      Call(Verb::kPut, other,
           Parse(R"({"properties": {"identifier": {"publisher": 5, "offer": "o", "sku": "s"}}})")));
  EXPECT_EQ(type.target, "properties.identifier.publisher");
  // The same triple is taken.
  EXPECT_EQ(Arm(Call(Verb::kPut, other, DefinitionBody("V2"))).http_status, 409);
  auto list = List(GalleryId(), gallery::kImageDefinitionType);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Names(*list), std::vector<std::string>{"deb"});
  // A gallery with a definition cannot be deleted.
  EXPECT_EQ(Arm(Call(Verb::kDelete, GalleryId())).code, "Conflict");
}

TEST_F(GalleryProviderTest, ManagedImageAndVersionLifecycle) {
  MakeBasics();
  auto img = Call(Verb::kGet, ImageId());
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->body.Find("properties")->Find("hyperVGeneration")->string_value(), "V2");
  // A managed image is created once.
  EXPECT_EQ(Arm(Call(Verb::kPut, ImageId(), ImageBody())).http_status, 409);
  ArmError no_file =
      Arm(Call(Verb::kPut, gallery::ManagedImageId(Group("rg"), "img2"),
               Parse(R"({"properties": {"storageProfile": {"osDisk": {"osType": "Linux",
              "blobUri": "/nonexistent/disk.vhd"}}}})")));
  EXPECT_EQ(no_file.http_status, 404);
  ArmError no_uri = Arm(Call(Verb::kPut, gallery::ManagedImageId(Group("rg"), "img2"),
                             Parse(R"({"properties": {"storageProfile": {"osDisk":
                                     {"osType": "Linux"}}}})")));
  EXPECT_EQ(no_uri.target, "properties.storageProfile.osDisk.blobUri");

  // Tags change with PATCH; nothing else does.
  auto tagged = Call(Verb::kPatch, ImageId(), Parse(R"({"tags": {"k": "v"}})"));
  ASSERT_TRUE(tagged.ok()) << tagged.status().ToString();
  EXPECT_EQ(tagged->body.Find("tags")->Find("k")->string_value(), "v");
  EXPECT_EQ(Arm(Call(Verb::kPatch, ImageId(), Parse(R"({"location": "westus2"})"))).target,
            "location");

  // Publishing reports each region through the request's progress callback.
  std::vector<std::string> progress;
  Request put;
  put.verb = Verb::kPut;
  put.id = VersionId("1.0.0");
  put.body = VersionBody(R"([{"name": "eastus", "regionalReplicaCount": 2},
                             {"name": "West US 2"}])");
  put.caller = owner_;
  put.progress = [&](ProgressKind, std::string_view line) {
    progress.push_back(std::string(line));
  };
  auto v1 = Dispatch(put);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->http_status, 201);
  EXPECT_EQ(v1->body.Find("properties")->Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(v1->body.Find("properties")->Find("replicationStatus"), nullptr);
  EXPECT_FALSE(v1->etag.empty());
  EXPECT_EQ(progress, (std::vector<std::string>{"replica in eastus: Completed",
                                                "replica in westus2: Completed"}));
  // Published once: a second PUT is a conflict.
  EXPECT_EQ(Arm(Call(Verb::kPut, VersionId("1.0.0"), VersionBody())).code, "Conflict");

  Request get;
  get.verb = Verb::kGet;
  get.id = VersionId("1.0.0");
  get.caller = owner_;
  get.params["$expand"] = "ReplicationStatus";
  auto expanded = Dispatch(get);
  ASSERT_TRUE(expanded.ok());
  EXPECT_EQ(expanded->body.Find("properties")
                ->Find("replicationStatus")
                ->Find("aggregatedState")
                ->string_value(),
            "Completed");
  get.params["$expand"] = "Everything";
  EXPECT_EQ(Arm(Dispatch(get)).target, "$expand");

  // latest, in a region.
  Request latest;
  latest.verb = Verb::kGet;
  latest.id = VersionId("latest");
  latest.caller = owner_;
  latest.params["location"] = "westus2";
  auto l = Dispatch(latest);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->body.Find("name")->string_value(), "1.0.0");
  latest.params["location"] = "northeurope";
  EXPECT_EQ(Arm(Dispatch(latest)).http_status, 404);

  // PATCH adds a region and replicates it before answering.
  auto patched = Call(Verb::kPatch, VersionId("1.0.0"),
                      Parse(R"({"properties": {"publishingProfile": {"targetRegions": [
                        {"name": "eastus"}, {"name": "westus2"}, {"name": "northeurope"}]}}})"));
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(patched->http_status, 200);
  EXPECT_EQ(patched->body.Find("properties")
                ->Find("publishingProfile")
                ->Find("targetRegions")
                ->array_items()
                .size(),
            3u);
  auto l2 = Dispatch(latest);
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(l2->body.Find("name")->string_value(), "1.0.0");
  // The source cannot change.
  EXPECT_EQ(Arm(Call(Verb::kPatch, VersionId("1.0.0"), VersionBody())).target,
            "properties.storageProfile.source.id");
  // A version from another version.
  Json from_version = VersionBody();
  from_version.Find("properties")
      ->Find("storageProfile")
      ->Find("source")
      ->Set("id", Json::String(VersionId("1.0.0").ToString()));
  auto v2 = Call(Verb::kPut, VersionId("1.1.0"), from_version);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(v2->http_status, 201);

  // Body errors.
  EXPECT_EQ(Arm(Call(Verb::kPut, VersionId("2.0.0"), Parse(R"({"properties": {}})"))).target,
            "properties.storageProfile.source.id");
  EXPECT_EQ(Arm(Call(Verb::kPut, VersionId("2.0.0"),
                     VersionBody(R"([{"name": "eastus", "replicas": 1}])")))
                .target,
            "properties.publishingProfile.targetRegions[0].replicas");
  EXPECT_EQ(Arm(Call(Verb::kPut, VersionId("2.0.0"), VersionBody(R"([{"name": "mars"}])"))).target,
            "properties.publishingProfile.targetRegions[0].name");
  EXPECT_EQ(Arm(Call(Verb::kPut, VersionId("1.2"), VersionBody())).http_status, 400);
  Json missing_source = VersionBody();
  missing_source.Find("properties")
      ->Find("storageProfile")
      ->Find("source")
      ->Set("id", Json::String(gallery::ManagedImageId(Group("rg"), "none").ToString()));
  EXPECT_EQ(Arm(Call(Verb::kPut, VersionId("2.0.0"), missing_source)).http_status, 404);
  // Nothing half-created by the failures.
  auto list = List(DefinitionId(), gallery::kImageVersionType);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Names(*list), (std::vector<std::string>{"1.0.0", "1.1.0"}));

  // DELETE honours If-Match, then 200, then 204.
  Request del;
  del.verb = Verb::kDelete;
  del.id = VersionId("1.1.0");
  del.caller = owner_;
  del.if_match = "\"1\"";
  EXPECT_EQ(Arm(Dispatch(del)).http_status, 412);  // it was written more than once
  del.if_match = v2->etag;
  auto gone = Dispatch(del);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(gone->http_status, 200);
  del.if_match.reset();
  auto again = Dispatch(del);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->http_status, 204);
  // A definition with versions cannot be deleted.
  EXPECT_EQ(Arm(Call(Verb::kDelete, DefinitionId())).code, "Conflict");
}

TEST_F(GalleryProviderTest, AStrangerIsDeniedEveryVerbNamingActionAndScope) {
  MakeBasics();
  struct Case {
    Verb verb;
    ResourceId id;
    const char* action;
  };
  for (const Case& c :
       {Case{Verb::kGet, GalleryId(), "Microsoft.Compute/galleries/read"},
        Case{Verb::kPut, GalleryId(), "Microsoft.Compute/galleries/write"},
        Case{Verb::kDelete, GalleryId(), "Microsoft.Compute/galleries/delete"},
        Case{Verb::kPut, DefinitionId(), "Microsoft.Compute/galleries/images/write"},
        Case{Verb::kGet, DefinitionId(), "Microsoft.Compute/galleries/images/read"},
        Case{Verb::kPut, VersionId("1.0.0"), "Microsoft.Compute/galleries/images/versions/write"},
        Case{Verb::kGet, ImageId(), "Microsoft.Compute/images/read"},
        Case{Verb::kPatch, ImageId(), "Microsoft.Compute/images/write"},
        Case{Verb::kDelete, ImageId(), "Microsoft.Compute/images/delete"}}) {
    Json body = c.id == VersionId("1.0.0") ? VersionBody() : Parse("{}");
    ArmError e = Arm(Call(c.verb, c.id, body, &stranger_));
    EXPECT_EQ(e.http_status, 403) << c.action;
    EXPECT_EQ(e.code, "AuthorizationFailed");
    EXPECT_NE(e.message.find(std::string("perform action '") + c.action + "' over scope '" +
                             c.id.ToString() + "'"),
              std::string::npos)
        << e.message;
  }
  EXPECT_EQ(Arm(List(Group("rg"), gallery::kGalleryType, &stranger_)).http_status, 403);
  // Nothing was published or deleted.
  EXPECT_EQ(Arm(Call(Verb::kGet, VersionId("1.0.0"))).http_status, 404);
  EXPECT_TRUE(Call(Verb::kGet, ImageId()).ok());
}

// 50 writers, each with its own MetaStore on the same meta.db (as separate
// processes would), PUT a different version of one definition at once.
TEST_F(GalleryProviderTest, FiftyParallelVersionPutsEachSucceedExactlyOnce) {
  MakeBasics();
  constexpr int kWriters = 50;
  std::vector<StatusOr<Response>> results(kWriters, Status::Ok());
  std::vector<std::thread> threads;
  threads.reserve(kWriters);
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      auto m = meta::OpenSqliteMetaStore(env_, dir_ + "/meta.db");
      if (!m.ok()) {
        results[i] = m.status();
        return;
      }
      Services s = services_;
      s.meta = m->get();
      Request r;
      r.verb = Verb::kPut;
      r.id = VersionId("1.0." + std::to_string(i));
      r.body = VersionBody();
      r.caller = owner_;
      r.if_none_match = "*";
      results[i] = registry_->Dispatch(s, r);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    EXPECT_EQ(results[i]->http_status, 201) << i;
  }
  auto list = List(DefinitionId(), gallery::kImageVersionType);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->body.Find("value")->array_items().size(), static_cast<size_t>(kWriters));
  for (const Json& v : list->body.Find("value")->array_items()) {
    EXPECT_EQ(v.Find("properties")->Find("provisioningState")->string_value(), "Succeeded");
  }
  // Each exactly once: a second PUT of any of them is refused.
  EXPECT_EQ(Arm(Call(Verb::kPut, VersionId("1.0.7"), VersionBody())).code, "Conflict");
}

// Replication as a durable operation (version_replication.h).
class VersionReplicationTest : public GalleryProviderTest {
 protected:
  Request Put(const std::string& version, const std::string& targets, bool wait) {
    Request r;
    r.verb = Verb::kPut;
    r.id = VersionId(version);
    r.body = VersionBody(targets);
    r.caller = owner_;
    r.wait = wait;
    return r;
  }
  // A second worker on the same database, as another process would be.
  std::unique_ptr<Operations> OtherWorker() {
    auto w = std::make_unique<Operations>(services_, OperationTiming(), "other-worker:1:1");
    AddBuiltinHandlers(*w);
    return w;
  }
  std::map<std::string, std::string> Replicas(const std::string& version) {
    std::map<std::string, std::string> out;
    Request get;
    get.verb = Verb::kGet;
    get.id = VersionId(version);
    get.caller = owner_;
    get.params["$expand"] = "ReplicationStatus";
    auto r = Dispatch(get);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return out;
    const Json& props = *r->body.Find("properties");
    out["provisioningState"] = props.Find("provisioningState")->string_value();
    for (const Json& s : props.Find("replicationStatus")->Find("summary")->array_items()) {
      auto region = Region::Parse(s.Find("region")->string_value());  // "West US 2"
      EXPECT_TRUE(region.ok());
      if (region.ok()) out[region->name()] = s.Find("state")->string_value();
    }
    return out;
  }
};

TEST_F(VersionReplicationTest, PutWithoutWaitAnswersCreatingAndAWorkerReplicates) {
  MakeBasics();
  auto created = Dispatch(Put("1.0.0", R"([{"name": "eastus"}, {"name": "westus2"}])", false));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->http_status, 201);
  EXPECT_EQ(created->body.Find("properties")->Find("provisioningState")->string_value(),
            "Creating");
  ASSERT_FALSE(created->operation_id.empty());
  auto queued = operations_->Get(created->operation_id);
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(queued->type, kVersionReplicateOperation);
  EXPECT_EQ(queued->status, OperationStatus::kInProgress);
  EXPECT_TRUE(queued->owner.empty()) << "queued for a worker";
  EXPECT_EQ(Replicas("1.0.0")["westus2"], "InProgress");

  auto worker = OtherWorker();
  auto ran = worker->RunOne();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_TRUE(*ran);
  auto done = operations_->Get(created->operation_id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, OperationStatus::kSucceeded);
  EXPECT_EQ(done->percent_complete, 100);
  auto replicas = Replicas("1.0.0");
  EXPECT_EQ(replicas["provisioningState"], "Succeeded");
  EXPECT_EQ(replicas["eastus"], "Completed");
  EXPECT_EQ(replicas["westus2"], "Completed");
  EXPECT_FALSE(*worker->RunOne()) << "nothing left to claim";
}

TEST_F(VersionReplicationTest, AReplicationWhoseWorkerDiedIsResumedByAnother) {
  MakeBasics();
  auto created = Dispatch(Put("1.0.0", R"([{"name": "eastus"}, {"name": "westus2"}])", false));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  // A worker on another host claimed it and stopped renewing its lease.
  ASSERT_TRUE(meta_
                  ->Update([&](meta::Transaction& txn) -> Status {
                    ASSIGN_OR_RETURN(meta::OperationRow row,
                                     txn.GetOperation(created->operation_id));
                    row.owner = "elsewhere:4242:99";
                    row.lease_expiry_us = env_.NowMicros() - 1'000'000;
                    return txn.ReplaceOperation(row);
                  })
                  .ok());
  // Resumable: reading it does not fail it.
  auto seen = operations_->Get(created->operation_id);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->status, OperationStatus::kInProgress);

  auto worker = OtherWorker();
  auto ran = worker->RunOne();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_TRUE(*ran);
  auto done = operations_->Get(created->operation_id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, OperationStatus::kSucceeded);
  ASSERT_EQ(done->abandoned_by.array_items().size(), 1u);
  EXPECT_EQ(done->abandoned_by.array_items()[0].Find("worker")->string_value(),
            "elsewhere:4242:99");
  EXPECT_EQ(Replicas("1.0.0")["provisioningState"], "Succeeded");
}

TEST_F(VersionReplicationTest, AForegroundPutTakesTheQueuedOperationAndFinishesIt) {
  MakeBasics();
  auto queued = Dispatch(Put("1.0.0", R"([{"name": "eastus"}, {"name": "westus2"}])", false));
  ASSERT_TRUE(queued.ok()) << queued.status().ToString();
  // The same publish again, waiting (the CLI re-run): it runs the queued
  // operation itself instead of starting a second one.
  auto again = Dispatch(Put("1.0.0", R"([{"name": "eastus"}, {"name": "westus2"}])", true));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->http_status, 200);
  EXPECT_EQ(again->operation_id, queued->operation_id);
  EXPECT_EQ(again->body.Find("properties")->Find("provisioningState")->string_value(), "Succeeded");
  auto ops = operations_->List(VersionId("1.0.0"), 10);
  ASSERT_TRUE(ops.ok());
  ASSERT_EQ(ops->size(), 1u);
  EXPECT_EQ((*ops)[0].status, OperationStatus::kSucceeded);
}

TEST_F(VersionReplicationTest, PatchAddingARegionStartsAnOperationAndATagChangeDoesNot) {
  MakeBasics();
  ASSERT_TRUE(Dispatch(Put("1.0.0", R"([{"name": "eastus"}])", true)).ok());
  Request tags;
  tags.verb = Verb::kPatch;
  tags.id = VersionId("1.0.0");
  tags.body = Parse(R"({"tags": {"k": "v"}})");
  tags.caller = owner_;
  tags.wait = false;
  auto tagged = Dispatch(tags);
  ASSERT_TRUE(tagged.ok()) << tagged.status().ToString();
  EXPECT_TRUE(tagged->operation_id.empty());

  Request add = tags;
  add.body = Parse(
      R"({"properties": {"publishingProfile": {"targetRegions": [{"name": "eastus"},
          {"name": "northeurope"}]}}})");
  auto updating = Dispatch(add);
  ASSERT_TRUE(updating.ok()) << updating.status().ToString();
  EXPECT_EQ(updating->http_status, 200);
  EXPECT_EQ(updating->body.Find("properties")->Find("provisioningState")->string_value(),
            "Updating");
  ASSERT_FALSE(updating->operation_id.empty());
  auto worker = OtherWorker();
  ASSERT_TRUE(*worker->RunOne());
  auto replicas = Replicas("1.0.0");
  EXPECT_EQ(replicas["provisioningState"], "Succeeded");
  EXPECT_EQ(replicas["northeurope"], "Completed");
  EXPECT_EQ(operations_->Get(updating->operation_id)->status, OperationStatus::kSucceeded);
}

}  // namespace
}  // namespace imagesmith::api
