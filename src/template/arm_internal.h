// Internal to template/: the ARM expression syntax tree and the function
// library the evaluator calls (arm_functions.cc). Not part of the layer's
// public interface; see arm_expression.h.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/statusor.h"
#include "template/arm_expression.h"

namespace imagesmith::tmpl::arm::internal {

struct Node {
  enum class Kind { kString, kInt, kCall, kMember, kIndex };
  Kind kind = Kind::kString;
  std::string text;  // the string, the number, the function or member name
  std::vector<std::unique_ptr<Node>> args;
  size_t offset = 0;  // 1-based character in the whole string, for messages
};

// InvalidArgument "at character N: message".
Status ErrorAt(size_t offset, const std::string& message);

// "a string", "an array", ... for messages.
std::string KindName(const Json& v);

// Checks that call `n` has min..max arguments (max SIZE_MAX: no limit).
Status CheckCount(const Node& n, size_t min, size_t max);

// Applies the function `fn` (its name in lower case) of call `n` to the
// evaluated arguments `a` (which it may consume). Unknown functions are an
// error with a did-you-mean suggestion.
StatusOr<Json> ApplyFunction(const Node& n, const std::string& fn, std::vector<Json>& a,
                             ExpressionEnv& env);

}  // namespace imagesmith::tmpl::arm::internal
