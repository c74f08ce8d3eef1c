// Template runs through `imagesmith serve`: PUT a template, POST run, poll the
// Azure-AsyncOperation URL to Succeeded, find the version in the gallery; and
// a server SIGKILLed mid-run, whose operation a second server fails with a
// message naming the dead worker. Real builds (the tests' shared Debian base).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "base/json.h"
#include "e2e_util.h"
#include "serve_util.h"
#include "server/test_client.h"

namespace imagesmith::e2e {
namespace {

using server::testing::ClientResponse;
using server::testing::Request;

class ServeRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = DataDirWithSharedCatalog(&home_);
    auto sub = RunCli({"account", "show"}, "", env_);
    ASSERT_EQ(sub.exit_code, 0) << sub.err;
    sub_ = ParseJson(sub.out)->Find("id")->string_value();
    auth_ = "Authorization: Bearer " + OwnerToken(home_);
  }
  ClientResponse Call(const ServeProcess& serve, const std::string& method, const std::string& path,
                      const std::string& body = "") {
    auto r =
        Request(serve.address(), method, path, body, {auth_, "Content-Type: application/json"});
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.status().message();
    return r.ok() ? *r : ClientResponse();
  }
  std::string Group() const { return "/subscriptions/" + sub_ + "/resourceGroups/imgs"; }
  std::string Definition() const {
    return Group() + "/providers/Microsoft.Compute/galleries/gal/images/deb";
  }
  std::string Template(const std::string& name) const {
    return Group() + "/providers/Microsoft.VirtualMachineImages/imageTemplates/" + name;
  }
  void MakeGallery(const ServeProcess& serve) {
    ASSERT_EQ(
        Call(serve, "PUT", Group() + "?api-version=2021-04-01", R"({"location": "eastus"})").status,
        201);
    ASSERT_EQ(Call(serve, "PUT",
                   Group() + "/providers/Microsoft.Compute/galleries/gal?api-version=2024-03-03",
                   R"({"location": "eastus"})")
                  .status,
              201);
    ClientResponse def = Call(serve, "PUT", Definition() + "?api-version=2024-03-03",
                              R"({"location": "eastus", "properties": {"identifier":
      {"publisher": "me", "offer": "debian", "sku": "12"}, "osType": "Linux",
      "hyperVGeneration": "V2"}})");
    ASSERT_EQ(def.status, 201) << def.body;
  }
  // The body az rest would send for a template with one Shell step.
  std::string TemplateBody(const std::string& inline_command) const {
    return R"({"location": "eastus", "properties": {
      "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
                 "sku": "12-gen2", "version": "latest"},
      "customize": [{"type": "Shell", "name": "step", "inline": [")" +
           inline_command + R"("]}],
      "distribute": [{"type": "SharedImage", "runOutputName": "gal", "galleryImageId": ")" +
           Definition() + R"(", "targetRegions": [{"name": "eastus"}]}]}})";
  }
  // Polls the Azure-AsyncOperation URL until the status is not InProgress.
  Json PollOperation(const ServeProcess& serve, const std::string& async_url, int seconds) {
    std::string path = async_url.substr(async_url.find("/subscriptions/"));
    Json last;
    for (int i = 0; i < seconds; ++i) {
      ClientResponse r = Call(serve, "GET", path);
      EXPECT_EQ(r.status, 200) << r.body;
      auto body = ParseJson(r.body);
      if (body.ok()) last = *body;
      if (body.ok() && body->Find("status")->string_value() != "InProgress") return last;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return last;
  }

  std::string home_, sub_, auth_;
  std::map<std::string, std::string> env_;
};

TEST_F(ServeRunTest, RunAsynchronouslyPollToSucceededAndFindTheVersion) {
  ServeProcess serve(home_, {"--access-log", "off"}, env_);
  ASSERT_TRUE(serve.ok()) << serve.Stderr();
  MakeGallery(serve);
  ClientResponse put = Call(serve, "PUT", Template("web") + "?api-version=2022-07-01",
                            TemplateBody("echo served > /etc/served-by"));
  ASSERT_TRUE(put.status == 200 || put.status == 201) << put.body;
  ClientResponse run = Call(serve, "POST", Template("web") + "/run?api-version=2022-07-01");
  ASSERT_EQ(run.status, 202) << run.body;
  std::string async = run.Header("azure-asyncoperation");
  ASSERT_NE(async.find("/operations/"), std::string::npos) << async;
  EXPECT_NE(run.Header("location").find("/operationResults/"), std::string::npos);
  Json done = PollOperation(serve, async, 1500);
  ASSERT_EQ(done.Find("status")->string_value(), "Succeeded") << done.Dump() << serve.Stderr();
  ClientResponse versions = Call(serve, "GET", Definition() + "/versions?api-version=2024-03-03");
  ASSERT_EQ(versions.status, 200) << versions.body;
  auto list = ParseJson(versions.body);
  ASSERT_EQ(list->Find("value")->array_items().size(), 1u) << versions.body;
  EXPECT_EQ(list->Find("value")
                ->array_items()[0]
                .Find("properties")
                ->Find("provisioningState")
                ->string_value(),
            "Succeeded");
  // The Location URL now answers 200 with the final status.
  std::string location = run.Header("location");
  ClientResponse result = Call(serve, "GET", location.substr(location.find("/subscriptions/")));
  EXPECT_EQ(result.status, 200) << result.body;
  // /metrics has the run's phase durations (first scrape: nothing cached).
  ClientResponse metrics = Call(serve, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* phase : {"source", "customize", "generalize", "disk", "distribute"}) {
    EXPECT_NE(metrics.body.find("imagesmith_build_phase_duration_seconds_count{phase=\"" +
                                std::string(phase) + "\"} 1"),
              std::string::npos)
        << phase << "\n"
        << metrics.body;
  }
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.Wait(), 0);
}

