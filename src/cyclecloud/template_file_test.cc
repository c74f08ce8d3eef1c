#include "cyclecloud/template_file.h"

#include <gtest/gtest.h>

namespace imagesmith::cyclecloud {
namespace {

TemplateFile ParseOk(const std::string& text) {
  StatusOr<TemplateFile> f = ParseTemplateFile(text, "t.txt");
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : TemplateFile{};
}

std::string ErrorOf(const std::string& text) {
  StatusOr<TemplateFile> f = ParseTemplateFile(text, "t.txt");
  EXPECT_FALSE(f.ok());
  return f.ok() ? "" : f.status().message();
}

TEST(TemplateFileTest, SectionsNestByBracketRank) {
  TemplateFile f = ParseOk(
      "[cluster A]\n"
      "  [[node head]]\n"
      "    [[[volume data]]]\n"
      "    Size = 10\n"
      "  [[NodeArray exec]]\n"
      "    [[[configuration slurm]]]\n"
      "[parameters All]\n"
      "  [[parameters Basic Settings]]\n"
      "    [[[parameter Region]]]\n"
      "      [[[[list Config.Entries]]]]\n"
      "      Name = x\n");
  ASSERT_EQ(f.sections.size(), 2u);
  const Section& c = f.sections[0];
  EXPECT_EQ(c.type, "cluster");
  ASSERT_EQ(c.children.size(), 2u);
  EXPECT_EQ(c.children[0].children[0].type, "volume");
  EXPECT_EQ(c.children[0].children[0].attributes[0].key, "Size");
  EXPECT_EQ(c.children[1].type, "nodearray");  // types ignore case
  EXPECT_EQ(c.children[1].children[0].name, "slurm");
  const Section& p = f.sections[1].children[0];
  EXPECT_EQ(p.name, "Basic Settings");  // names may hold spaces
  EXPECT_EQ(p.children[0].children[0].type, "list");
}

TEST(TemplateFileTest, ValuesCommentsAndMultiLineStrings) {
  TemplateFile f = ParseOk(
      "# comment\n"
      "[cluster A]  # trailing comment\n"
      "Url = http://x/#anchor   # comment after space\n"
      "Expr := a == \"#not a comment\"\n"
      "Old = =undefined\n"
      "Html = '''<p>line one\n"
      "line two</p>'''\n"
      "Quoted = \"\"\"three\n"
      "quotes\"\"\"\n"
      "Multi = ${ifThenElse(a,\n"
      "   1, 2)}\n"
      "Last = 1\n");
  const Section& c = f.sections[0];
  EXPECT_EQ(c.Find("url")->raw, "http://x/#anchor");  // keys ignore case
  EXPECT_TRUE(c.Find("Expr")->expression);
  EXPECT_EQ(c.Find("Expr")->raw, "a == \"#not a comment\"");
  EXPECT_TRUE(c.Find("Old")->expression);
  EXPECT_EQ(c.Find("Old")->raw, "undefined");
  EXPECT_EQ(c.Find("Html")->raw, "<p>line one\nline two</p>");
  EXPECT_TRUE(c.Find("Html")->triple_quoted);
  EXPECT_EQ(c.Find("Quoted")->raw, "three\nquotes");
  EXPECT_EQ(c.Find("Multi")->raw, "${ifThenElse(a,\n   1, 2)}");
  EXPECT_EQ(c.Find("Last")->key_at.line, 12);
  EXPECT_EQ(c.Find("Last")->value_at.column, 8);
}

TEST(TemplateFileTest, SyntaxErrorsHaveFileLineColumn) {
  EXPECT_EQ(ErrorOf("[cluster A]\n  [[node b]\n"),
            "t.txt:2:11: section header opens with 2 '[' but closes with 1 ']'");
  EXPECT_EQ(ErrorOf("[cluster A]\n  [[nod b]]\n"),
            "t.txt:2:5: unknown section type 'nod'; did you mean 'node'?");
  EXPECT_EQ(ErrorOf("[cluster A]\n    [[[volume v]]]\n"),
            "t.txt:2:5: section [volume] of rank 3 is not inside a section of rank 2");
  EXPECT_EQ(ErrorOf("[cluster A]\n  [[volume v]]\n"),
            "t.txt:2:3: a [volume] section cannot be inside a [cluster] section (rank 2)");
  EXPECT_EQ(ErrorOf("[[node a]]\n"),
            "t.txt:1:1: section [node] of rank 2 is not inside a section of rank 1");
  EXPECT_EQ(ErrorOf("Key = 1\n"),
            "t.txt:1:1: an attribute must be inside a section ([cluster NAME], ...)");
  EXPECT_EQ(ErrorOf("[cluster A]\n  just words\n"),
            "t.txt:2:3: expected 'Key = value', 'Key := expression' or a [section] header");
  EXPECT_EQ(
      ErrorOf("[cluster A]\n  Bad Key = 1\n"),
      "t.txt:2:6: bad character ' ' in key 'Bad Key' (keys are letters, digits, '_', '-', ':' "
      "and '.')");
  EXPECT_EQ(ErrorOf("[cluster A]\nX = '''never closed\n"),
            "t.txt:2:1: ''' value of 'X' is never closed");
  EXPECT_EQ(ErrorOf("[cluster A]\nX = ${a\n"), "t.txt:2:5: '${' in value of 'X' is never closed");
  EXPECT_EQ(ErrorOf("[cluster A] junk\n"), "t.txt:1:13: unexpected text after the section header");
}

TEST(TemplateFileTest, CrlfLineEndsAndByteOrderMark) {
  TemplateFile f = ParseOk("\xEF\xBB\xBF[cluster A]\r\nX = 1\r\n  [[node n]]\r\n  Y = 2\r\n");
  EXPECT_EQ(f.sections[0].Find("X")->raw, "1");
  EXPECT_EQ(f.sections[0].children[0].Find("Y")->key_at.line, 4);
}

}  // namespace
}  // namespace imagesmith::cyclecloud
