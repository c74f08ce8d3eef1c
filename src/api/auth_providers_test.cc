// The identity and role-assignment providers and accounts.h, on a real data
// directory (OpenLocal on a temporary IMAGESMITH_HOME).
#include "api/auth_providers.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <set>

#include "api/accounts.h"
#include "api/arm_error.h"
#include "api/local.h"
#include "api/operations.h"
#include "api/resource_providers.h"
#include "api/template_provider.h"
#include "auth/authorize.h"
#include "auth/directory.h"
#include "base/random.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

constexpr const char* kIdentities = "Microsoft.ManagedIdentity/userAssignedIdentities";
constexpr const char* kAssignments = "Microsoft.Authorization/roleAssignments";

class AuthProvidersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-api-auth-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    setenv("IMAGESMITH_HOME", dir_.c_str(), 1);
    auto l = OpenLocal(*Env::Default());
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    local_ = std::move(*l);
    sub_ = local_->services.subscription;
    for (const char* g : {"rg1", "rg2"}) {
      ASSERT_TRUE(local_->meta
                      ->Update([&](meta::Transaction& t) {
                        return meta::CreateGroup(t, sub_, g, *Region::Parse("eastus"),
                                                 Json::MakeObject())
                            .status();
                      })
                      .ok());
    }
  }
  void TearDown() override {
    local_.reset();
    ASSERT_TRUE(Env::Default()->RemoveAll(dir_).ok());
  }

  ResourceId Identity(const std::string& group, const std::string& name) {
    return ResourceId::ForResource(sub_, group, "Microsoft.ManagedIdentity",
                                   "userAssignedIdentities", name);
  }
  StatusOr<Response> PutIdentity(const ResourceId& id, const Caller& caller,
                                 const std::string& location = "eastus") {
    Request r;
    r.verb = Verb::kPut;
    r.id = id;
    r.body = Json::MakeObject();
    r.body.Set("location", Json::String(location));
    r.caller = caller;
    return local_->registry->Dispatch(local_->services, r);
  }
  StatusOr<Response> Call(Verb verb, const ResourceId& id, const Caller& caller) {
    Request r;
    r.verb = verb;
    r.id = id;
    r.list_type = kIdentities;
    r.caller = caller;
    return local_->registry->Dispatch(local_->services, r);
  }
  StatusOr<Response> PutAssignment(const ResourceId& scope, const std::string& role,
                                   const std::string& principal_id, const Caller& caller,
                                   const std::string& name = NewUuidV4()) {
    Request r;
    r.verb = Verb::kPut;
    r.id = scope;
    r.extension_type = kAssignments;
    r.extension_name = name;
    Json props = Json::MakeObject();
    props.Set("roleDefinitionId", Json::String(auth::FindRole(role)->IdIn(sub_)));
    props.Set("principalId", Json::String(principal_id));
    r.body = Json::MakeObject();
    r.body.Set("properties", std::move(props));
    r.caller = caller;
    return local_->registry->Dispatch(local_->services, r);
  }
  // A service principal made with create-for-rbac, and a Caller for it.
  Caller NewSp(const std::string& name, const std::string& role = "",
               const std::vector<std::string>& scopes = {}) {
    auto sp = CreateForRbac(local_->services, local_->owner, name, role, scopes);
    EXPECT_TRUE(sp.ok()) << sp.status().ToString();
    auto p = ResolveAssignee(local_->services, sp->app_id);
    EXPECT_TRUE(p.ok());
    return Caller{*p};
  }
  std::string Group(const std::string& g) {
    return ResourceId::ForResourceGroup(sub_, g).ToString();
  }

  std::string dir_;
  std::unique_ptr<Local> local_;
  std::string sub_;
};

std::string Code(const Status& s) { return ToArmError(s).code; }

