#include "cyclecloud/expr.h"

#include <gtest/gtest.h>

#include <map>

#include "base/strings.h"

namespace imagesmith::cyclecloud {
namespace {

class MapScope final : public Scope {
 public:
  std::map<std::string, Value> values;
  StatusOr<Value> Lookup(std::string_view name) const override {
    auto it = values.find(AsciiToLower(name));
    if (it == values.end()) return NotFoundError(std::string(name));
    return it->second;
  }
};

StatusOr<Value> Eval(const std::string& text, const MapScope& scope) {
  ASSIGN_OR_RETURN(Expression e, Expression::Parse(text, Location{"t.txt", 3, 10}));
  RETURN_IF_ERROR(e.CheckReferences(scope));
  return e.Evaluate(scope);
}

Value EvalOk(const std::string& text, const MapScope& scope = {}) {
  StatusOr<Value> v = Eval(text, scope);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().ToString();
  return v.ok() ? *v : Value();
}

TEST(ExprTest, LiteralsKeepTheirTypes) {
  EXPECT_EQ(EvalOk("12").kind(), Value::Kind::kInt);
  EXPECT_EQ(EvalOk("1.5").kind(), Value::Kind::kDouble);
  EXPECT_EQ(EvalOk("\"a\\\"b\"").string_value(), "a\"b");
  EXPECT_EQ(EvalOk("'single'").string_value(), "single");
  EXPECT_TRUE(EvalOk("TRUE").bool_value());
  EXPECT_TRUE(EvalOk("undefined").is_undefined());
  Value list = EvalOk("{1, \"two\", false}");
  ASSERT_EQ(list.kind(), Value::Kind::kList);
  EXPECT_EQ(list.list_items().size(), 3u);
  Value rec = EvalOk("[Label=\"Any\"; Value=undefined]");
  ASSERT_EQ(rec.kind(), Value::Kind::kRecord);
  EXPECT_EQ(rec.Field("label")->string_value(), "Any");
  EXPECT_EQ(EvalOk("[]").kind(), Value::Kind::kRecord);
}

TEST(ExprTest, OperatorsFollowCycleCloudsRules) {
  MapScope s;
  s.values["nfstype"] = Value::String("Builtin");
  s.values["count"] = Value::Int(7);
  EXPECT_TRUE(EvalOk("NFSType == \"builtin\"", s).bool_value());  // == ignores case
  EXPECT_FALSE(EvalOk("NFSType === \"builtin\"", s).bool_value());
  EXPECT_TRUE(EvalOk("NFSType =?= \"Builtin\"", s).bool_value());
  EXPECT_TRUE(EvalOk("NFSType =!= \"builtin\"", s).bool_value());
  s.values["missing"] = Value();
  EXPECT_TRUE(EvalOk("Missing isnt true", s).bool_value());
  EXPECT_TRUE(EvalOk("undefined is undefined").bool_value());
  EXPECT_TRUE(EvalOk("NFSType in {\"x\", \"builtin\"}", s).bool_value());
  EXPECT_EQ(EvalOk("count / 2", s).int_value(), 3);
  EXPECT_DOUBLE_EQ(EvalOk("count / 2.0", s).double_value(), 3.5);
  EXPECT_EQ(EvalOk("count > 5 ? \"big\" : \"small\"", s).string_value(), "big");
  EXPECT_TRUE(EvalOk("!(count < 5) && count >= 7 || false", s).bool_value());
  EXPECT_EQ(EvalOk("\"n\" + count", s).string_value(), "n7");
  EXPECT_EQ(EvalOk("-count + 10", s).int_value(), 3);
}

TEST(ExprTest, FunctionsTheRealTemplatesUse) {
  MapScope s;
  s.values["clustername"] = Value::String("Lab");
  s.values["name"] = Value::String("  My Head_01 ");
  s.values["nothing"] = Value();
  EXPECT_EQ(EvalOk("ifThenElse(true, 1, 2)").int_value(), 1);
  EXPECT_EQ(EvalOk("IfThenElse(0, 1, 2)").int_value(), 2);
  EXPECT_EQ(EvalOk("ifUndefined(nothing, \"dflt\")", s).string_value(), "dflt");
  EXPECT_EQ(EvalOk("StrJoin(\"-\", ClusterName, \"\")", s).string_value(), "Lab-");
  EXPECT_EQ(EvalOk("strjoin(\",\", {\"a\", \"b\"}, nothing, \"c\")", s).string_value(), "a,b,c");
  EXPECT_EQ(EvalOk("Size(Trim(name))", s).int_value(), 10);  // "My Head_01"
  EXPECT_EQ(EvalOk("size({1,2,3})").int_value(), 3);
  EXPECT_EQ(EvalOk("toLower(regexps(\"([^a-zA-Z0-9-])\", Trim(name), \"-\"))", s).string_value(),
            "my-head-01");
  EXPECT_TRUE(EvalOk("regexp(\"^My\", Trim(name))", s).bool_value());
  EXPECT_EQ(EvalOk("substr(\"abcdef\", 2, 3)").string_value(), "cde");
  EXPECT_EQ(EvalOk("substr(\"abcdef\", -2)").string_value(), "ef");
  EXPECT_EQ(EvalOk("strcat(\"tcp:/lustrefs\", \"/x\", 1)").string_value(), "tcp:/lustrefs/x1");
  EXPECT_EQ(EvalOk("toUpper(\"ab\")").string_value(), "AB");
  EXPECT_TRUE(EvalOk("startswith(\"cycle.image.win\", \"cycle.image.win2019\")").bool_value());
  EXPECT_EQ(EvalOk("ceil(5 / 2.0)").int_value(), 3);
  EXPECT_EQ(EvalOk("max(1, 4, 2)").int_value(), 4);
}

TEST(ExprTest, OnlyTheChosenBranchIsEvaluated) {
  MapScope s;
  s.values["zero"] = Value::Int(0);
  EXPECT_EQ(EvalOk("ifThenElse(true, 1, 1 / zero)", s).int_value(), 1);
  StatusOr<Value> v = Eval("ifThenElse(false, 1, 1 / zero)", s);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("division by zero"), std::string::npos);
}

TEST(ExprTest, UnknownNameIsReportedAtItsColumnEvenInAnUntakenBranch) {
  MapScope s;
  s.values["flag"] = Value::Bool(true);
  StatusOr<Value> v = Eval("ifThenElse(flag, 1, Nope)", s);
  ASSERT_FALSE(v.ok());
  // Text starts at t.txt:3:10; "Nope" is 20 characters in.
  EXPECT_EQ(v.status().message(), "t.txt:3:30: unknown parameter Nope");
}

TEST(ExprTest, SyntaxErrorsNameFileLineAndColumn) {
  StatusOr<Expression> e = Expression::Parse("strcat(\"a\", )", Location{"f.txt", 7, 20});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "f.txt:7:32: expected a value, found ')'");
  e = Expression::Parse("a ==", Location{"f.txt", 1, 1});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "f.txt:1:5: expected a value, found end of expression");
  e = Expression::Parse("\"open", Location{"f.txt", 1, 1});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "f.txt:1:1: unterminated string");
  e = Expression::Parse("a # b", Location{"f.txt", 2, 4});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "f.txt:2:6: unexpected character '#' in expression");
}

