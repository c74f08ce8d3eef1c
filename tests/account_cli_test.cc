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

TEST(AccountCliTest, DamagedAccountFileIsReportedNotReplaced) {
  std::string home = MakeTempDir();
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(home + "/account.json", "{\"id\": 42}").ok());
  CliResult r = RunCli({"account", "show"}, "", {{"IMAGESMITH_HOME", home}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("account.json is damaged"), std::string::npos) << r.err;
  EXPECT_EQ(*Env::Default()->ReadFile(home + "/account.json", 100), "{\"id\": 42}");
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
