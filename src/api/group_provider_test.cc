// Subscriptions and resource groups through Registry::Dispatch, on a real
// SQLite database.
#include "api/provider_test_util.h"

namespace imagesmith::api {
namespace {

TEST_F(ProviderTest, SubscriptionGetAndListAnswerArmShapes) {
  auto got = Call(Verb::kGet, Sub());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->http_status, 200);
  EXPECT_EQ(got->body.Find("subscriptionId")->string_value(), services_.subscription);
  EXPECT_EQ(got->body.Find("id")->string_value(), "/subscriptions/" + services_.subscription);
  EXPECT_EQ(got->body.Find("state")->string_value(), "Enabled");
  EXPECT_EQ(got->body.Find("etag")->string_value(), got->etag);
  auto list = List(Sub(), "Microsoft.Resources/subscriptions");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->body.Find("value")->array_items().size(), 1u);
  // A stranger sees no subscription and cannot read this one.
  auto none = List(Sub(), "Microsoft.Resources/subscriptions", &stranger_);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->body.Find("value")->array_items().size(), 0u);
  EXPECT_EQ(Arm(Call(Verb::kGet, Sub(), Json(), &stranger_)).http_status, 403);
  ArmError missing =
      Arm(Call(Verb::kGet, ResourceId::ForSubscription("00000000-0000-0000-0000-000000000000")));
  EXPECT_EQ(missing.http_status, 404);
  EXPECT_EQ(missing.code, "SubscriptionNotFound");
  // Subscriptions are read-only.
  EXPECT_EQ(Arm(Call(Verb::kPut, Sub(), Parse("{}"))).code, "MethodNotAllowed");
}

TEST_F(ProviderTest, GroupPutCreatesWith201ThenReplacesWith200AndNewEtag) {
  auto created =
      Call(Verb::kPut, Group("Images"), Parse(R"({"location": "East US", "tags": {"a": "b"}})"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->http_status, 201);
  EXPECT_EQ(created->etag, "\"1\"");
  EXPECT_EQ(created->body.Find("etag")->string_value(), "\"1\"");
  EXPECT_EQ(created->body.Find("location")->string_value(), "eastus");
  EXPECT_EQ(created->body.Find("type")->string_value(), "Microsoft.Resources/resourceGroups");
  // Same group in another case: replaced, tags changed.
  auto replaced = Call(Verb::kPut, Group("IMAGES"), Parse(R"({"tags": {"c": "d"}})"));
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_EQ(replaced->http_status, 200);
  EXPECT_EQ(replaced->etag, "\"2\"");
  EXPECT_EQ(replaced->body.Find("name")->string_value(), "Images");
  EXPECT_EQ(replaced->body.Find("tags")->Find("c")->string_value(), "d");
  auto got = Call(Verb::kGet, Group("images"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->etag, "\"2\"");
}

TEST_F(ProviderTest, GroupEtagPreconditionsAreCheckedInTheWriteTransaction) {
  MakeGroup("g");
  Request put;
  put.verb = Verb::kPut;
  put.id = Group("g");
  put.body = Parse(R"({"location": "eastus"})");
  put.caller = owner_;
  put.if_none_match = "*";
  ArmError exists = Arm(Dispatch(put));
  EXPECT_EQ(exists.http_status, 412);
  EXPECT_EQ(exists.code, "PreconditionFailed");
  put.if_none_match.reset();
  put.if_match = "\"7\"";
  EXPECT_EQ(Arm(Dispatch(put)).code, "PreconditionFailed");
  put.if_match = "\"1\"";
  auto ok = Dispatch(put);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->etag, "\"2\"");
  // DELETE with a stale ETag is refused and deletes nothing.
  Request del;
  del.verb = Verb::kDelete;
  del.id = Group("g");
  del.caller = owner_;
  del.if_match = "\"1\"";
  EXPECT_EQ(Arm(Dispatch(del)).http_status, 412);
  EXPECT_TRUE(Call(Verb::kGet, Group("g")).ok());
  // If-Match on something that does not exist.
  put.id = Group("other");
  EXPECT_EQ(Arm(Dispatch(put)).code, "PreconditionFailed");
  EXPECT_EQ(Arm(Call(Verb::kGet, Group("other"))).http_status, 404);
}

TEST_F(ProviderTest, GroupBodyErrorsNameTheJsonPath) {
  ArmError unknown =
      Arm(Call(Verb::kPut, Group("g"), Parse(R"({"location": "eastus", "colour": "red"})")));
  EXPECT_EQ(unknown.http_status, 400);
  EXPECT_EQ(unknown.code, "InvalidRequestContent");
  EXPECT_EQ(unknown.target, "colour");
  EXPECT_NE(unknown.message.find("colour: unknown field"), std::string::npos) << unknown.message;
  ArmError nested =
      Arm(Call(Verb::kPut, Group("g"), Parse(R"({"location": "eastus", "properties": {"x": 1}})")));
  EXPECT_EQ(nested.target, "properties.x");
  ArmError no_location = Arm(Call(Verb::kPut, Group("g"), Parse("{}")));
  EXPECT_EQ(no_location.target, "location");
  EXPECT_EQ(no_location.message, "location: is required");
  ArmError region = Arm(Call(Verb::kPut, Group("g"), Parse(R"({"location": "mars"})")));
  EXPECT_EQ(region.target, "location");
  ArmError tag =
      Arm(Call(Verb::kPut, Group("g"), Parse(R"({"location": "eastus", "tags": {"a": 1}})")));
  EXPECT_EQ(tag.target, "tags.a");
  ArmError not_object = Arm(Call(Verb::kPut, Group("g"), Parse(R"([1])")));
  EXPECT_EQ(not_object.code, "InvalidRequestContent");
  ArmError name = Arm(Call(Verb::kPut, Group("bad name"), Parse(R"({"location": "eastus"})")));
  EXPECT_EQ(name.http_status, 400);
  EXPECT_NE(name.message.find("may contain only letters, digits"), std::string::npos);
  // Nothing was created by any of them.
  auto list = List(Sub(), meta::kGroupType);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(Names(*list).empty());
}

TEST_F(ProviderTest, GroupPatchChangesTagsOnly) {
  MakeGroup("g");
  auto patched = Call(Verb::kPatch, Group("g"), Parse(R"({"tags": {"env": "prod"}})"));
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(patched->http_status, 200);
  EXPECT_EQ(patched->body.Find("tags")->Find("env")->string_value(), "prod");
  EXPECT_EQ(patched->etag, "\"2\"");
  EXPECT_EQ(Arm(Call(Verb::kPatch, Group("g"), Parse(R"({"location": "westus2"})"))).http_status,
            409);
  EXPECT_EQ(Arm(Call(Verb::kPatch, Group("nope"), Parse("{}"))).http_status, 404);
}

TEST_F(ProviderTest, GroupLocationCannotChange) {
  MakeGroup("g");
  ArmError e = Arm(Call(Verb::kPut, Group("g"), Parse(R"({"location": "westus2"})")));
  EXPECT_EQ(e.http_status, 409);
  EXPECT_EQ(e.code, "InvalidResourceGroupLocation");
}

TEST_F(ProviderTest, GroupGetOfAMissingGroupIsResourceNotFoundNamingIt) {
  ArmError e = Arm(Call(Verb::kGet, Group("nope")));
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.code, "ResourceNotFound");
  EXPECT_EQ(e.target, Group("nope").ToString());
  EXPECT_NE(e.message.find("resource group 'nope' could not be found"), std::string::npos);
}

