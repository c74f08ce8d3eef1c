// An attribute's value, compiled from its text (template_file.h's
// Attribute) and evaluated against parameters.
//
// `Key = TEXT`: TEXT is split at top-level commas into a list (one item
// stays a scalar). Each item is
//   "..."            a string (backslash escapes); '''...''' likewise
//   $Name            a whole-value reference: the parameter's value, its
//   ${expr}          type kept (an integer stays an integer, a list a list)
//   true / false     booleans (any case)
//   123, -4, 1.5     integers and doubles
//   undefined        not set (the attribute is dropped)
//   anything else    a string; `$Name` and `${expr}` inside it are replaced
//                    by their text (an embedded reference becomes a string)
// `Key := EXPR`: the whole value is one expression (expr.h).
//
// Thread-compatible; immutable once compiled.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/statusor.h"
#include "cyclecloud/expr.h"
#include "cyclecloud/template_file.h"
#include "cyclecloud/value.h"

namespace imagesmith::cyclecloud {

class AttributeValue {
 public:
  // Fails with FILE:LINE:COL at the first bad expression or reference.
  static StatusOr<AttributeValue> Compile(const Attribute& attribute);
  // A value given as plain text (a .properties parameter file): the same
  // rules as `Key = TEXT`.
  static StatusOr<AttributeValue> CompileText(const std::string& text, const Location& at);

  // Every name the value reads, with its location.
  std::vector<Expression::NameUse> Names() const;
  // FILE:LINE:COL "unknown parameter NAME" for the first name `scope` does
  // not know.
  Status CheckReferences(const Scope& scope) const;
  StatusOr<Value> Evaluate(const Scope& scope) const;

 private:
  struct Piece {
    std::string text;                  // literal text, or
    std::shared_ptr<Expression> expr;  // a reference / ${...}
  };
  struct Item {
    std::vector<Piece> pieces;
    bool quoted = false;  // "..." or '''...''': a string, never typed
  };
  StatusOr<Value> EvaluateItem(const Item& item, const Scope& scope) const;

  std::vector<Item> items_;
  std::shared_ptr<Expression> whole_;  // for :=
  std::string raw_;
};

// The literal typing of an unquoted item: "true" -> bool, "12" -> int,
// "1.5" -> double, "undefined" -> undefined, else the string itself.
Value TypeLiteral(const std::string& text);

}  // namespace imagesmith::cyclecloud
