// Durable operations across `imagesmith serve` processes, end to end with the
// real binary: a gallery version's replication (a durable operation) whose
// server is SIGKILLed half-way is finished by another server; two servers on
// one data directory share the work, each operation finished by exactly one
// of them, and when one is killed the other takes over; SIGTERM hands a
// running operation back without waiting for its lease. `store fsck` is clean
// after each.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "base/json.h"
#include "e2e_util.h"
#include "serve_util.h"
#include "server/test_client.h"

namespace imagesmith::e2e {
namespace {

using server::testing::ClientResponse;
using server::testing::Request;

const char kGalleryVersion[] = "?api-version=2024-03-03";

class ServeWorkersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = MakeTempDir();
    auto sub = RunCli({"account", "show"}, "", {{"IMAGESMITH_HOME", home_}});
    ASSERT_EQ(sub.exit_code, 0) << sub.err;
    sub_ = ParseJson(sub.out)->Find("id")->string_value();
    auth_ = "Authorization: Bearer " + OwnerToken(home_);
  }
  std::unique_ptr<ServeProcess> Serve(const std::map<std::string, std::string>& env = {}) {
    auto s =
        std::make_unique<ServeProcess>(home_, std::vector<std::string>{"--access-log", "off"}, env);
    EXPECT_TRUE(s->ok()) << s->Stderr();
    return s;
  }
  ClientResponse Call(const ServeProcess& serve, const std::string& method, const std::string& path,
                      const std::string& body = "") {
    auto r =
        Request(serve.address(), method, path, body, {auth_, "Content-Type: application/json"});
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.status().message();
    return r.ok() ? *r : ClientResponse();
  }
  CliResult Cli(const std::vector<std::string>& args) {
    return RunCli(args, "", {{"IMAGESMITH_HOME", home_}});
  }
  std::string Group() const { return "/subscriptions/" + sub_ + "/resourceGroups/rg"; }
  std::string Definition() const {
    return Group() + "/providers/Microsoft.Compute/galleries/gal/images/deb";
  }
  std::string Image() const { return Group() + "/providers/Microsoft.Compute/images/img"; }
  // Group, gallery, a V2 definition and a managed image of a 4 MiB disk.
  void MakeBasics(const ServeProcess& serve) {
    std::string disk = home_ + "/disk.raw";
    {
      std::ofstream f(disk, std::ios::binary);
      std::string block(1 << 20, '\0');
      for (size_t i = 0; i < block.size(); i += 4096) block[i] = static_cast<char>('a' + i % 26);
      for (int i = 0; i < 4; ++i) f << block;
    }
    ASSERT_EQ(
        Call(serve, "PUT", Group() + "?api-version=2021-04-01", R"({"location": "eastus"})").status,
        201);
    ASSERT_EQ(
        Call(serve, "PUT", Group() + "/providers/Microsoft.Compute/galleries/gal" + kGalleryVersion,
             R"({"location": "eastus"})")
            .status,
        201);
    ClientResponse def = Call(serve, "PUT", Definition() + kGalleryVersion,
                              R"({"location": "eastus", "properties": {"identifier":
      {"publisher": "Contoso", "offer": "Debian", "sku": "12"}, "osType": "Linux",
      "hyperVGeneration": "V2"}})");
    ASSERT_EQ(def.status, 201) << def.body;
    ClientResponse img = Call(serve, "PUT", Image() + "?api-version=2024-03-01",
                              R"({"location": "eastus", "properties": {"hyperVGeneration": "V2",
             "storageProfile": {"osDisk": {"osType": "Linux", "blobUri": "file://)" +
                                  disk + R"("}}}})");
    ASSERT_EQ(img.status, 201) << img.body;
  }
  std::string VersionBody(const std::string& regions) const {
    return R"({"location": "eastus", "properties": {"publishingProfile": {"targetRegions": )" +
           regions + R"(}, "storageProfile": {"source": {"id": ")" + Image() + R"("}}}})";
  }
  // PUT a version; returns its Azure-AsyncOperation path.
  std::string PutVersion(const ServeProcess& serve, const std::string& version,
                         const std::string& regions) {
    ClientResponse r = Call(serve, "PUT", Definition() + "/versions/" + version + kGalleryVersion,
                            VersionBody(regions));
    EXPECT_EQ(r.status, 201) << r.body;
    auto body = ParseJson(r.body);
    EXPECT_TRUE(body.ok());
    if (body.ok()) {
      EXPECT_EQ(body->Find("properties")->Find("provisioningState")->string_value(), "Creating");
    }
    std::string url = r.Header("azure-asyncoperation");
    EXPECT_NE(url.find("/providers/Microsoft.Compute/locations/eastus/operations/"),
              std::string::npos)
        << url;
    return url.empty() ? "" : url.substr(url.find("/subscriptions/"));
  }
  // Polls an operation through `serve` until it ends (or `seconds` pass).
  Json Poll(const ServeProcess& serve, const std::string& path, int seconds) {
    Json last;
    for (int i = 0; i < seconds * 5; ++i) {
      ClientResponse r = Call(serve, "GET", path);
      EXPECT_EQ(r.status, 200) << r.body;
      auto body = ParseJson(r.body);
      if (body.ok()) last = *body;
      if (body.ok() && body->Find("status")->string_value() != "InProgress") return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return last;
  }
  // The operation's record with details (operation show).
  Json Show(const std::string& async_path) {
    std::string id = async_path.substr(async_path.find("/operations/") + 12);
    id = id.substr(0, id.find('?'));
    CliResult r = Cli({"operation", "show", "--id", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = ParseJson(r.out);
    return j.ok() ? *j : Json();
  }
  std::string VersionState(const ServeProcess& serve, const std::string& version) {
    ClientResponse r = Call(
        serve, "GET",
        Definition() + "/versions/" + version + kGalleryVersion + "&$expand=ReplicationStatus");
    auto b = ParseJson(r.body);
    if (!b.ok() || b->Find("properties") == nullptr) return "?" + r.body;
    std::string out = b->Find("properties")->Find("provisioningState")->string_value();
    for (const Json& s :
         b->Find("properties")->Find("replicationStatus")->Find("summary")->array_items()) {
      out += " " + s.Find("state")->string_value();
    }
    return out;
  }
  void ExpectFsckClean() {
    CliResult f = Cli({"store", "fsck"});
    EXPECT_EQ(f.exit_code, 0) << f.out << f.err;
  }

  std::string home_, sub_, auth_;
};

constexpr char kThreeRegions[] = R"([{"name": "eastus"}, {"name": "westus2"},
                                     {"name": "northeurope"}])";