TEST_F(AuthProvidersTest, IdentityLifecycleGivesPrincipalClientAndTenantIds) {
  auto created = PutIdentity(Identity("rg1", "builder-id"), local_->owner);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->http_status, 201);
  const Json& props = *created->body.Find("properties");
  std::string principal = props.Find("principalId")->string_value();
  EXPECT_TRUE(IsGuid(principal));
  EXPECT_TRUE(IsGuid(props.Find("clientId")->string_value()));
  EXPECT_EQ(props.Find("tenantId")->string_value(), [&] {
    std::string t;
    EXPECT_TRUE(local_->meta
                    ->Read([&](meta::Transaction& txn) -> Status {
                      ASSIGN_OR_RETURN(auth::DirectoryInfo d, auth::ReadDirectory(txn));
                      t = d.tenant_id;
                      return Status::Ok();
                    })
                    .ok());
    return t;
  }());
  EXPECT_EQ(created->body.Find("type")->string_value(), kIdentities);

  auto again = PutIdentity(Identity("rg1", "builder-id"), local_->owner);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->http_status, 200);
  EXPECT_EQ(again->body.Find("properties")->Find("principalId")->string_value(), principal);
  EXPECT_EQ(Code(PutIdentity(Identity("rg1", "builder-id"), local_->owner, "westus2").status()),
            "Conflict");

  auto list = Call(Verb::kList, ResourceId::ForSubscription(sub_), local_->owner);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->body.Find("value")->array_items().size(), 1u);
  Caller sp = NewSp("watcher", "Reader", {Identity("rg1", "builder-id").ToString()});
  EXPECT_TRUE(Call(Verb::kGet, Identity("rg1", "builder-id"), sp).ok());
  auto deleted = Call(Verb::kDelete, Identity("rg1", "builder-id"), local_->owner);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->http_status, 200);
  EXPECT_EQ(Call(Verb::kDelete, Identity("rg1", "builder-id"), local_->owner)->http_status, 204);
  EXPECT_EQ(Code(Call(Verb::kGet, Identity("rg1", "builder-id"), local_->owner).status()),
            "ResourceNotFound");
  // The grant on the deleted identity went with it: a new identity of the
  // same name does not inherit it.
  ASSERT_TRUE(PutIdentity(Identity("rg1", "builder-id"), local_->owner).ok());
  EXPECT_EQ(Code(Call(Verb::kGet, Identity("rg1", "builder-id"), sp).status()),
            "AuthorizationFailed");
}

TEST_F(AuthProvidersTest, IdentityBadInputIsRefusedNamingTheProblem) {
  EXPECT_EQ(Code(PutIdentity(Identity("nogroup", "abc"), local_->owner).status()),
            "ResourceGroupNotFound");
  EXPECT_EQ(Code(PutIdentity(Identity("rg1", "a"), local_->owner).status()), "InvalidResourceName");
  auto bad_region = PutIdentity(Identity("rg1", "abc"), local_->owner, "moon");
  EXPECT_EQ(Code(bad_region.status()), "InvalidRequestContent");
  EXPECT_NE(bad_region.status().message().find("location"), std::string::npos);
  Request r;
  r.verb = Verb::kPut;
  r.id = Identity("rg1", "abc");
  r.body = *ParseJson(R"({"location": "eastus", "sku": "x"})");
  r.caller = local_->owner;
  auto unknown = local_->registry->Dispatch(local_->services, r);
  EXPECT_EQ(Code(unknown.status()), "InvalidRequestContent");
  EXPECT_NE(unknown.status().message().find("sku"), std::string::npos);
}