TEST_F(ProviderTest, GroupListIsOrderedByName) {
  for (const char* n : {"zeta", "Alpha", "mid"}) MakeGroup(n);
  auto list = List(Sub(), meta::kGroupType);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->http_status, 200);
  EXPECT_EQ(Names(*list), (std::vector<std::string>{"Alpha", "mid", "zeta"}));
  for (const Json& item : list->body.Find("value")->array_items()) {
    EXPECT_EQ(item.Find("etag")->string_value(), "\"1\"");
  }
}

TEST_F(ProviderTest, GroupDeleteIs200Then204AndRefusesANonEmptyGroup) {
  MakeGroup("g");
  ASSERT_TRUE(meta_
                  ->Update([&](meta::Transaction& txn) {
                    meta::Resource r{ResourceId::ForResource(services_.subscription, "g",
                                                             "Microsoft.Compute", "galleries", "x"),
                                     "eastus",
                                     Json::MakeObject(),
                                     Json::MakeObject(),
                                     0,
                                     0,
                                     0};
                    return txn.Create(r);
                  })
                  .ok());
  ArmError full = Arm(Call(Verb::kDelete, Group("g")));
  EXPECT_EQ(full.http_status, 409);
  EXPECT_EQ(full.code, "Conflict");
  EXPECT_NE(full.message.find("/providers/Microsoft.Compute/galleries/x"), std::string::npos);
  ASSERT_TRUE(meta_
                  ->Update([&](meta::Transaction& txn) {
                    return txn.Delete(ResourceId::ForResource(
                        services_.subscription, "g", "Microsoft.Compute", "galleries", "x"));
                  })
                  .ok());
  auto gone = Call(Verb::kDelete, Group("g"));
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(gone->http_status, 200);
  auto again = Call(Verb::kDelete, Group("g"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->http_status, 204);
}

TEST_F(ProviderTest, AStrangerGetsAuthorizationFailedNamingActionAndScope) {
  MakeGroup("g");
  ArmError put = Arm(Call(Verb::kPut, Group("h"), Parse(R"({"location": "eastus"})"), &stranger_));
  EXPECT_EQ(put.http_status, 403);
  EXPECT_EQ(put.code, "AuthorizationFailed");
  EXPECT_NE(
      put.message.find("'Microsoft.Resources/subscriptions/resourceGroups/write' over scope '" +
                       Group("h").ToString() + "'"),
      std::string::npos)
      << put.message;
  EXPECT_NE(Arm(Call(Verb::kGet, Group("g"), Json(), &stranger_))
                .message.find("Microsoft.Resources/subscriptions/resourceGroups/read"),
            std::string::npos);
  EXPECT_EQ(Arm(Call(Verb::kDelete, Group("g"), Json(), &stranger_)).http_status, 403);
  EXPECT_EQ(Arm(List(Sub(), meta::kGroupType, &stranger_)).http_status, 403);
  // Nothing changed.
  EXPECT_EQ(Arm(Call(Verb::kGet, Group("h"))).http_status, 404);
  EXPECT_TRUE(Call(Verb::kGet, Group("g")).ok());
}

TEST_F(ProviderTest, AnUnknownTypeIsInvalidResourceType) {
  ArmError e = Arm(Call(Verb::kGet, ResourceId::ForResource(services_.subscription, "g",
                                                            "Microsoft.Nope", "things", "x")));
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.code, "InvalidResourceType");
}

}  // namespace
}  // namespace imagesmith::api