TEST_F(ServeRunTest, ServerKilledMidRunAnotherServerFailsTheOperationSayingWhy) {
  std::string marker = "srv-kill-" + std::to_string(::getpid());
  auto first =
      std::make_unique<ServeProcess>(home_, std::vector<std::string>{"--access-log", "off"}, env_);
  ASSERT_TRUE(first->ok()) << first->Stderr();
  MakeGallery(*first);
  ASSERT_TRUE(Call(*first, "PUT", Template("slow") + "?api-version=2022-07-01",
                   TemplateBody("sh -c 'sleep 600' " + marker))
                  .status < 300);
  ClientResponse run = Call(*first, "POST", Template("slow") + "/run?api-version=2022-07-01");
  ASSERT_EQ(run.status, 202) << run.body;
  std::string async = run.Header("azure-asyncoperation");
  bool running = false;
  for (int i = 0; i < 1200 && !running; ++i) {
    running = !PidsWith(marker).empty();
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(running) << "the step never ran";
  first->Signal(SIGKILL);
  first->Wait();
  ServeProcess second(home_, {"--access-log", "off"}, env_);
  ASSERT_TRUE(second.ok()) << second.Stderr();
  Json done = PollOperation(second, async, 120);
  EXPECT_EQ(done.Find("status")->string_value(), "Failed") << done.Dump();
  const Json* error = done.Find("error");
  ASSERT_NE(error, nullptr) << done.Dump();
  EXPECT_NE(error->Find("message")->string_value().find("killed or crashed"), std::string::npos)
      << done.Dump();
  for (int pid : PidsWith(marker)) ::kill(pid, SIGKILL);
}

// SIGTERM mid-build: the server stops the build instead of waiting for it,
// fails the run saying the worker was stopped (a run cannot be resumed),
// leaves nothing InProgress, and exits 0.
TEST_F(ServeRunTest, SigtermMidRunStopsTheBuildFailsItSayingWhyAndExits) {
  std::string marker = "srv-term-" + std::to_string(::getpid());
  auto serve = std::make_unique<ServeProcess>(
      home_, std::vector<std::string>{"--access-log", "off", "--shutdown-timeout", "120"}, env_);
  ASSERT_TRUE(serve->ok()) << serve->Stderr();
  MakeGallery(*serve);
  ASSERT_TRUE(Call(*serve, "PUT", Template("slow") + "?api-version=2022-07-01",
                   TemplateBody("sh -c 'sleep 600' " + marker))
                  .status < 300);
  ClientResponse run = Call(*serve, "POST", Template("slow") + "/run?api-version=2022-07-01");
  ASSERT_EQ(run.status, 202) << run.body;
  std::string async = run.Header("azure-asyncoperation");
  std::string id = async.substr(async.find("/operations/") + 12);
  id = id.substr(0, id.find('?'));
  bool running = false;
  for (int i = 0; i < 1200 && !running; ++i) {
    running = !PidsWith(marker).empty();
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(running) << "the step never ran";
  serve->Signal(SIGTERM);
  // The step sleeps 600 s: exiting at all means the build was stopped.
  EXPECT_EQ(serve->Wait(300000), 0) << serve->Stderr();
  EXPECT_TRUE(PidsWith(marker).empty()) << "the step's process outlived the server";
  CliResult show = RunCli({"operation", "show", "--id", id}, "", env_);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  Json op = *ParseJson(show.out);
  EXPECT_EQ(op.Find("status")->string_value(), "Failed") << op.Dump();
  EXPECT_EQ(op.Find("error")->Find("code")->string_value(), "WorkerStopped") << op.Dump();
  EXPECT_NE(op.Find("error")->Find("message")->string_value().find("stopped (SIGTERM"),
            std::string::npos)
      << op.Dump();
  EXPECT_TRUE(op.Find("owner")->is_null()) << op.Dump();
  CliResult tmpl = RunCli({"image-template", "show", "-g", "imgs", "-n", "slow"}, "", env_);
  ASSERT_EQ(tmpl.exit_code, 0) << tmpl.err;
  Json last = *ParseJson(tmpl.out)->Find("properties")->Find("lastRunStatus");
  EXPECT_EQ(last.Find("runState")->string_value(), "Failed") << last.Dump();
  EXPECT_NE(last.Find("message")->string_value().find("was stopped"), std::string::npos)
      << last.Dump();
  for (int pid : PidsWith(marker)) ::kill(pid, SIGKILL);
}

}  // namespace
}  // namespace imagesmith::e2e
