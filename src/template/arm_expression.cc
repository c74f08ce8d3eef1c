// The ARM expression language: a small parser to a syntax tree, then an
// evaluator over Json values. The parser and the evaluator both count depth,
// and every value produced is charged to ExpressionEnv::budget, so no input
// can exhaust the stack or the memory.
#include "template/arm_expression.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <memory>
#include <vector>

#include "base/strings.h"
#include "template/arm_internal.h"

namespace imagesmith::tmpl::arm {

using internal::ApplyFunction;
using internal::CheckCount;
using internal::ErrorAt;
using internal::KindName;
using internal::Node;

namespace {

// ---- Parser ---------------------------------------------------------------------

class Parser {
 public:
  // `s` is the whole string including the brackets.
  explicit Parser(std::string_view s) : s_(s) {}

  StatusOr<std::unique_ptr<Node>> ParseTop() {
    pos_ = 1;  // after '['
    end_ = s_.size() - 1;
    SkipSpace();
    if (pos_ >= end_) return ErrorAt(pos_ + 1, "empty expression; write a function call");
    ASSIGN_OR_RETURN(std::unique_ptr<Node> n, ParseExpr(0));
    SkipSpace();
    if (pos_ < end_) {
      return ErrorAt(pos_ + 1, "unexpected " + Describe() + " after the expression");
    }
    return n;
  }

