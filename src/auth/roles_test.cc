#include "auth/roles.h"

#include <gtest/gtest.h>

namespace imagesmith::auth {
namespace {

TEST(RolesTest, WildcardsMatchAnyRunIgnoringCase) {
  EXPECT_TRUE(ActionMatches("*", "Microsoft.Compute/galleries/write"));
  EXPECT_TRUE(ActionMatches("*/read", "Microsoft.Compute/galleries/images/read"));
  EXPECT_TRUE(ActionMatches("*/READ", "microsoft.compute/galleries/read"));
  EXPECT_FALSE(ActionMatches("*/read", "Microsoft.Compute/galleries/write"));
  EXPECT_FALSE(ActionMatches("*/read", "Microsoft.Compute/galleries/readers/write"));
  EXPECT_TRUE(ActionMatches("Microsoft.Authorization/*/Write",
                            "Microsoft.Authorization/roleAssignments/write"));
  EXPECT_FALSE(ActionMatches("Microsoft.Authorization/*/Write",
                             "Microsoft.Authorization/roleAssignments/read"));
  EXPECT_FALSE(ActionMatches("Microsoft.Compute/*", "Microsoft.ComputeX/a/read"));
}

TEST(RolesTest, BuiltinRolesHaveAzuresIdsAndMeaning) {
  const RoleDefinition* reader = FindRole("reader");
  const RoleDefinition* contributor = FindRole("Contributor");
  const RoleDefinition* owner = FindRole("8e3af657-a8ff-443c-a75c-2fe8c4bcb635");
  ASSERT_TRUE(reader && contributor && owner);
  EXPECT_EQ(reader->guid, "acdd72a7-3385-48ef-bd42-f606fba81ae7");
  EXPECT_EQ(contributor->guid, "b24988ac-6180-42a0-ab88-20f7382dd24c");
  EXPECT_EQ(owner->name, "Owner");
  EXPECT_EQ(
      FindRole("/subscriptions/11111111-2222-3333-4444-555555555555/providers/"
               "Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
      reader);
  EXPECT_EQ(FindRole("Storage Blob Data Reader"), nullptr);

  EXPECT_TRUE(reader->Allows("Microsoft.Authorization/roleAssignments/read"));
  EXPECT_FALSE(reader->Allows("Microsoft.VirtualMachineImages/imageTemplates/run/action"));
  EXPECT_FALSE(reader->Allows("Microsoft.Compute/galleries/delete"));
  EXPECT_TRUE(contributor->Allows("Microsoft.VirtualMachineImages/imageTemplates/run/action"));
  EXPECT_TRUE(contributor->Allows("Microsoft.Authorization/roleAssignments/read"));
  EXPECT_FALSE(contributor->Allows("Microsoft.Authorization/roleAssignments/write"));
  EXPECT_FALSE(contributor->Allows("Microsoft.Authorization/roleAssignments/delete"));
  EXPECT_FALSE(contributor->Allows("Microsoft.Authorization/elevateAccess/action"));
  EXPECT_FALSE(contributor->Allows("Microsoft.Compute/galleries/share/action"));
  EXPECT_TRUE(owner->Allows("Microsoft.Authorization/roleAssignments/write"));
  EXPECT_TRUE(owner->Allows("Microsoft.Compute/galleries/share/action"));
}

}  // namespace
}  // namespace imagesmith::auth
