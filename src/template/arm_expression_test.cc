#include "template/arm_expression.h"

#include <gtest/gtest.h>

#include <string>

namespace imagesmith::tmpl::arm {
namespace {

ExpressionEnv TestEnv() {
  ExpressionEnv env;
  env.parameter = [](const std::string& n) -> StatusOr<Json> {
    if (n == "prefix") return Json::String("web");
    if (n == "regions") {
      Json a = Json::MakeArray();
      a.Append(Json::String("eastus"));
      a.Append(Json::String("westus2"));
      return a;
    }
    return NotFoundError("parameter " + n + " is not declared");
  };
  env.variable = [](const std::string& n) -> StatusOr<Json> {
    return NotFoundError("variable " + n + " is not declared");
  };
  env.resource_group.Set("name", Json::String("rg"));
  env.resource_group.Set("location", Json::String("westeurope"));
  env.subscription.Set("subscriptionId", Json::String("11111111-2222-3333-4444-555555555555"));
  env.deployment.Set("name", Json::String("deploy1"));
  return env;
}

std::string Eval(const std::string& expr) {
  ExpressionEnv env = TestEnv();
  auto v = EvaluateString(expr, env);
  if (!v.ok()) return "ERROR: " + v.status().message();
  return v->is_string() ? v->string_value() : v->Dump(-1);
}

TEST(ArmExpressionTest, EvaluatesTheFunctionsImageTemplatesUse) {
  EXPECT_EQ(Eval("[concat(parameters('prefix'), '-', 'img')]"), "web-img");
  EXPECT_EQ(Eval("[format('{0}-{1}', parameters('prefix'), 2)]"), "web-2");
  EXPECT_EQ(Eval("[resourceGroup().location]"), "westeurope");
  EXPECT_EQ(Eval("[subscription().subscriptionId]"), "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(Eval("[deployment().name]"), "deploy1");
  EXPECT_EQ(Eval("[resourceId('Microsoft.Compute/galleries/images', 'g', 'd')]"),
            "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
            "Microsoft.Compute/galleries/g/images/d");
  EXPECT_EQ(Eval("[resourceId('other', 'Microsoft.Compute/images', 'i')]"),
            "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/other/providers/"
            "Microsoft.Compute/images/i");
  EXPECT_EQ(Eval("[uri('https://example.com/a/b.sh', 'c.sh')]"), "https://example.com/a/c.sh");
  EXPECT_EQ(Eval("[parameters('regions')[1]]"), "westus2");
  EXPECT_EQ(Eval("[length(parameters('regions'))]"), "2");
  EXPECT_EQ(Eval("[if(equals(toLower('A'), 'a'), 'yes', 'no')]"), "yes");
  EXPECT_EQ(Eval("[split('a,b', ',')]"), R"(["a","b"])");
  EXPECT_EQ(Eval("[[literal]"), "[literal]");
  EXPECT_EQ(Eval("plain"), "plain");
  EXPECT_EQ(Eval("[concat('it''s')]"), "it's");
  EXPECT_EQ(Eval("[uniqueString('a')]").size(), 13u);
  EXPECT_EQ(Eval("[guid('a', 'b')]"), Eval("[guid('a', 'b')]"));
}

TEST(ArmExpressionTest, BadInputIsALocatedErrorNeverACrash) {
  EXPECT_EQ(Eval("[concatt('a')]"),
            "ERROR: at character 2: unknown function \"concatt\"; did you mean concat()?");
  EXPECT_EQ(Eval("[parameters('nope')]"), "ERROR: at character 2: parameter nope is not declared");
  EXPECT_EQ(Eval("[concat('a']"),
            "ERROR: at character 12: expected ',' or ')' in the arguments "
            "of concat, found end of expression");
  EXPECT_EQ(Eval("['open]"), "ERROR: at character 2: string not closed with '");
  EXPECT_EQ(Eval("[add(9223372036854775807, 1)]"),
            "ERROR: at character 2: add(): the result does not fit in 64 bits");
  EXPECT_EQ(Eval("[div(1, 0)]"), "ERROR: at character 2: div(): division by zero");
  std::string deep = "[" + std::string(200, '(') + "]";
  EXPECT_NE(Eval(deep).find("ERROR"), std::string::npos);
  std::string nested;
  for (int i = 0; i < 100; ++i) nested += "concat(";
  nested += "'x'" + std::string(100, ')');
  EXPECT_NE(Eval("[" + nested + "]").find("nested more than 64 levels"), std::string::npos);
  EXPECT_NE(Eval("[concat(" + std::string(30000, ' ') + "'a')]").find("ARM's limit is 24576"),
            std::string::npos);
  EXPECT_NE(Eval("[reference('x')]").find("cannot evaluate"), std::string::npos);
  EXPECT_NE(Eval("[utcNow()]").find("only be used in a parameter's defaultValue"),
            std::string::npos);
}

TEST(ArmExpressionTest, TheBudgetStopsValuesThatGrowWithoutBound) {
  ExpressionEnv env = TestEnv();
  env.budget = 1000;
  auto v = EvaluateString("[range(0, 10000)]", env);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace imagesmith::tmpl::arm
