// Role evaluation through auth::Authorize on a real SQLite database: every
// built-in role x read / write / delete / action on each resource type, at
// scopes above, at, below and beside the assignment.
#include "auth/authorize.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "auth/directory.h"
#include "auth/role_assignments.h"
#include "base/random.h"

namespace imagesmith::auth {
namespace {

constexpr const char* kSub = "11111111-2222-3333-4444-555555555555";

ResourceId Id(const std::string& s) {
  auto id = ResourceId::Parse(s);
  EXPECT_TRUE(id.ok()) << s;
  return *id;
}
std::string Group(const std::string& g) {
  return std::string("/subscriptions/") + kSub + "/resourceGroups/" + g;
}

struct Operation {
  std::string type;  // the full resource type
  std::string verb;  // read, write, delete, action
  std::string action;
};

// Every operation the providers authorize, as Azure names them.
std::vector<Operation> Operations() {
  std::vector<Operation> ops;
  const std::vector<std::pair<std::string, std::string>> types = {
      {"Microsoft.VirtualMachineImages/imageTemplates", "run/action"},
      {"Microsoft.Compute/images", ""},
      {"Microsoft.Compute/galleries", "share/action"},
      {"Microsoft.Compute/galleries/images", ""},
      {"Microsoft.Compute/galleries/images/versions", ""},
      {"Microsoft.ManagedIdentity/userAssignedIdentities", "assign/action"},
      {"Microsoft.Authorization/roleAssignments", ""},
      {"Microsoft.Resources/subscriptions/resourceGroups", ""},
  };
  for (const auto& [type, action] : types) {
    for (const char* verb : {"read", "write", "delete"}) {
      ops.push_back({type, verb, type + "/" + verb});
    }
    if (!action.empty()) ops.push_back({type, "action", type + "/" + action});
  }
  ops.push_back({"Microsoft.VirtualMachineImages/imageTemplates", "action",
                 "Microsoft.VirtualMachineImages/imageTemplates/cancel/action"});
  return ops;
}

// What Azure's role definitions say, written out by hand (not through
// roles.cc's matcher): Reader reads; Contributor does everything except
// writing or deleting under Microsoft.Authorization and sharing galleries;
// Owner does everything.
bool Expected(const std::string& role, const Operation& op) {
  if (role == "Reader") return op.verb == "read";
  if (role == "Contributor") {
    if (op.type == "Microsoft.Authorization/roleAssignments" &&
        (op.verb == "write" || op.verb == "delete")) {
      return false;
    }
    return op.action != "Microsoft.Compute/galleries/share/action";
  }
  return role == "Owner";
}

class AuthorizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-authorize-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = meta::OpenSqliteMetaStore(*Env::Default(), dir_ + "/meta.db");
    ASSERT_TRUE(s.ok());
    meta_ = std::move(*s);
    ASSERT_TRUE(meta_
                    ->Update([&](meta::Transaction& t) -> Status {
                      ASSIGN_OR_RETURN(DirectoryInfo d, EnsureDirectory(t));
                      owner_ = OwnerPrincipal(d);
                      ASSIGN_OR_RETURN(NewServicePrincipal sp, CreateServicePrincipal(t, "ci"));
                      sp_ = sp.sp.ToPrincipal();
                      return Status::Ok();
                    })
                    .ok());
  }
  void TearDown() override { ASSERT_TRUE(Env::Default()->RemoveAll(dir_).ok()); }