 private:
  void SkipSpace() {
    while (pos_ < end_ &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  std::string Describe() const {
    if (pos_ >= end_) return "end of expression";
    return QuoteForMessage(std::string(1, s_[pos_]));
  }
  static bool IdentChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }

  StatusOr<std::unique_ptr<Node>> ParseExpr(int depth) {
    if (depth > kMaxExpressionDepth) {
      return ErrorAt(pos_ + 1, "expression nested more than " +
                                   std::to_string(kMaxExpressionDepth) + " levels deep");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<Node> n, ParsePrimary(depth));
    int postfix = 0;
    for (;;) {
      SkipSpace();
      if (pos_ >= end_ || (s_[pos_] != '.' && s_[pos_] != '[')) break;
      if (++postfix + depth > kMaxExpressionDepth) {
        return ErrorAt(pos_ + 1, "expression nested more than " +
                                     std::to_string(kMaxExpressionDepth) + " levels deep");
      }
      auto outer = std::make_unique<Node>();
      outer->offset = pos_ + 1;
      if (s_[pos_] == '.') {
        ++pos_;
        SkipSpace();
        size_t start = pos_;
        while (pos_ < end_ && IdentChar(s_[pos_])) ++pos_;
        if (start == pos_) return ErrorAt(pos_ + 1, "expected a property name after '.'");
        outer->kind = Node::Kind::kMember;
        outer->text = std::string(s_.substr(start, pos_ - start));
        outer->args.push_back(std::move(n));
      } else {
        ++pos_;
        outer->kind = Node::Kind::kIndex;
        outer->args.push_back(std::move(n));
        ASSIGN_OR_RETURN(std::unique_ptr<Node> index, ParseExpr(depth + postfix));
        outer->args.push_back(std::move(index));
        SkipSpace();
        if (pos_ >= end_ || s_[pos_] != ']') {
          return ErrorAt(pos_ + 1, "expected ']' to close the index, found " + Describe());
        }
        ++pos_;
      }
      n = std::move(outer);
    }
    return n;
  }

  StatusOr<std::unique_ptr<Node>> ParsePrimary(int depth) {
    SkipSpace();
    auto n = std::make_unique<Node>();
    n->offset = pos_ + 1;
    if (pos_ >= end_) return ErrorAt(pos_ + 1, "expression ends where a value was expected");
    char c = s_[pos_];
    if (c == '\'') {
      ++pos_;
      n->kind = Node::Kind::kString;
      for (;;) {
        if (pos_ >= end_) return ErrorAt(n->offset, "string not closed with '");
        if (s_[pos_] == '\'') {
          if (pos_ + 1 < end_ && s_[pos_ + 1] == '\'') {
            n->text += '\'';
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        n->text += s_[pos_++];
      }
      return n;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = pos_;
      if (c == '-') ++pos_;
      while (pos_ < end_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      n->kind = Node::Kind::kInt;
      n->text = std::string(s_.substr(start, pos_ - start));
      if (n->text == "-") return ErrorAt(n->offset, "expected digits after '-'");
      return n;
    }
    if (!IdentChar(c)) {
      return ErrorAt(pos_ + 1,
                     "expected a function call, a 'string' or a number, found " + Describe());
    }
    size_t start = pos_;
    while (pos_ < end_ && IdentChar(s_[pos_])) ++pos_;
    n->kind = Node::Kind::kCall;
    n->text = std::string(s_.substr(start, pos_ - start));
    SkipSpace();
    if (pos_ >= end_ || s_[pos_] != '(') {
      std::string lower = AsciiToLower(n->text);
      if (lower == "true" || lower == "false" || lower == "null") return n;  // literals
      return ErrorAt(n->offset, "expected '(' after the function name " + QuoteForMessage(n->text) +
                                    " (strings are written in single quotes)");
    }
    ++pos_;
    SkipSpace();
    if (pos_ < end_ && s_[pos_] == ')') {
      ++pos_;
      return n;
    }
    for (;;) {
      ASSIGN_OR_RETURN(std::unique_ptr<Node> arg, ParseExpr(depth + 1));
      n->args.push_back(std::move(arg));
      SkipSpace();
      if (pos_ < end_ && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < end_ && s_[pos_] == ')') {
        ++pos_;
        break;
      }
      return ErrorAt(
          pos_ + 1, "expected ',' or ')' in the arguments of " + n->text + ", found " + Describe());
    }
    return n;
  }

  std::string_view s_;
  size_t pos_ = 0;
  size_t end_ = 0;
};

// What a value costs against the budget: its bytes and its nodes. Stops
// counting once `limit` is passed.
int64_t Cost(const Json& v, int64_t limit) {
  int64_t c = 1;
  if (v.is_string()) {
    c += static_cast<int64_t>(v.string_value().size());
  } else if (v.is_number()) {
    c += static_cast<int64_t>(v.number_text().size());
  } else if (v.is_array()) {
    for (const Json& item : v.array_items()) {
      if (c > limit) break;
      c += Cost(item, limit - c);
    }
  } else if (v.is_object()) {
    for (const JsonMember& m : v.object_items()) {
      if (c > limit) break;
      c += static_cast<int64_t>(m.key.size()) + Cost(m.value, limit - c);
    }
  }
  return c;
}

// ---- Evaluator ------------------------------------------------------------------------

class Evaluator {
 public:
  explicit Evaluator(ExpressionEnv& env) : env_(env) {}

  StatusOr<Json> Eval(const Node& n, int depth) {
    if (depth > kMaxExpressionDepth * 2) {
      return ErrorAt(n.offset, "expression nested too deeply");
    }
    ASSIGN_OR_RETURN(Json v, EvalNode(n, depth));
    int64_t cost = Cost(v, env_.budget + 1);
    if (cost > env_.budget) {
      return ResourceExhaustedError(
          "at character " + std::to_string(n.offset) +
          ": the expressions of this template produce more than 64 MiB of values; a variable "
          "or parameter grows without bound");
    }
    env_.budget -= cost;
    return v;
  }

 private:
  StatusOr<Json> EvalNode(const Node& n, int depth) {
    switch (n.kind) {
      case Node::Kind::kString:
        return Json::String(n.text);
      case Node::Kind::kInt: {
        int64_t value = 0;
        auto [p, ec] = std::from_chars(n.text.data(), n.text.data() + n.text.size(), value);
        if (ec != std::errc() || p != n.text.data() + n.text.size()) {
          return ErrorAt(n.offset, "integer " + n.text + " does not fit in 64 bits");
        }
        return Json::Int(value);
      }
      case Node::Kind::kMember: {
        ASSIGN_OR_RETURN(Json obj, Eval(*n.args[0], depth + 1));
        if (!obj.is_object()) {
          return ErrorAt(
              n.offset, "cannot read property " + QuoteForMessage(n.text) + " of " + KindName(obj));
        }
        for (JsonMember& m : obj.object_items()) {
          if (EqualsIgnoreCase(m.key, n.text)) return std::move(m.value);
        }
        std::vector<std::string> keys;
        for (const JsonMember& m : obj.object_items()) keys.push_back(m.key);
        return ErrorAt(n.offset, "the object has no property " + QuoteForMessage(n.text) +
                                     (keys.empty() ? std::string(" (it is empty)")
                                                   : "; it has " + Join(keys, ", ")));
      }
      case Node::Kind::kIndex: {
        ASSIGN_OR_RETURN(Json obj, Eval(*n.args[0], depth + 1));
        ASSIGN_OR_RETURN(Json index, Eval(*n.args[1], depth + 1));
        if (obj.is_array()) {
          auto i = index.AsInt64();
          if (!index.is_number() || !i) {
            return ErrorAt(n.offset, "an array index must be an integer, found " + KindName(index));
          }
          if (*i < 0 || static_cast<uint64_t>(*i) >= obj.array_items().size()) {
            return ErrorAt(n.offset, "index " + std::to_string(*i) + " is outside the array of " +
                                         std::to_string(obj.array_items().size()) + " items");
          }
          return std::move(obj.array_items()[static_cast<size_t>(*i)]);
        }
        if (obj.is_object() && index.is_string()) {
          for (JsonMember& m : obj.object_items()) {
            if (EqualsIgnoreCase(m.key, index.string_value())) return std::move(m.value);
          }
          return ErrorAt(n.offset,
                         "the object has no property " + QuoteForMessage(index.string_value()));
        }
        return ErrorAt(n.offset, "cannot index " + KindName(obj) + " with " + KindName(index));
      }
      case Node::Kind::kCall:
        return Call(n, depth);
    }
    return InternalError("unknown node");
  }

  StatusOr<Json> Call(const Node& n, int depth) {
    std::string fn = AsciiToLower(n.text);
    // Literals and functions that evaluate only some of their arguments.
    if (fn == "true" || fn == "false") {
      RETURN_IF_ERROR(CheckCount(n, 0, 0));
      return Json::Bool(fn == "true");
    }
    if (fn == "null") {
      RETURN_IF_ERROR(CheckCount(n, 0, 0));
      return Json::Null();
    }
    if (fn == "if") {
      RETURN_IF_ERROR(CheckCount(n, 3, 3));
      ASSIGN_OR_RETURN(Json cond, Eval(*n.args[0], depth + 1));
      if (!cond.is_bool()) {
        return ErrorAt(n.args[0]->offset,
                       "if(): the condition must be a boolean, found " + KindName(cond));
      }
      return Eval(*n.args[cond.bool_value() ? 1 : 2], depth + 1);
    }
    if (fn == "coalesce") {
      RETURN_IF_ERROR(CheckCount(n, 1, SIZE_MAX));
      for (const auto& arg : n.args) {
        ASSIGN_OR_RETURN(Json v, Eval(*arg, depth + 1));
        if (!v.is_null()) return v;
      }
      return Json::Null();
    }
    if (fn == "reference" || fn == "resourceinfo" || fn == "pickzones" || fn == "providers" ||
        StartsWith(fn, "list")) {
      return UnimplementedError("at character " + std::to_string(n.offset) + ": " + n.text +
                                "() reads the state of deployed resources, which imagesmith "
                                "cannot evaluate; pass the value as a parameter instead");
    }
    if (fn == "filter" || fn == "map" || fn == "reduce" || fn == "sort" || fn == "lambda" ||
        fn == "todictionary" || fn == "items" || fn == "copyindex") {
      return UnimplementedError("at character " + std::to_string(n.offset) + ": " + n.text +
                                "() is not supported by imagesmith's ARM evaluator");
    }
    std::vector<Json> a;
    a.reserve(n.args.size());
    for (const auto& arg : n.args) {
      ASSIGN_OR_RETURN(Json v, Eval(*arg, depth + 1));
      a.push_back(std::move(v));
    }
    return ApplyFunction(n, fn, a, env_);
  }

  ExpressionEnv& env_;
};

}  // namespace

bool IsExpression(std::string_view s) {
  return s.size() >= 2 && s.front() == '[' && s.back() == ']' && s.substr(0, 2) != "[[";
}

StatusOr<Json> EvaluateString(std::string_view s, ExpressionEnv& env) {
  if (!IsExpression(s)) {
    if (s.substr(0, 2) == "[[") return Json::String(std::string(s.substr(1)));
    return Json::String(std::string(s));
  }
  if (s.size() > kMaxExpressionChars) {
    return InvalidArgumentError("the expression is " + std::to_string(s.size()) +
                                " characters long; ARM's limit is " +
                                std::to_string(kMaxExpressionChars));
  }
  Parser parser(s);
  ASSIGN_OR_RETURN(std::unique_ptr<Node> tree, parser.ParseTop());
  Evaluator ev(env);
  return ev.Eval(*tree, 0);
}

}  // namespace imagesmith::tmpl::arm
