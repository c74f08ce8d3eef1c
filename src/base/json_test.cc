#include "base/json.h"

#include <gtest/gtest.h>

namespace imagesmith {
namespace {

TEST(JsonTest, ParsesNestedDocumentAndRecordsPositions) {
  auto j = ParseJson("{\n  \"a\": [1, true, null],\n  \"b\": {\"c\": \"x\"}\n}");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  ASSERT_TRUE(j->is_object());
  const Json* a = j->Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->pos, (SourcePos{2, 8}));
  EXPECT_EQ(a->array_items()[1].pos, (SourcePos{2, 12}));
  EXPECT_EQ(j->object_items()[1].key_pos, (SourcePos{3, 3}));
  EXPECT_EQ(j->Find("b")->Find("c")->string_value(), "x");
}

TEST(JsonTest, ColumnsCountCodePointsNotBytes) {
  auto j = ParseJson("{\"é\": 1, \"k\": 2}");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->object_items()[1].key_pos, (SourcePos{1, 10}));
}

TEST(JsonTest, KeepsDuplicateKeysInOrder) {
  auto j = ParseJson(R"({"a": 1, "a": 2})");
  ASSERT_TRUE(j.ok());
  ASSERT_EQ(j->object_items().size(), 2u);
  EXPECT_EQ(j->object_items()[1].value.number_text(), "2");
}

TEST(JsonTest, KeepsExactNumberText) {
  auto j = ParseJson("[9223372036854775807, 9223372036854775808, 1.5e3, -0]");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->array_items()[0].AsInt64(), INT64_MAX);
  EXPECT_FALSE(j->array_items()[1].AsInt64().has_value());
  EXPECT_EQ(j->array_items()[1].number_text(), "9223372036854775808");
  EXPECT_FALSE(j->array_items()[2].AsInt64().has_value());
  EXPECT_DOUBLE_EQ(*j->array_items()[2].AsDouble(), 1500.0);
}

TEST(JsonTest, DecodesEscapesAndSurrogatePairs) {
  auto j = ParseJson(R"("a\n\"\u00e9\ud83d\ude00")");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->string_value(), "a\n\"\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(JsonTest, AcceptsCommentsAndByteOrderMark) {
  auto j = ParseJson("\xEF\xBB\xBF// c\n{ /* x */ \"a\": 1 }");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->Find("a")->AsInt64(), 1);
}

struct BadCase {
  const char* text;
  SourcePos pos;
  const char* message_part;
};

TEST(JsonTest, ReportsSyntaxErrorsWithPositionAndExpectation) {
  const BadCase cases[] = {
      {"", {1, 1}, "the file is empty"},
      {"{\"a\": 1,}", {1, 9}, "trailing comma"},
      {"[1, 2", {1, 1}, "never closed"},
      {"{\"a\" 1}", {1, 6}, "expected ':'"},
      {"{\"a\": <minutes>}", {1, 7}, "placeholder <minutes>"},
      {"{'a': 1}", {1, 2}, "expected a property name"},
      {"\"abc", {1, 1}, "never closed"},
      {"01", {1, 2}, "leading zeros"},
      {"{\"a\": 1 \"b\": 2}", {1, 9}, "missing ','"},
      {"\"\\q\"", {1, 4}, "invalid escape"},
      {"\"\xff\"", {1, 2}, "invalid UTF-8"},
      {"\"\\ud800\"", {1, 8}, "unpaired UTF-16 surrogate"},
      {"true false", {1, 6}, "unexpected text after"},
      {"/* open", {1, 1}, "unterminated"},
      {"[tru]", {1, 2}, "expected a value"},
  };
  for (const BadCase& c : cases) {
    JsonSyntaxError err;
    auto j = ParseJson(c.text, {}, &err);
    ASSERT_FALSE(j.ok()) << c.text;
    EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(err.pos, c.pos) << c.text << " -> " << err.message;
    EXPECT_NE(err.message.find(c.message_part), std::string::npos)
        << c.text << " -> " << err.message;
  }
}

TEST(JsonTest, RejectsNestingBeyondTheLimit) {
  std::string deep(200, '[');
  auto j = ParseJson(deep);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("nesting deeper"), std::string::npos);
}

TEST(JsonTest, DumpRoundTripsAndEscapes) {
  auto j = ParseJson(R"({"a":[1,{"b":"q\"\u0001"}],"c":{}})");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->Dump(-1), R"({"a":[1,{"b":"q\"\u0001"}],"c":{}})");
  auto again = ParseJson(j->Dump(2));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Dump(-1), j->Dump(-1));
}

}  // namespace
}  // namespace imagesmith