TEST_F(AuthProvidersTest, RoleAssignmentsDecideWhatAServicePrincipalMayDo) {
  Caller reader = NewSp("reader-sp", "Reader", {Group("rg1")});
  Caller contributor = NewSp("contrib-sp", "Contributor", {Group("rg1")});
  // Reader reads but may not write; the Contributor writes in rg1 only.
  ASSERT_TRUE(PutIdentity(Identity("rg1", "one"), local_->owner).ok());
  EXPECT_TRUE(Call(Verb::kGet, Identity("rg1", "one"), reader).ok());
  EXPECT_EQ(Code(PutIdentity(Identity("rg1", "two"), reader).status()), "AuthorizationFailed");
  EXPECT_EQ(Code(Call(Verb::kDelete, Identity("rg1", "one"), reader).status()),
            "AuthorizationFailed");
  EXPECT_TRUE(PutIdentity(Identity("rg1", "two"), contributor).ok());
  EXPECT_EQ(Code(PutIdentity(Identity("rg2", "two"), contributor).status()), "AuthorizationFailed");
  EXPECT_EQ(Code(Call(Verb::kGet, Identity("rg2", "xyz"), reader).status()), "AuthorizationFailed");
  // Listing the subscription shows a group Reader what it may read.
  auto list = Call(Verb::kList, ResourceId::ForSubscription(sub_), reader);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->body.Find("value")->array_items().size(), 2u);
  // Only an Owner may assign roles; a Contributor may not.
  EXPECT_EQ(Code(PutAssignment(*ResourceId::Parse(Group("rg1")), "Owner",
                               contributor.principal.object_id, contributor)
                     .status()),
            "AuthorizationFailed");
  Caller owner_sp = NewSp("owner-sp", "Owner", {Group("rg2")});
  auto by_owner = PutAssignment(*ResourceId::Parse(Group("rg2")), "Reader",
                                reader.principal.object_id, owner_sp);
  ASSERT_TRUE(by_owner.ok()) << by_owner.status().ToString();
  EXPECT_EQ(by_owner->http_status, 201);
  EXPECT_TRUE(Call(Verb::kGet, Identity("rg2", "xyz"), reader).status().code() ==
              StatusCode::kNotFound);  // now allowed to look, and it is not there
}

TEST_F(AuthProvidersTest, RoleAssignmentProviderValidatesAndListsAtAboveAndBelow) {
  Caller sp = NewSp("plain");
  ResourceId sub = ResourceId::ForSubscription(sub_);
  ResourceId rg1 = *ResourceId::Parse(Group("rg1"));
  ASSERT_TRUE(PutIdentity(Identity("rg1", "idy"), local_->owner).ok());
  std::string name = NewUuidV4();
  auto at_sub = PutAssignment(sub, "Reader", sp.principal.object_id, local_->owner, name);
  ASSERT_TRUE(at_sub.ok()) << at_sub.status().ToString();
  EXPECT_EQ(
      at_sub->body.Find("id")->string_value(),
      "/subscriptions/" + sub_ + "/providers/Microsoft.Authorization/roleAssignments/" + name);
  EXPECT_EQ(at_sub->body.Find("properties")->Find("principalType")->string_value(),
            "ServicePrincipal");
  // The same PUT again is idempotent; the same grant under another name is not.
  EXPECT_TRUE(PutAssignment(sub, "Reader", sp.principal.object_id, local_->owner, name).ok());
  EXPECT_EQ(Code(PutAssignment(sub, "Reader", sp.principal.object_id, local_->owner).status()),
            "RoleAssignmentExists");
  EXPECT_EQ(Code(PutAssignment(rg1, "Reader", NewUuidV4(), local_->owner).status()),
            "PrincipalNotFound");
  EXPECT_EQ(Code(PutAssignment(*ResourceId::Parse(Group("nope")), "Reader", sp.principal.object_id,
                               local_->owner)
                     .status()),
            "ResourceGroupNotFound");
  EXPECT_EQ(Code(PutAssignment(rg1, "Reader", sp.principal.object_id, local_->owner, "not-a-guid")
                     .status()),
            "InvalidRoleAssignmentId");
  ASSERT_TRUE(
      PutAssignment(Identity("rg1", "idy"), "Contributor", sp.principal.object_id, local_->owner)
          .ok());

  Request list;
  list.verb = Verb::kList;
  list.id = rg1;
  list.list_type = kAssignments;
  list.caller = local_->owner;
  auto listed = local_->registry->Dispatch(local_->services, list);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->body.Find("value")->array_items().size(), 2u);  // above (sub) and below
  list.id = *ResourceId::Parse(Group("rg2"));
  EXPECT_EQ(
      local_->registry->Dispatch(local_->services, list)->body.Find("value")->array_items().size(),
      1u);  // only the subscription's

  Request del;
  del.verb = Verb::kDelete;
  del.id = sub;
  del.extension_type = kAssignments;
  del.extension_name = name;
  del.caller = sp;  // a Reader may not delete assignments
  EXPECT_EQ(Code(local_->registry->Dispatch(local_->services, del).status()),
            "AuthorizationFailed");
  del.caller = local_->owner;
  EXPECT_EQ(local_->registry->Dispatch(local_->services, del)->http_status, 200);
  EXPECT_EQ(local_->registry->Dispatch(local_->services, del)->http_status, 204);
}