TEST_F(ServeWorkersTest, ReplicationWhoseServerWasKilledIsFinishedByAnotherServer) {
  // The first server is killed right after copying the second region, before
  // it marks it Completed.
  auto a = Serve({{"IMAGESMITH_CRASH_AT", "gallery.replicate.after_copy#2"}});
  ASSERT_TRUE(a->ok());
  MakeBasics(*a);
  std::string op = PutVersion(*a, "1.0.0", kThreeRegions);
  ASSERT_FALSE(op.empty());
  EXPECT_EQ(a->Wait(60000), 128 + SIGKILL) << a->Stderr();
  Json half = Show(op);
  EXPECT_EQ(half.Find("status")->string_value(), "InProgress") << half.Dump();

  auto b = Serve();
  ASSERT_TRUE(b->ok());
  Json done = Poll(*b, op, 60);
  EXPECT_EQ(done.Find("status")->string_value(), "Succeeded") << done.Dump();
  EXPECT_EQ(VersionState(*b, "1.0.0"), "Succeeded Completed Completed Completed");
  Json record = Show(op);
  ASSERT_NE(record.Find("abandonedBy"), nullptr) << record.Dump();
  EXPECT_NE(record.Find("abandonedBy")
                ->array_items()[0]
                .Find("worker")
                ->string_value()
                .find(":" + std::to_string(a->pid()) + ":"),
            std::string::npos)
      << record.Dump();
  EXPECT_NE(record.Find("finishedBy")->string_value().find(":" + std::to_string(b->pid()) + ":"),
            std::string::npos)
      << record.Dump();
  ExpectFsckClean();
}

