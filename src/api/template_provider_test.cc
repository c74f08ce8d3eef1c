// The imageTemplates provider through Registry::Dispatch, as the REST server
// and the CLI call it: ARM status codes and error codes for each verb.
#include "api/template_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "api/arm_error.h"
#include "api/local.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

Json Body(const std::string& source_type = "PlatformImage") {
  auto j = ParseJson(
      R"({"apiVersion": "2022-07-01", "location": "eastus", "tags": {"team": "a"}, "properties": {
      "source": {"type": ")" +
      source_type +
      R"(", "publisher": "Debian", "offer": "debian-12",
                 "sku": "12-gen2", "version": "latest"},
      "customize": [{"type": "Shell", "name": "s", "inline": ["true"]}],
      "distribute": [{"type": "VHD", "runOutputName": "vhd"}]}})");
  EXPECT_TRUE(j.ok());
  return *j;
}

class TemplateProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tp_test.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::setenv("IMAGESMITH_HOME", dir_.c_str(), 1);
    auto l = OpenLocal(*Env::Default());
    ASSERT_TRUE(l.ok()) << l.status().message();
    local_ = std::move(*l);
    ASSERT_TRUE(local_->meta
                    ->Update([&](meta::Transaction& txn) {
                      return meta::CreateGroup(txn, local_->services.subscription, "imgs",
                                               *Region::Parse("eastus"), Json::MakeObject())
                          .status();
                    })
                    .ok());
  }
  void TearDown() override {
    local_.reset();
    (void)Env::Default()->RemoveAll(dir_);
  }
  ResourceId Id(const std::string& name, const std::string& group = "imgs") {
    return TemplateId(local_->services, group, name);
  }
  StatusOr<Response> Call(Verb verb, const ResourceId& id, Json body = Json(),
                          const std::string& action = "") {
    Request r;
    r.verb = verb;
    r.id = id;
    r.body = std::move(body);
    r.action = action;
    r.wait = false;
    return local_->Call(std::move(r));
  }
  static ArmError Err(const StatusOr<Response>& r) {
    EXPECT_FALSE(r.ok());
    return ToArmError(r.status());
  }

  std::string dir_;
  std::unique_ptr<Local> local_;
};

TEST_F(TemplateProviderTest, PutCreatesWith201ThenReplacesWith200AndHidesInternals) {
  auto created = Call(Verb::kPut, Id("web"), Body());
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ(created->http_status, 201);
  EXPECT_EQ(created->etag, "\"1\"");
  const Json& props = *created->body.Find("properties");
  EXPECT_EQ(props.Find("provisioningState")->string_value(), "Succeeded");
  EXPECT_EQ(props.Find("imagesmith"), nullptr);
  EXPECT_EQ(created->body.Find("type")->string_value(), kTemplateType);
  auto replaced = Call(Verb::kPut, Id("web"), Body());
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->http_status, 200);
  EXPECT_EQ(replaced->etag, "\"2\"");
}

TEST_F(TemplateProviderTest, PutRefusesBadInputWithArmCodes) {
  ArmError bad = Err(Call(Verb::kPut, Id("web"), Body("NoSuchSource")));
  EXPECT_EQ(bad.http_status, 400);
  EXPECT_EQ(bad.code, "InvalidRequestContent");
  EXPECT_NE(bad.message.find("properties.source"), std::string::npos) << bad.message;
  ArmError name = Err(Call(Verb::kPut, Id("-web"), Body()));
  EXPECT_EQ(name.http_status, 400);
  ArmError not_object = Err(Call(Verb::kPut, Id("web"), Json::String("x")));
  EXPECT_EQ(not_object.code, "InvalidRequestContent");
  ArmError group = Err(Call(Verb::kPut, Id("web", "nogroup"), Body()));
  EXPECT_EQ(group.http_status, 404);
  EXPECT_NE(group.message.find("nogroup"), std::string::npos);
  // Nothing half-created.
  auto list = Call(Verb::kGet, Id("web"));
  EXPECT_EQ(Err(list).http_status, 404);
}

