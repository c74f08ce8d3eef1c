// End-to-end tests of 'imagesmith template validate' and the CLI's common
// behaviour, driving the real binary over the template corpus in
// tests/templates/ (valid/ and invalid/, each FILE.json with the exact
// output it must produce in FILE.expected).
#include <gtest/gtest.h>

#include "base/json.h"
#include "base/strings.h"
#include "e2e_util.h"

namespace imagesmith::e2e {
namespace {

std::string CorpusDir(const std::string& kind) { return SourceDir() + "/tests/templates/" + kind; }

// FILE.args, when present, holds extra arguments for 'template validate'
// (such as -p @../params/FILE.parameters.json), separated by white space.
std::vector<std::string> ValidateArgs(const std::string& dir, const std::string& file,
                                      std::vector<std::string> args) {
  args.push_back(file);
  std::string extra = ReadOrEmpty(dir + "/" + file.substr(0, file.size() - 5) + ".args");
  std::string word;
  for (char c : extra + " ") {
    if (c == ' ' || c == '\n' || c == '\t') {
      if (!word.empty()) args.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  return args;
}

class CorpusTest : public ::testing::TestWithParam<std::string> {};

// Each file produces exactly the diagnostics recorded beside it, and the exit
// status says whether it is valid.
TEST_P(CorpusTest, ProducesExactlyTheExpectedDiagnostics) {
  auto [kind, file] = [&] {
    std::vector<std::string> parts = Split(GetParam(), '/');
    return std::pair{parts[0], parts[1]};
  }();
  std::string dir = CorpusDir(kind);
  std::string expected = ReadOrEmpty(dir + "/" + file.substr(0, file.size() - 5) + ".expected");
  ASSERT_FALSE(expected.empty()) << "missing " << file << " .expected file";
  CliResult r = RunCli(ValidateArgs(dir, file, {"template", "validate"}), dir);
  EXPECT_EQ(r.out, expected);
  EXPECT_EQ(r.exit_code, kind == "valid" ? 0 : 1) << r.err;
  EXPECT_EQ(r.err, "");
}

// The JSON form agrees with the text form and, for valid files, the
// normalised template validates again to exactly itself.
TEST_P(CorpusTest, JsonOutputAgreesAndNormalisedTemplateIsAFixedPoint) {
  std::vector<std::string> parts = Split(GetParam(), '/');
  std::string dir = CorpusDir(parts[0]);
  CliResult r = RunCli(ValidateArgs(dir, parts[1], {"template", "validate", "-o", "json"}), dir);
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  bool valid = parts[0] == "valid";
  EXPECT_EQ(j->Find("valid")->bool_value(), valid);
  EXPECT_EQ(r.exit_code, valid ? 0 : 1);
  const Json* errors = j->Find("errors");
  ASSERT_NE(errors, nullptr);
  if (!valid) {
    ASSERT_FALSE(errors->array_items().empty());
    for (const Json& e : errors->array_items()) {
      EXPECT_FALSE(e.Find("message")->string_value().empty());
      EXPECT_NE(e.Find("path"), nullptr);
    }
    EXPECT_EQ(j->Find("template"), nullptr);
    return;
  }
  // A deployment template gives one normalised template per resource.
  std::vector<Json> normalised_list;
  if (const Json* list = j->Find("templates")) {
    ASSERT_FALSE(list->array_items().empty());
    for (const Json& item : list->array_items()) normalised_list.push_back(*item.Find("template"));
  } else {
    ASSERT_NE(j->Find("template"), nullptr);
    normalised_list.push_back(*j->Find("template"));
  }
  for (const Json& normalised : normalised_list) {
    std::string tmp = MakeTempDir() + "/normalised.json";
    ASSERT_TRUE(Env::Default()->WriteFileAtomic(tmp, normalised.Dump(2)).ok());
    CliResult again = RunCli({"template", "validate", "-o", "json", tmp});
    auto j2 = ParseJson(again.out);
    ASSERT_TRUE(j2.ok());
    ASSERT_EQ(again.exit_code, 0) << again.out;
    ASSERT_NE(j2->Find("template"), nullptr);
    EXPECT_EQ(j2->Find("template")->Dump(-1), normalised.Dump(-1));
  }
}

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> out;
  for (const char* kind : {"valid", "invalid"}) {
    for (const std::string& f : JsonFilesIn(CorpusDir(kind)))
      out.push_back(std::string(kind) + "/" + f);
  }
  return out;
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string n;
  for (char c : info.param) n.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return n;
}

INSTANTIATE_TEST_SUITE_P(Templates, CorpusTest, ::testing::ValuesIn(CorpusFiles()), TestName);

TEST(CorpusSizeTest, HasAtLeastFortyInvalidTemplates) {
  EXPECT_GE(JsonFilesIn(CorpusDir("invalid")).size(), 40u);
  EXPECT_GE(JsonFilesIn(CorpusDir("valid")).size(), 5u);
}

TEST(TemplateValidateTest, ExamplesAreValid) {
  for (const std::string& f : JsonFilesIn(SourceDir() + "/examples")) {
    CliResult r = RunCli({"template", "validate", "examples/" + f}, SourceDir());
    EXPECT_EQ(r.exit_code, 0) << f << "\n" << r.out;
  }
}

TEST(TemplateValidateTest, SeveralFilesGiveAListAndFailIfAnyIsInvalid) {
  std::string dir = SourceDir() + "/tests/templates";
  CliResult r = RunCli({"template", "validate", "-o", "json", "valid/reference-basic-format.json",
                        "invalid/wrong-type.json"},
                       dir);
  EXPECT_EQ(r.exit_code, 1);
  auto j = ParseJson(r.out);
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE(j->is_array());
  ASSERT_EQ(j->array_items().size(), 2u);
  EXPECT_TRUE(j->array_items()[0].Find("valid")->bool_value());
  EXPECT_FALSE(j->array_items()[1].Find("valid")->bool_value());
}

TEST(TemplateValidateTest, MissingFileIsAnErrorNamingIt) {
  CliResult r = RunCli({"template", "validate", "/nonexistent/t.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out,
            "/nonexistent/t.json: error: /nonexistent/t.json: No such file or directory\n"
            "/nonexistent/t.json: 1 error\n");
}

TEST(TemplateValidateTest, OversizedFileIsRejectedBeforeParsing) {
  std::string path = MakeTempDir() + "/huge.json";
  std::string big = "{\"tags\": {\"a\": \"" + std::string(5 << 20, 'x') + "\"}}";
  ASSERT_TRUE(Env::Default()->WriteFileAtomic(path, big).ok());
  CliResult r = RunCli({"template", "validate", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("the limit is 4194304"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("templates are limited to 4 MiB"), std::string::npos) << r.out;
}

TEST(TemplateValidateTest, DirectoryIsRejectedClearly) {
  CliResult r = RunCli({"template", "validate", SourceDir()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("is a directory, not a file"), std::string::npos) << r.out;
}

TEST(CliTest, VersionAndHelpWork) {
  CliResult v = RunCli({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_TRUE(StartsWith(v.out, "imagesmith ")) << v.out;
  // The version and the commit it was built from: a commit of this checkout
  // (HEAD when the binary was built; HEAD may have moved on since).
  size_t at = v.out.find("(git commit ");
  ASSERT_NE(at, std::string::npos) << v.out;
  std::string commit = v.out.substr(at + 12, v.out.find(')', at) - at - 12);
  ProcessOptions git;
  git.argv = {"git", "-C", SourceDir(), "rev-parse", "--is-inside-work-tree"};
  auto inside = Env::Default()->RunProcess(git);
  ASSERT_TRUE(inside.ok());
  if (inside->success()) {
    std::string hash = commit.substr(0, commit.find("-dirty"));
    EXPECT_EQ(hash.size(), 12u) << v.out;
    git.argv = {"git", "-C", SourceDir(), "merge-base", "--is-ancestor", hash, "HEAD"};
    auto ancestor = Env::Default()->RunProcess(git);
    ASSERT_TRUE(ancestor.ok());
    EXPECT_TRUE(ancestor->success()) << hash << " is not a commit of this checkout";
  } else {
    EXPECT_EQ(commit, "unknown") << v.out;
  }
  CliResult h = RunCli({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("template"), std::string::npos);
  CliResult none = RunCli({});
  EXPECT_EQ(none.exit_code, 0);
}

TEST(CliTest, EveryCommandAndGroupHasHelp) {
  // Walk the command tree from the top-level help.
  std::vector<std::vector<std::string>> todo = {{}};
  int commands = 0;
  while (!todo.empty()) {
    std::vector<std::string> path = todo.back();
    todo.pop_back();
    std::vector<std::string> args = path;
    args.push_back("--help");
    CliResult r = RunCli(args);
    ASSERT_EQ(r.exit_code, 0) << Join(path, " ") << ": " << r.err;
    ASSERT_TRUE(r.out.find("Usage: imagesmith") != std::string::npos) << r.out;
    size_t at = r.out.find("Commands:\n");
    if (at == std::string::npos) {
      ++commands;
      continue;
    }
    size_t end = r.out.find("\n\n", at);
    for (const std::string& line : Split(r.out.substr(at + 10, end - at - 10), '\n')) {
      std::string name = Split(std::string(TrimWhitespace(line)), ' ')[0];
      if (name.empty()) continue;
      std::vector<std::string> child = path;
      child.push_back(name);
      todo.push_back(child);
    }
  }
  EXPECT_GE(commands, 1);
}

TEST(CliTest, UnknownCommandIsAUsageErrorWithSuggestion) {
  CliResult r = RunCli({"template", "validat", "x.json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("Did you mean 'template validate'?"), std::string::npos) << r.err;
}

TEST(CliTest, BadOutputFormatIsAUsageError) {
  CliResult r = RunCli({"template", "validate", "-o", "yaml", "x.json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("invalid output format 'yaml'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace imagesmith::e2e
