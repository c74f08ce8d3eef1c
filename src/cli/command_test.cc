#include "cli/command.h"

#include <gtest/gtest.h>

#include <sstream>

namespace imagesmith::cli {
namespace {

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddGroup("sig", "Galleries.");
    registry_.AddGroup("sig image-version", "Versions.");
    registry_.Add(CommandSpec{
        .path = "sig image-version create",
        .summary = "Create a version.",
        .description = "",
        .args_usage = "",
        .min_positionals = 0,
        .max_positionals = 0,
        .options = {{"resource-group", 'g', "NAME", "Group.", false, true},
                    {"target-regions", 0, "REGION", "Regions.", true, false},
                    {"exclude-from-latest", 0, "", "Flag.", false, false}},
        .examples = {},
        .run =
            [this](const ParsedArgs& a, CommandContext&) {
              last_ = a;
              return 0;
            },
    });
    ctx_.out = &out_;
    ctx_.err = &err_;
  }

  int Run(std::vector<std::string> args) { return registry_.Dispatch(args, ctx_); }

  CommandRegistry registry_;
  CommandContext ctx_;
  std::ostringstream out_, err_;
  ParsedArgs last_;
};

TEST_F(CommandTest, ParsesShortLongRepeatableAndFlagOptions) {
  EXPECT_EQ(Run({"sig", "image-version", "create", "-g", "rg", "--target-regions", "eastus",
                 "westus", "--exclude-from-latest", "-o", "table"}),
            0);
  EXPECT_EQ(last_.Get("resource-group"), "rg");
  EXPECT_EQ(last_.GetAll("target-regions"), (std::vector<std::string>{"eastus", "westus"}));
  EXPECT_TRUE(last_.Has("exclude-from-latest"));
  EXPECT_EQ(ctx_.format, OutputFormat::kTable);
}

TEST_F(CommandTest, MissingRequiredOptionIsAUsageError) {
  EXPECT_EQ(Run({"sig", "image-version", "create"}), 2);
  EXPECT_NE(err_.str().find("--resource-group"), std::string::npos);
}

TEST_F(CommandTest, SuggestsCloseCommandAndOption) {
  EXPECT_EQ(Run({"sig", "image-verison", "create"}), 2);
  EXPECT_NE(err_.str().find("Did you mean 'sig image-version'"), std::string::npos);
  err_.str("");
  EXPECT_EQ(Run({"sig", "image-version", "create", "-g", "x", "--exclude-from-lates"}), 2);
  EXPECT_NE(err_.str().find("Did you mean '--exclude-from-latest'"), std::string::npos);
}

TEST_F(CommandTest, HelpWorksOnGroupsAndCommands) {
  EXPECT_EQ(Run({"sig", "--help"}), 0);
  EXPECT_NE(out_.str().find("image-version"), std::string::npos);
  out_.str("");
  EXPECT_EQ(Run({"sig", "image-version", "create", "--help"}), 0);
  EXPECT_NE(out_.str().find("--resource-group NAME"), std::string::npos);
}

TEST_F(CommandTest, TableOutputHasHeadersAndAlignedColumns) {
  ctx_.format = OutputFormat::kTable;
  auto rows = ParseJson(R"([{"name":"a","count":1,"nested":{}},{"name":"bbb","count":22}])");
  ASSERT_TRUE(rows.ok());
  PrintResult(*rows, ctx_);
  EXPECT_EQ(out_.str(), "Name  Count\n----  -----\na     1\nbbb   22\n");
}

}  // namespace
}  // namespace imagesmith::cli
