// End-to-end tests of 'imagesmith account'.
#include <gtest/gtest.h>

#include "base/json.h"
#include "base/resource_id.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

TEST(AccountCliTest, ShowCreatesOneStableDefaultSubscription) {
  std::string home = MakeTempDir() + "/data";
  CliResult first = RunCli({"account", "show"}, "", {{"IMAGESMITH_HOME", home}});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto j = ParseJson(first.out);
  ASSERT_TRUE(j.ok());
  std::string id = j->Find("id")->string_value();
  EXPECT_TRUE(IsGuid(id));
  EXPECT_EQ(j->Find("resourceId")->string_value(), "/subscriptions/" + id);
  CliResult second = RunCli({"account", "show"}, "", {{"IMAGESMITH_HOME", home}});
  EXPECT_EQ(second.out, first.out);
}

TEST(AccountCliTest, ListHoldsTheDefaultSubscriptionAsShowPrintsIt) {
  std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", MakeTempDir() + "/data"}};
  CliResult show = RunCli({"account", "show"}, "", env);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  CliResult list = RunCli({"account", "list"}, "", env);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto j = ParseJson(list.out);
  ASSERT_TRUE(j.ok() && j->is_array()) << list.out;
  ASSERT_EQ(j->array_items().size(), 1u);
  EXPECT_EQ(j->array_items()[0].Dump(), ParseJson(show.out)->Dump());
}

TEST(AccountCliTest, DamagedDatabaseIsReportedNotReplaced) {
  std::string home = MakeTempDir();
  std::string junk(8192, 'j');
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(home + "/meta.db", junk).ok());
  CliResult r = RunCli({"account", "show"}, "", {{"IMAGESMITH_HOME", home}});
  EXPECT_EQ(r.exit_code, 70);
  EXPECT_NE(r.err.find("meta.db"), std::string::npos) << r.err;
  EXPECT_EQ(*Env::Default()->ReadFile(home + "/meta.db", 1 << 20), junk);
}

TEST(GroupCliTest, CreateShowListDeleteFollowAzureRules) {
  std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", MakeTempDir()}};
  CliResult c = RunCli(
      {"group", "create", "-n", "Images", "-l", "East US", "--tags", "team=platform"}, "", env);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto g = ParseJson(c.out);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->Find("location")->string_value(), "eastus");
  EXPECT_EQ(g->Find("tags")->Find("team")->string_value(), "platform");
  EXPECT_EQ(g->Find("type")->string_value(), "Microsoft.Resources/resourceGroups");

  CliResult dup = RunCli({"group", "create", "-n", "IMAGES", "-l", "eastus"}, "", env);
  EXPECT_EQ(dup.exit_code, 4);
  EXPECT_EQ(dup.err, "ERROR: resource group 'IMAGES' already exists\n");

  CliResult show = RunCli({"group", "show", "-n", "images"}, "", env);
  EXPECT_EQ(show.exit_code, 0);
  CliResult list = RunCli({"group", "list", "-o", "tsv"}, "", env);
  EXPECT_NE(list.out.find("\teastus\tImages\t"), std::string::npos) << list.out;

  CliResult bad = RunCli({"group", "create", "-n", "bad name", "-l", "eastus"}, "", env);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("may contain only letters, digits"), std::string::npos);
  CliResult nowhere = RunCli({"group", "create", "-n", "x", "-l", "mars"}, "", env);
  EXPECT_EQ(nowhere.exit_code, 1);
  EXPECT_NE(nowhere.err.find("unknown region \"mars\""), std::string::npos);

  CliResult del = RunCli({"group", "delete", "-n", "images", "--yes"}, "", env);
  EXPECT_EQ(del.exit_code, 0) << del.err;
  CliResult gone = RunCli({"group", "show", "-n", "images"}, "", env);
  EXPECT_EQ(gone.exit_code, 3);
  EXPECT_NE(gone.err.find("imagesmith group create -n images"), std::string::npos) << gone.err;
}

TEST(AccountCliTest, ListLocationsMarksImageBuilderRegions) {
  CliResult r = RunCli({"account", "list-locations", "--image-builder"});
  ASSERT_EQ(r.exit_code, 0);
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok() && j->is_array());
  EXPECT_EQ(j->array_items().size(), 35u);  // the template reference's list
  EXPECT_EQ(j->array_items()[0].Find("name")->string_value(), "eastus");
}

}  // namespace
}  // namespace imagesmith::e2e
