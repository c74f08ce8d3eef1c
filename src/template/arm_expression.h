// ARM template expressions: "[concat(parameters('prefix'), '-img')]".
//
// Evaluates the expression language of Azure Resource Manager deployment
// templates, for the functions that Image Builder templates use: parameters,
// variables, string and array functions (concat, format, replace, split,
// toLower, ...), logic and comparison, resourceId and friends, uri,
// resourceGroup(), subscription(), deployment(), guid and uniqueString. Values
// are Json. Functions that read deployed state (reference, list*) are refused
// with a reason.
//
// Bad input never crashes: unknown functions, wrong argument types, deep
// nesting and results that grow without bound are errors (InvalidArgument or
// ResourceExhausted) whose message says where in the expression the problem
// is ("at character 12: ...").
//
// Not thread-safe per ExpressionEnv (the budget is shared state); separate
// environments may be used from separate threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/json.h"
#include "base/statusor.h"

namespace imagesmith::tmpl::arm {

// ARM's limit on the length of one expression.
inline constexpr size_t kMaxExpressionChars = 24576;
// Nesting of calls, property accesses and indexes.
inline constexpr int kMaxExpressionDepth = 64;

// What expressions can see. The callbacks return NotFound for unknown names;
// they may evaluate further expressions (a variable that uses a parameter).
struct ExpressionEnv {
  std::function<StatusOr<Json>(const std::string& name)> parameter;
  std::function<StatusOr<Json>(const std::string& name)> variable;
  Json resource_group = Json::MakeObject();  // {id, name, type, location, properties}
  Json subscription = Json::MakeObject();    // {id, subscriptionId, tenantId, displayName}
  Json deployment = Json::MakeObject();      // {name, properties}
  std::string tenant_id;
  // utcNow() is only allowed in parameter default values, as in ARM.
  bool allow_utc_now = false;
  int64_t now_unix_seconds = 0;
  // Work left, in bytes and values produced; shared by every expression of
  // one deployment so a chain of variables cannot grow exponentially.
  int64_t budget = 64 << 20;
};

// True if `s` is an expression: it starts with '[' and ends with ']' and
// does not start with "[[" (ARM's escape for a literal '[').
bool IsExpression(std::string_view s);

// Evaluates one JSON string value of a template: an expression is evaluated;
// a literal is returned as a string (with a leading "[[" unescaped).
StatusOr<Json> EvaluateString(std::string_view s, ExpressionEnv& env);

}  // namespace imagesmith::tmpl::arm