// A REST body carries no apiVersion: the request's api-version decides what
// the body must hold (identity is required from 2024-02-01 on).
TEST_F(TemplateProviderTest, BodyWithoutApiVersionIsReadAsTheRequestsApiVersion) {
  Json body = Body();
  auto& items = body.object_items();
  std::erase_if(items, [](const JsonMember& m) { return m.key == "apiVersion"; });
  Request r;
  r.verb = Verb::kPut;
  r.id = Id("web");
  r.body = body;
  r.api_version = "2022-07-01";
  auto ok = local_->Call(r);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  r.api_version = "2024-02-01";
  ArmError e = ToArmError(local_->Call(r).status());
  EXPECT_EQ(e.http_status, 400);
  EXPECT_NE(e.message.find("identity"), std::string::npos) << e.message;
}

TEST_F(TemplateProviderTest, IfNoneMatchStarRefusesAnExistingTemplate) {
  ASSERT_TRUE(Call(Verb::kPut, Id("web"), Body()).ok());
  Request r;
  r.verb = Verb::kPut;
  r.id = Id("web");
  r.body = Body();
  r.if_none_match = "*";
  ArmError e = ToArmError(local_->Call(r).status());
  EXPECT_EQ(e.http_status, 412);
  EXPECT_EQ(e.code, "PreconditionFailed");
  EXPECT_NE(e.message.find("already exists"), std::string::npos);
  r.if_none_match.reset();
  r.if_match = "\"7\"";
  EXPECT_EQ(ToArmError(local_->Call(r).status()).http_status, 412);
}

TEST_F(TemplateProviderTest, GetListDeleteAndRunOutputs) {
  EXPECT_EQ(Err(Call(Verb::kGet, Id("web"))).code, "ResourceNotFound");
  ASSERT_TRUE(Call(Verb::kPut, Id("web"), Body()).ok());
  ASSERT_TRUE(Call(Verb::kPut, Id("db"), Body()).ok());
  auto got = Call(Verb::kGet, Id("web"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body.Find("name")->string_value(), "web");
  Request list;
  list.verb = Verb::kList;
  list.list_type = kTemplateType;
  list.id = local_->services.Group("imgs");
  auto listed = local_->Call(list);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->body.Find("value")->array_items().size(), 2u);
  list.id = ResourceId::ForSubscription(local_->services.subscription);
  EXPECT_EQ(local_->Call(list)->body.Find("value")->array_items().size(), 2u);

  Request outs;
  outs.verb = Verb::kList;
  outs.list_type = kRunOutputType;
  outs.id = Id("web");
  auto o = local_->Call(outs);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->body.Find("value")->array_items().empty());
  ArmError missing = Err(Call(Verb::kGet, Id("web").Child("runOutputs", "vhd")));
  EXPECT_EQ(missing.http_status, 404);

  auto deleted = Call(Verb::kDelete, Id("web"));
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->http_status, 200);
  EXPECT_EQ(Err(Call(Verb::kGet, Id("web"))).http_status, 404);
  EXPECT_EQ(Err(Call(Verb::kDelete, Id("web"))).http_status, 404);
}