  Status Assign(const Principal& p, const std::string& role, const std::string& scope) {
    return meta_->Update([&](meta::Transaction& t) {
      RoleAssignment a;
      a.name = NewUuidV4();
      a.scope = Id(scope);
      a.principal_id = p.object_id;
      a.principal_type = PrincipalTypeName(p.kind);
      a.role_guid = FindRole(role)->guid;
      return CreateRoleAssignment(t, a);
    });
  }
  Status Check(const Principal& p, const std::string& action, const std::string& scope) {
    Status out;
    Status s = meta_->Read([&](meta::Transaction& t) {
      out = Authorize(t, p, action, Id(scope));
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok());
    return out;
  }
  void ClearAssignments() {
    ASSERT_TRUE(meta_
                    ->Update([&](meta::Transaction& t) -> Status {
                      ASSIGN_OR_RETURN(std::vector<RoleAssignment> all, ListRoleAssignments(t));
                      for (const RoleAssignment& a : all) {
                        RETURN_IF_ERROR(DeleteRoleAssignment(t, a.name));
                      }
                      return Status::Ok();
                    })
                    .ok());
  }

  std::string dir_;
  std::unique_ptr<meta::MetaStore> meta_;
  Principal owner_;
  Principal sp_;
};

struct Placement {
  std::string name;
  std::string assignment;  // where the role is assigned
  // Targets that the assignment covers, and ones it does not.
  std::vector<std::string> covered;
  std::vector<std::string> not_covered;
};

TEST_F(AuthorizeTest, RoleMatrixFollowsAzuresDefinitionsAndInheritsDownward) {
  std::string gallery = Group("rg1") + "/providers/Microsoft.Compute/galleries/gal";
  std::vector<Placement> placements = {
      {"subscription",
       std::string("/subscriptions/") + kSub,
       {std::string("/subscriptions/") + kSub, Group("rg1"),
        gallery + "/images/def/versions/1.0.0"},
       {"/subscriptions/99999999-2222-3333-4444-555555555555/resourceGroups/rg1"}},
      {"group",
       Group("rg1"),
       {Group("rg1"), gallery, gallery + "/images/def",
        Group("rg1") + "/providers/Microsoft.VirtualMachineImages/imageTemplates/t"},
       {std::string("/subscriptions/") + kSub, Group("rg2"), Group("rg10"),
        Group("rg2") + "/providers/Microsoft.Compute/galleries/gal"}},
      {"resource",
       gallery,
       {gallery, gallery + "/images/def", gallery + "/images/def/versions/1.0.0"},
       {Group("rg1"), std::string("/subscriptions/") + kSub,
        Group("rg1") + "/providers/Microsoft.Compute/galleries/gal2",
        Group("rg1") + "/providers/Microsoft.Compute/galleries/gal2/images/def",
        Group("rg1") + "/providers/Microsoft.Compute/images/gal"}},
  };
  int checks = 0;
  for (const char* role : {"Owner", "Contributor", "Reader"}) {
    for (const Placement& pl : placements) {
      ClearAssignments();
      ASSERT_TRUE(Assign(sp_, role, pl.assignment).ok());
      for (const Operation& op : Operations()) {
        for (const std::string& target : pl.covered) {
          Status s = Check(sp_, op.action, target);
          EXPECT_EQ(s.ok(), Expected(role, op))
              << role << " at " << pl.name << ": " << op.action << " on " << target;
          if (!s.ok()) {
            EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
          }
          ++checks;
        }
        for (const std::string& target : pl.not_covered) {
          Status s = Check(sp_, op.action, target);
          EXPECT_FALSE(s.ok()) << role << " at " << pl.name << " leaked " << op.action << " to "
                               << target;
          ++checks;
        }
      }
    }
  }
  EXPECT_GT(checks, 1000);
}

TEST_F(AuthorizeTest, DenialNamesTheClientActionAndScopeLikeAzure) {
  Status s = Check(sp_, "Microsoft.Compute/galleries/write", Group("rg1"));
  ASSERT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "AuthorizationFailed: The client '" + sp_.name + "' with object id '" +
                             sp_.object_id +
                             "' does not have authorization to perform action "
                             "'Microsoft.Compute/galleries/write' over scope '" +
                             Group("rg1") + "' or the scope is invalid.");
}

TEST_F(AuthorizeTest, OwnerOfTheDataDirectoryIsAllowedEverythingWithoutAssignments) {
  for (const Operation& op : Operations()) {
    EXPECT_TRUE(Check(owner_, op.action, Group("any")).ok()) << op.action;
  }
}