TEST(ExprTest, UnknownFunctionSuggestsTheClosest) {
  StatusOr<Value> v = Eval("ifThenEls(true, 1, 2)", {});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("unknown function ifThenEls(); did you mean ifthenelse()?"),
            std::string::npos)
      << v.status().message();
}

TEST(ExprTest, WrongKindsAreErrorsNotCrashes) {
  EXPECT_FALSE(Eval("toLower(3)", {}).ok());
  EXPECT_FALSE(Eval("substr(\"a\", \"b\")", {}).ok());
  EXPECT_FALSE(Eval("1 in 2", {}).ok());
  EXPECT_FALSE(Eval("regexps(\"(\", \"a\", \"b\")", {}).ok());
  EXPECT_FALSE(Eval("\"a\" * 2", {}).ok());
  std::string chain = "1";
  for (int i = 0; i < 5000; ++i) chain += "+1";
  EXPECT_FALSE(Expression::Parse(chain, {}).ok());  // bounded, not a deep tree
  std::string members = "a";
  for (int i = 0; i < 5000; ++i) members += ".b";
  EXPECT_FALSE(Expression::Parse(members, {}).ok());
  std::string deep(500, '(');
  EXPECT_FALSE(Expression::Parse(deep + "1" + std::string(500, ')'), {}).ok());
}

TEST(ExprTest, ReferencesToARunningClusterAreDeferred) {
  MapScope s;
  s.values["filer"] = Value::Deferred("filer");
  Value v = EvalOk("filer.instance.PrivateIp", s);
  ASSERT_TRUE(v.is_deferred());
  EXPECT_EQ(v.deferred_text(), "${filer.instance.PrivateIp}");
  EXPECT_TRUE(EvalOk("strcat(\"ip=\", filer.instance.PrivateIp)", s).is_deferred());
  // A known condition still picks a branch without the deferred side.
  EXPECT_EQ(EvalOk("ifThenElse(false, filer.x, 2)", s).int_value(), 2);
}

TEST(ExprTest, MemberAccessOnRecordsAndUndefined) {
  MapScope s;
  s.values["subnet"] = Value::MakeRecord({{"Name", Value::String("default")}});
  s.values["unset"] = Value();
  EXPECT_EQ(EvalOk("Subnet.name", s).string_value(), "default");
  EXPECT_TRUE(EvalOk("Subnet.Other", s).is_undefined());
  EXPECT_TRUE(EvalOk("unset.Name", s).is_undefined());
  s.values["text"] = Value::String("x");
  EXPECT_FALSE(Eval("text.Name", s).ok());
}

}  // namespace
}  // namespace imagesmith::cyclecloud