TEST_F(AuthProvidersTest, ManagedIdentityIsAPrincipalForRoleAssignments) {
  auto idy = PutIdentity(Identity("rg1", "template-id"), local_->owner);
  ASSERT_TRUE(idy.ok());
  auto p = ResolveAssignee(local_->services, Identity("rg1", "template-id").ToString());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->kind, auth::PrincipalKind::kManagedIdentity);
  ASSERT_TRUE(
      PutAssignment(*ResourceId::Parse(Group("rg2")), "Contributor", p->object_id, local_->owner)
          .ok());
  Status s = local_->meta->Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(auth::Principal build,
                     auth::PrincipalForIdentity(txn, Identity("rg1", "template-id")));
    EXPECT_TRUE(auth::Authorize(
                    txn, build, "Microsoft.Compute/galleries/images/versions/write",
                    *ResourceId::Parse(Group("rg2") + "/providers/Microsoft.Compute/galleries/g/"
                                                      "images/d/versions/1.0.0"))
                    .ok());
    Status denied = auth::Authorize(txn, build, "Microsoft.Compute/galleries/write",
                                    *ResourceId::Parse(Group("rg1")));
    EXPECT_EQ(Code(denied), "AuthorizationFailed");
    EXPECT_NE(denied.message().find(Identity("rg1", "template-id").ToString()), std::string::npos);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST_F(AuthProvidersTest, CreateForRbacIsAllOrNothingAndTokensFollowTheSecret) {
  auto bad = CreateForRbac(local_->services, local_->owner, "half", "Reader",
                           {Group("rg1"), Group("missing")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("missing"), std::string::npos);
  EXPECT_EQ(ResolveAssignee(local_->services, "half").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CreateForRbac(local_->services, local_->owner, "x", "Superuser", {Group("rg1")})
                .status()
                .code(),
            StatusCode::kInvalidArgument);

  auto sp = CreateForRbac(local_->services, local_->owner, "ci", "Contributor", {Group("rg1")});
  ASSERT_TRUE(sp.ok()) << sp.status().ToString();
  EXPECT_EQ(sp->assignments.size(), 1u);
  auto token = ServicePrincipalToken(local_->services, sp->app_id, sp->password);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(token->tenant, sp->tenant);
  auto key = auth::SigningKey::LoadOrCreate(local_->services.data_dir);
  ASSERT_TRUE(key.ok());
  auto caller = AuthenticateRequest(local_->services, *key, "Bearer " + token->access_token);
  ASSERT_TRUE(caller.ok()) << caller.status().ToString();
  EXPECT_EQ(caller->principal.name, sp->app_id);
  EXPECT_EQ(Code(AuthenticateRequest(local_->services, *key, "").status()), "AuthenticationFailed");
  EXPECT_EQ(
      ToArmError(AuthenticateRequest(local_->services, *key, "Bearer a.b.c").status()).http_status,
      401);
  auto wrong = ServicePrincipalToken(local_->services, sp->app_id, sp->password + "x");
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated);
  // Running it again resets the secret, as az does: the old one stops working.
  auto again = CreateForRbac(local_->services, local_->owner, "ci", "Contributor", {Group("rg1")});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->existed);
  EXPECT_EQ(again->app_id, sp->app_id);
  EXPECT_EQ(ServicePrincipalToken(local_->services, sp->app_id, sp->password).status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_TRUE(ServicePrincipalToken(local_->services, sp->app_id, again->password).ok());
  // Only the owner makes service principals.
  Caller ci{*ResolveAssignee(local_->services, sp->app_id)};
  EXPECT_EQ(CreateForRbac(local_->services, ci, "other", "", {}).status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(AuthProvidersTest, PermissionsAreTheCallersRolesAtTheScope) {
  auto perms = [&](const std::string& scope, const Caller& caller) {
    Request r;
    r.verb = Verb::kList;
    r.id = *ResourceId::Parse(scope);
    r.list_type = "Microsoft.Authorization/permissions";
    r.caller = caller;
    return local_->registry->Dispatch(local_->services, r);
  };
  auto owner = perms(Group("rg1"), local_->owner);
  ASSERT_TRUE(owner.ok()) << owner.status().ToString();
  EXPECT_EQ(
      owner->body.Dump(-1),
      R"({"value":[{"actions":["*"],"notActions":[],"dataActions":[],"notDataActions":[]}]})");
  Caller reader = NewSp("perm-reader", "Reader", {Group("rg1")});
  auto at = perms(Group("rg1") + "/providers/Microsoft.Compute/galleries/gal", reader);
  ASSERT_TRUE(at.ok());
  const Json& value = *at->body.Find("value");
  ASSERT_EQ(value.array_items().size(), 1u);
  EXPECT_EQ(value.array_items()[0].Find("actions")->Dump(-1), R"(["*/read"])");
  // Beside the assignment: nothing, and no error (it is about the caller).
  auto beside = perms(Group("rg2"), reader);
  ASSERT_TRUE(beside.ok());
  EXPECT_TRUE(beside->body.Find("value")->array_items().empty());
}

TEST_F(AuthProvidersTest, OperationListShowsOnlyOperationsTheCallerMayRead) {
  auto tpl = [&](const std::string& g, const std::string& n) {
    return ResourceId::ForResource(sub_, g, "Microsoft.VirtualMachineImages", "imageTemplates", n);
  };
  auto a = local_->operations->Enqueue(kTemplateRunOperation, tpl("rg1", "a"), "eastus",
                                       Json::MakeObject());
  auto b = local_->operations->Enqueue(kTemplateRunOperation, tpl("rg2", "b"), "eastus",
                                       Json::MakeObject());
  ASSERT_TRUE(a.ok() && b.ok());
  auto list = [&](const std::string& scope, const Caller& caller,
                  std::map<std::string, std::string> params = {}) {
    Request r;
    r.verb = Verb::kList;
    r.id = *ResourceId::Parse(scope);
    r.list_type = kOperationListType;
    r.caller = caller;
    r.params = std::move(params);
    return local_->registry->Dispatch(local_->services, r);
  };
  auto names = [](const StatusOr<Response>& r) {
    std::set<std::string> out;
    for (const Json& j : r->body.Find("value")->array_items()) {
      out.insert(j.Find("name")->string_value());
    }
    return out;
  };
  const std::string sub = "/subscriptions/" + sub_;
  auto all = list(sub, local_->owner);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(names(all), (std::set<std::string>{a->id, b->id}));
  const Json& first = all->body.Find("value")->array_items()[0];
  EXPECT_EQ(first.Find("status")->string_value(), "InProgress");
  EXPECT_EQ(first.Find("type")->string_value(), kTemplateRunOperation);
  // A Reader of rg1 sees rg1's operation only, at the subscription and at rg1.
  Caller reader = NewSp("ops-reader", "Reader", {Group("rg1")});
  auto seen = list(sub, reader);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(names(seen), (std::set<std::string>{a->id}));
  EXPECT_EQ(names(list(Group("rg1"), reader)), (std::set<std::string>{a->id}));
  EXPECT_TRUE(names(list(Group("rg2"), reader)).empty());
  Caller sub_reader = NewSp("ops-sub-reader", "Reader", {sub});
  EXPECT_EQ(names(list(sub, sub_reader)), (std::set<std::string>{a->id, b->id}));
  EXPECT_EQ(names(list(Group("rg2"), sub_reader)), (std::set<std::string>{b->id}));
  // Filters: a target, a status; bad ones name the parameter.
  EXPECT_EQ(names(list(sub, local_->owner, {{"target", tpl("rg2", "b").ToString()}})),
            (std::set<std::string>{b->id}));
  EXPECT_TRUE(names(list(sub, local_->owner, {{"status", "Succeeded"}})).empty());
  EXPECT_EQ(names(list(sub, local_->owner, {{"status", "inprogress"}})).size(), 2u);
  auto bad = list(sub, local_->owner, {{"status", "Done"}});
  EXPECT_EQ(Code(bad.status()), "InvalidParameter");
  EXPECT_NE(bad.status().message().find("status must be"), std::string::npos);
  EXPECT_EQ(Code(list(sub, local_->owner, {{"target", "nope"}}).status()), "InvalidParameter");
}

}  // namespace
}  // namespace imagesmith::api