TEST_F(TemplateProviderTest, RunWithoutWaitQueuesAnOperationThatCancelMarks) {
  ASSERT_TRUE(Call(Verb::kPut, Id("web"), Body()).ok());
  ArmError idle = Err(Call(Verb::kAction, Id("web"), Json(), "cancel"));
  EXPECT_EQ(idle.http_status, 409);
  EXPECT_NE(idle.message.find("has no run in progress"), std::string::npos);
  EXPECT_EQ(Err(Call(Verb::kAction, Id("web"), Json(), "explode")).http_status, 404);

  auto run = Call(Verb::kAction, Id("web"), Json(), "run");
  ASSERT_TRUE(run.ok()) << run.status().message();
  EXPECT_EQ(run->http_status, 202);
  ASSERT_FALSE(run->operation_id.empty());
  EXPECT_EQ(run->body.Find("status")->string_value(), "InProgress");
  auto op = local_->operations->Get(run->operation_id);
  ASSERT_TRUE(op.ok());
  EXPECT_TRUE(op->owner.empty()) << "a --no-wait run is queued for a worker";
  EXPECT_EQ(op->type, kTemplateRunOperation);
  EXPECT_TRUE(op->target == Id("web"));

  // Queued: a second run and a delete are refused.
  EXPECT_EQ(Err(Call(Verb::kAction, Id("web"), Json(), "run")).http_status, 409);
  EXPECT_EQ(Err(Call(Verb::kDelete, Id("web"))).http_status, 409);
  auto shown = Call(Verb::kGet, Id("web"));
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(shown->body.Find("properties")->Find("lastRunStatus")->Find("runState")->string_value(),
            "Running");

  auto cancel = Call(Verb::kAction, Id("web"), Json(), "cancel");
  ASSERT_TRUE(cancel.ok()) << cancel.status().message();
  EXPECT_EQ(cancel->http_status, 202);
  EXPECT_TRUE(local_->operations->Get(run->operation_id)->cancel_requested);
}

TEST_F(TemplateProviderTest, OthersThanTheOwnerAreDenied) {
  ASSERT_TRUE(Call(Verb::kPut, Id("web"), Body()).ok());
  Request r;
  r.verb = Verb::kGet;
  r.id = Id("web");
  r.caller.principal.name = "someone";
  r.caller.principal.object_id = "11111111-1111-1111-1111-111111111111";
  ArmError e = ToArmError(local_->registry->Dispatch(local_->services, r).status());
  EXPECT_EQ(e.http_status, 403);
  EXPECT_EQ(e.code, "AuthorizationFailed");
  EXPECT_NE(e.message.find("Microsoft.VirtualMachineImages/imageTemplates/read"),
            std::string::npos);
  r.verb = Verb::kAction;
  r.action = "run";
  e = ToArmError(local_->registry->Dispatch(local_->services, r).status());
  EXPECT_NE(e.message.find("imageTemplates/run/action"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace imagesmith::api

#include "api/accounts.h"
#include "auth/directory.h"

namespace imagesmith::api {
namespace {

// A Contributor on the group may write templates, but not ones that name
// files on the imagesmith host: the build would read (scriptUri, sourceUri)
// or write (a VHD's uri) them with imagesmith's rights. URLs are fine.
TEST_F(TemplateProviderTest, OnlyTheOwnerMayNameHostFilesInATemplate) {
  auto sp = CreateForRbac(local_->services, local_->owner, "ci", "Contributor",
                          {local_->services.Group("imgs").ToString()});
  ASSERT_TRUE(sp.ok()) << sp.status().ToString();
  Caller contributor;
  ASSERT_TRUE(local_->meta
                  ->Read([&](meta::Transaction& txn) {
                    ASSIGN_OR_RETURN(contributor.principal, auth::ResolveAssignee(txn, sp->app_id));
                    return Status::Ok();
                  })
                  .ok());
  auto put = [&](const std::string& step, const std::string& distribute) {
    auto body = ParseJson(
        R"({"apiVersion": "2022-07-01", "location": "eastus", "properties": {
        "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
                   "sku": "12-gen2", "version": "latest"},
        "customize": [)" +
        step + R"(], "distribute": [)" + distribute + "]}}");
    EXPECT_TRUE(body.ok());
    Request r;
    r.verb = Verb::kPut;
    r.id = Id("t");
    r.body = *body;
    r.caller = contributor;
    return local_->registry->Dispatch(local_->services, r);
  };
  const std::string vhd = R"({"type": "VHD", "runOutputName": "vhd"})";
  const std::string url_step =
      R"({"type": "Shell", "name": "s", "scriptUri": "https://example.invalid/s.sh"})";
  for (const auto& [step, dist, path] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {R"({"type": "Shell", "name": "s", "scriptUri": "/etc/shadow"})", vhd,
            "properties.customize[0].scriptUri"},
           {R"({"type": "File", "name": "f", "sourceUri": "file:///root/.ssh/id_rsa",
               "destination": "/tmp/k"})",
            vhd, "properties.customize[0].sourceUri"},
           {url_step, R"({"type": "VHD", "runOutputName": "vhd", "uri": "/etc/passwd"})",
            "properties.distribute[0].uri"}}) {
    ArmError e = Err(put(step, dist));
    EXPECT_EQ(e.http_status, 403) << path;
    EXPECT_EQ(e.code, "AuthorizationFailed");
    EXPECT_EQ(e.target, path);
    EXPECT_NE(e.message.find("only the data directory's owner"), std::string::npos) << e.message;
  }
  auto ok = put(url_step, vhd);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->http_status, 201);
}