TEST_F(ServeWorkersTest, TwoServersShareTheWorkAndTheSurvivorTakesOverFromAKilledOne) {
  // A is killed in the middle of its third region copy; B runs normally.
  auto a = Serve({{"IMAGESMITH_CRASH_AT", "gallery.replicate.after_copy#3"}});
  auto b = Serve();
  ASSERT_TRUE(a->ok() && b->ok());
  MakeBasics(*b);
  constexpr int kVersions = 6;
  std::vector<std::string> ops;
  for (int i = 0; i < kVersions; ++i) {
    // Both answer requests: the PUTs alternate between them.
    const ServeProcess& via = i % 2 == 0 ? *a : *b;
    ops.push_back(PutVersion(via, "1.0." + std::to_string(i),
                             R"([{"name": "eastus"}, {"name": "westus2"}])"));
  }
  EXPECT_EQ(a->Wait(120000), 128 + SIGKILL) << a->Stderr();

  const std::string a_worker = ":" + std::to_string(a->pid()) + ":";
  const std::string b_worker = ":" + std::to_string(b->pid()) + ":";
  int taken_over = 0;
  for (int i = 0; i < kVersions; ++i) {
    SCOPED_TRACE("version 1.0." + std::to_string(i));
    Json done = Poll(*b, ops[i], 120);
    EXPECT_EQ(done.Find("status")->string_value(), "Succeeded") << done.Dump();
    EXPECT_EQ(VersionState(*b, "1.0." + std::to_string(i)), "Succeeded Completed Completed");
    Json record = Show(ops[i]);
    // Finished exactly once, by one of the two servers.
    std::string finished = record.Find("finishedBy")->string_value();
    EXPECT_TRUE(finished.find(a_worker) != std::string::npos ||
                finished.find(b_worker) != std::string::npos)
        << record.Dump();
    if (const Json* ab = record.Find("abandonedBy"); ab != nullptr) {
      // Only the killed server abandons work, and B finished it.
      ASSERT_EQ(ab->array_items().size(), 1u) << record.Dump();
      EXPECT_NE(ab->array_items()[0].Find("worker")->string_value().find(a_worker),
                std::string::npos);
      EXPECT_NE(finished.find(b_worker), std::string::npos) << record.Dump();
      ++taken_over;
    }
  }
  EXPECT_EQ(taken_over, 1) << "A held exactly one operation when it was killed";
  ExpectFsckClean();
  b->Signal(SIGTERM);
  EXPECT_EQ(b->Wait(60000), 0) << b->Stderr();
}

