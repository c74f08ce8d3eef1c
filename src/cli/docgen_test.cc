#include "cli/docgen.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "base/strings.h"

namespace imagesmith::cli {
namespace {

std::vector<std::string> Words(const std::vector<Completion>& cs) {
  std::vector<std::string> out;
  for (const Completion& c : cs) out.push_back(c.word);
  return out;
}

class DocgenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddGroup("sig", "Galleries.");
    registry_.AddGroup("sig image-version", "Versions.");
    registry_.AddGroup("internal", "Not for people.");
    auto noop = [](const ParsedArgs&, CommandContext&) { return 0; };
    auto simple = [&](const std::string& path, const std::string& summary) {
      return CommandSpec{.path = path,
                         .summary = summary,
                         .description = "",
                         .args_usage = "",
                         .options = {},
                         .examples = {},
                         .run = noop};
    };
    registry_.Add(CommandSpec{
        .path = "sig image-version create",
        .summary = "Create a version.",
        .description = "",
        .args_usage = "",
        .options = {{"resource-group", 'g', "NAME", "Group.", false, true},
                    {"target-regions", 0, "REGION", "Regions.", true, false},
                    {"os-type", 0, "TYPE", "OS.", false, false, {"Linux", "Windows"}},
                    {"exclude-from-latest", 0, "", "Flag.", false, false}},
        .examples = {},
        .run = noop,
    });
    registry_.Add(simple("sig image-version list", "List."));
    registry_.Add(simple("sig create", "Create a gallery."));
    registry_.Add(CommandSpec{.path = "build",
                              .summary = "Build.",
                              .description = "Builds FILE.\n\n  indented example\n.dot line",
                              .args_usage = "FILE",
                              .min_positionals = 1,
                              .max_positionals = 1,
                              .options = {{"name", 'n', "NAME", "Name."}},
                              .examples = {},
                              .run = noop});
    registry_.Add(simple("internal step", "Hidden."));
  }
  std::vector<std::string> C(std::vector<std::string> words) {
    return Words(Complete(registry_, words));
  }
  CommandRegistry registry_;
};

TEST_F(DocgenTest, CompletesGroupsAndCommandsByPrefixAndHidesInternal) {
  EXPECT_EQ(C({""}), (std::vector<std::string>{"build", "sig"}));
  EXPECT_EQ(C({"s"}), (std::vector<std::string>{"sig"}));
  EXPECT_EQ(C({"sig", ""}), (std::vector<std::string>{"create", "image-version"}));
  EXPECT_EQ(C({"sig", "image-version", "cr"}), (std::vector<std::string>{"create"}));
  EXPECT_TRUE(C({"internal", ""}).empty());
  EXPECT_TRUE(C({"nosuch", ""}).empty());
}

TEST_F(DocgenTest, CompletesTheOptionsOfACommandThenGlobalOnes) {
  auto opts = C({"sig", "image-version", "create", ""});
  EXPECT_EQ(opts,
            (std::vector<std::string>{"--resource-group", "--target-regions", "--os-type",
                                      "--exclude-from-latest", "--output", "--help", "--verbose"}));
  EXPECT_EQ(C({"sig", "image-version", "create", "--re"}),
            (std::vector<std::string>{"--resource-group"}));
  // Given once, a non-repeatable option is not offered again.
  auto after = C({"sig", "image-version", "create", "-g", "rg", "--target-regions", "a", "--"});
  EXPECT_EQ(std::count(after.begin(), after.end(), "--resource-group"), 0);
  EXPECT_EQ(std::count(after.begin(), after.end(), "--target-regions"), 1);
}

TEST_F(DocgenTest, CompletesChoicesOfAnOptionValueAndLeavesFreeValuesToTheShell) {
  EXPECT_EQ(C({"sig", "image-version", "create", "--os-type", "L"}),
            (std::vector<std::string>{"Linux"}));
  EXPECT_EQ(C({"sig", "image-version", "create", "--os-type=W"}),
            (std::vector<std::string>{"--os-type=Windows"}));
  EXPECT_EQ(C({"build", "-o", "t"}), (std::vector<std::string>{"table", "tsv"}));
  EXPECT_TRUE(C({"sig", "image-version", "create", "-g", ""}).empty());
  // A command that takes a file: files first, options once it has one.
  EXPECT_TRUE(C({"build", ""}).empty());
  EXPECT_EQ(C({"build", "t.json", "--n"}), (std::vector<std::string>{"--name"}));
}

TEST_F(DocgenTest, HiddenCompleteCommandPrintsWordsForBashAndWordsWithHelpForZsh) {
  std::ostringstream out, err;
  CommandContext ctx;
  ctx.out = &out;
  ctx.err = &err;
  EXPECT_EQ(
      RunHiddenCommand(registry_, {"__complete", "bash", "sig", "image-version", "cr"}, ctx, "1"),
      0);
  EXPECT_EQ(out.str(), "create\n");
  out.str("");
  EXPECT_EQ(
      RunHiddenCommand(registry_, {"__complete", "zsh", "sig", "image-version", "create", "--res"},
                       ctx, "1"),
      0);
  EXPECT_EQ(out.str(), "--resource-group:Group.\n");
  EXPECT_EQ(RunHiddenCommand(registry_, {"sig", "create"}, ctx, "1"), -1);
}

TEST_F(DocgenTest, ManPagesCoverEveryVisibleTopLevelEntryAndEveryOption) {
  auto pages = ManPages(registry_, "9.9.9");
  std::vector<std::string> names;
  for (const auto& [n, _] : pages) names.push_back(n);
  EXPECT_EQ(names,
            (std::vector<std::string>{"imagesmith.1", "imagesmith-build.1", "imagesmith-sig.1"}));
  const std::string& sig = pages[2].second;
  EXPECT_NE(sig.find(".TH IMAGESMITH\\-SIG 1 \"\" \"imagesmith 9.9.9\""), std::string::npos) << sig;
  EXPECT_NE(sig.find(".SS \"imagesmith sig image\\-version create\""), std::string::npos) << sig;
  EXPECT_NE(sig.find("\\-g, \\-\\-resource\\-group \\fINAME\\fR"), std::string::npos) << sig;
  EXPECT_NE(sig.find("\\-\\-exclude\\-from\\-latest"), std::string::npos);
  const std::string& build = pages[1].second;
  // A description line that starts with '.' is not taken for a request.
  EXPECT_NE(build.find("\n\\&.dot line"), std::string::npos) << build;
  EXPECT_NE(build.find(".nf\n  indented example"), std::string::npos) << build;
  EXPECT_EQ(pages[0].second.find("internal"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith::cli