TEST_F(TemplateProviderTest, ValidateReportsEveryProblemByPathAndStoresNothing) {
  std::string text = Body().Dump(-1);
  text.replace(text.find("\"inline\""), 8, "\"inlin\"");
  Json body = *ParseJson(text);
  auto r = Call(Verb::kAction, Id("web"), body, "validate");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->http_status, 200);
  EXPECT_FALSE(r->body.Find("valid")->bool_value());
  std::vector<std::string> paths;
  for (const Json& d : r->body.Find("diagnostics")->array_items()) {
    paths.push_back(d.Find("path")->string_value());
    EXPECT_EQ(d.Find("severity")->string_value(), "error");
  }
  EXPECT_EQ(paths,
            (std::vector<std::string>{"properties.customize[0]", "properties.customize[0].inlin"}));
  auto good = Call(Verb::kAction, Id("web"), Body(), "validate");
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good->body.Find("valid")->bool_value());
  EXPECT_EQ(Err(Call(Verb::kGet, Id("web"))).http_status, 404);  // nothing stored
}

TEST_F(TemplateProviderTest, CustomizationLogFollowsFromAnOffsetInWholeLines) {
  ASSERT_TRUE(Call(Verb::kPut, Id("web"), Body()).ok());
  auto log = [&](const std::string& offset, const std::string& run = "") {
    Request r;
    r.verb = Verb::kList;
    r.id = Id("web");
    r.list_type = kRunLogType;
    if (!offset.empty()) r.params["offset"] = offset;
    if (!run.empty()) r.params["runId"] = run;
    return local_->Call(std::move(r));
  };
  EXPECT_EQ(Err(log("")).http_status, 404);  // not run yet
  auto run = Call(Verb::kAction, Id("web"), Json(), "run");
  ASSERT_TRUE(run.ok()) << run.status().message();
  // The queued run's directory, as a worker would write its log there.
  auto shown = Call(Verb::kGet, Id("web"));
  ASSERT_TRUE(shown.ok());
  std::string dir;
  ASSERT_TRUE(local_->meta
                  ->Read([&](meta::Transaction& txn) {
                    auto r = txn.Get(Id("web"));
                    if (!r.ok()) return r.status();
                    dir = r->properties.Find("imagesmith")->Find("currentRunDir")->string_value();
                    return Status::Ok();
                  })
                  .ok());
  ASSERT_TRUE(Env::Default()->CreateDirs(dir).ok());
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(dir + "/customization.log", "one\ntwo\nthr").ok());
  auto first = log("0");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->body.Find("content")->string_value(), "one\ntwo\n");  // whole lines only
  EXPECT_EQ(first->body.Find("nextOffset")->AsInt64().value_or(-1), 8);
  EXPECT_EQ(first->body.Find("runState")->string_value(), "Running");
  ASSERT_EQ(first->body.Find("runs")->array_items().size(), 1u);
  std::string run_id = first->body.Find("runId")->string_value();
  auto next = log("8", run_id);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->body.Find("content")->string_value(), "");
  EXPECT_EQ(next->body.Find("nextOffset")->AsInt64().value_or(-1), 8);
  EXPECT_EQ(Err(log("-1")).code, "InvalidParameter");
  EXPECT_EQ(Err(log("0", "20260101T000000Z-nope")).http_status, 404);
}

}  // namespace
}  // namespace imagesmith::api