TEST_F(AuthorizeTest, AssignmentsAtSeveralScopesAddUp) {
  ASSERT_TRUE(Assign(sp_, "Reader", std::string("/subscriptions/") + kSub).ok());
  ASSERT_TRUE(Assign(sp_, "Contributor", Group("staging")).ok());
  EXPECT_TRUE(Check(sp_, "Microsoft.Compute/images/read", Group("rg1")).ok());
  EXPECT_FALSE(Check(sp_, "Microsoft.Compute/images/write", Group("rg1")).ok());
  EXPECT_TRUE(Check(sp_, "Microsoft.Compute/images/write",
                    Group("staging") + "/providers/Microsoft.Compute/images/i")
                  .ok());
  Status held = meta_->Read([&](meta::Transaction& t) -> Status {
    ASSIGN_OR_RETURN(bool staging,
                     HoldsRole(t, sp_, {"Contributor", "Owner"}, Id(Group("staging"))));
    ASSIGN_OR_RETURN(bool other, HoldsRole(t, sp_, {"Contributor", "Owner"}, Id(Group("rg1"))));
    EXPECT_TRUE(staging);
    EXPECT_FALSE(other);
    return Status::Ok();
  });
  ASSERT_TRUE(held.ok());
}

TEST_F(AuthorizeTest, DeletingAScopeDeletesTheAssignmentsAtAndBelowIt) {
  std::string gallery = Group("rg1") + "/providers/Microsoft.Compute/galleries/gal";
  ASSERT_TRUE(Assign(sp_, "Reader", Group("rg1")).ok());
  ASSERT_TRUE(Assign(sp_, "Owner", gallery).ok());
  ASSERT_TRUE(Assign(sp_, "Owner", gallery + "/images/def").ok());
  ASSERT_TRUE(Assign(sp_, "Owner", gallery + "2").ok());  // beside: "gal2"
  Status s = meta_->Update([&](meta::Transaction& t) -> Status {
    ASSIGN_OR_RETURN(int n, DeleteRoleAssignmentsUnder(t, Id(gallery)));
    EXPECT_EQ(n, 2);
    ASSIGN_OR_RETURN(std::vector<RoleAssignment> left, ListRoleAssignments(t));
    EXPECT_EQ(left.size(), 2u);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(Check(sp_, "Microsoft.Compute/galleries/write", gallery).ok());
  EXPECT_TRUE(Check(sp_, "Microsoft.Compute/galleries/read", gallery).ok());
}

TEST_F(AuthorizeTest, DuplicateAssignmentIsRoleAssignmentExists) {
  ASSERT_TRUE(Assign(sp_, "Reader", Group("rg1")).ok());
  Status again = Assign(sp_, "reader", Group("RG1"));
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.message().rfind("RoleAssignmentExists: ", 0), 0u);
}

TEST(RoleAssignmentIdTest, ParsesEveryScopeAndRejectsBadIds) {
  std::string guid = "0d4f6f0e-0000-4000-8000-000000000001";
  std::string sub = std::string("/subscriptions/") + kSub;
  for (const std::string& scope :
       {sub, Group("rg"), Group("rg") + "/providers/Microsoft.Compute/galleries/g/images/d"}) {
    auto ref =
        ParseRoleAssignmentId(scope + "/providers/Microsoft.Authorization/roleAssignments/" + guid);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    EXPECT_EQ(ref->scope.ToString(), scope);
    EXPECT_EQ(ref->name, guid);
  }
  auto list = ParseRoleAssignmentId(sub + "/providers/Microsoft.Authorization/roleAssignments",
                                    /*allow_no_name=*/true);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->name, "");
  EXPECT_FALSE(
      ParseRoleAssignmentId(sub + "/providers/Microsoft.Authorization/roleAssignments").ok());
  EXPECT_FALSE(
      ParseRoleAssignmentId(sub + "/providers/Microsoft.Authorization/roleAssignments/x").ok());
  EXPECT_FALSE(ParseRoleAssignmentId("/subscriptions/nope/providers/Microsoft.Authorization/"
                                     "roleAssignments/" +
                                     guid)
                   .ok());
  EXPECT_TRUE(ScopeCovers(Id(Group("rg")), Id(Group("RG") + "/providers/A.B/c/d")));
  EXPECT_FALSE(ScopeCovers(Id(Group("rg")), Id(Group("rg2"))));
}

}  // namespace
}  // namespace imagesmith::auth