// `sig image-version create --no-wait` answers at once; the replication
// waits for a worker. The CLI process does not start one when a server with
// workers runs on the data directory: the server's worker runs it.
TEST_F(ServeWorkersTest, NoWaitLeavesTheReplicationToTheRunningServer) {
  auto serve = Serve();
  ASSERT_TRUE(serve->ok());
  MakeBasics(*serve);
  CliResult queued =
      Cli({"sig", "image-version", "create", "-g", "rg", "-r", "gal", "-i", "deb", "-e", "1.0.0",
           "--managed-image", "img", "--target-regions", "eastus", "westus2", "--no-wait"});
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  EXPECT_EQ(ParseJson(queued.out)->Find("properties")->Find("provisioningState")->string_value(),
            "Creating");
  EXPECT_NE(queued.err.find("the running worker"), std::string::npos) << queued.err;
  std::string version = Definition() + "/versions/1.0.0";
  Json op;
  for (int i = 0; i < 300; ++i) {
    CliResult list = Cli({"operation", "list", "--target", version});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    auto ops = ParseJson(list.out);
    ASSERT_TRUE(ops.ok() && ops->array_items().size() == 1) << list.out;
    op = ops->array_items()[0];
    if (op.Find("status")->string_value() != "InProgress") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(op.Find("status")->string_value(), "Succeeded") << op.Dump();
  EXPECT_NE(op.Find("finishedBy")->string_value().find(":" + std::to_string(serve->pid()) + ":"),
            std::string::npos)
      << op.Dump();
  EXPECT_FALSE(Env::Default()->FileExists(home_ + "/worker.log"))
      << "no detached worker was started";
  EXPECT_EQ(VersionState(*serve, "1.0.0"), "Succeeded Completed Completed");
}

// With no worker on the data directory (a server with --workers 0), the
// command starts a detached worker that runs it and exits.
TEST_F(ServeWorkersTest, NoWaitWithoutAWorkerStartsADetachedOne) {
  auto serve = std::make_unique<ServeProcess>(
      home_, std::vector<std::string>{"--access-log", "off", "--workers", "0"});
  ASSERT_TRUE(serve->ok()) << serve->Stderr();
  MakeBasics(*serve);
  CliResult queued = Cli({"sig", "image-version", "create", "-g", "rg", "-r", "gal", "-i", "deb",
                          "-e", "1.0.0", "--managed-image", "img", "--no-wait"});
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  EXPECT_EQ(queued.err.find("the running worker"), std::string::npos) << queued.err;
  std::string state;
  for (int i = 0; i < 300 && state != "Succeeded Completed"; ++i) {
    state = VersionState(*serve, "1.0.0");
    if (state != "Succeeded Completed") std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(state, "Succeeded Completed");
  EXPECT_TRUE(Env::Default()->FileExists(home_ + "/worker.log"));
}

// The server's read cache (HandlerOptions::cache_reads) never serves a stale
// answer: a change by another process (the CLI) and a revoked role
// assignment are seen by the next GET.
TEST_F(ServeWorkersTest, ReadCacheSeesChangesFromOtherProcessesAndRevokedRoles) {
  auto serve = Serve();
  ASSERT_TRUE(serve->ok());
  MakeBasics(*serve);
  std::string gallery = Group() + "/providers/Microsoft.Compute/galleries/gal" + kGalleryVersion;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Call(*serve, "GET", gallery).status, 200);
  CliResult tag = Cli({"sig", "create", "-g", "rg", "-r", "gal", "--tags", "k=v2"});
  ASSERT_EQ(tag.exit_code, 0) << tag.err;
  ClientResponse after = Call(*serve, "GET", gallery);
  EXPECT_NE(after.body.find("\"v2\""), std::string::npos) << after.body;

  CliResult sp = Cli({"ad", "sp", "create-for-rbac", "--name", "reader", "--role", "Reader",
                      "--scopes", "/subscriptions/" + sub_});
  ASSERT_EQ(sp.exit_code, 0) << sp.err;
  auto creds = ParseJson(sp.out);
  std::string app = creds->Find("appId")->string_value();
  CliResult token = Cli({"account", "get-access-token", "--service-principal", "--username", app,
                         "--password", creds->Find("password")->string_value()});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  std::string reader =
      "Authorization: Bearer " + ParseJson(token.out)->Find("accessToken")->string_value();
  for (int i = 0; i < 3; ++i) {
    auto r = Request(serve->address(), "GET", gallery, "", {reader});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
  }
  CliResult revoke = Cli({"role", "assignment", "delete", "--assignee", app, "--role", "Reader",
                          "--scope", "/subscriptions/" + sub_});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  auto denied = Request(serve->address(), "GET", gallery, "", {reader});
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, 403) << denied->body;
}

}  // namespace
}  // namespace imagesmith::e2e
