// The expression language of CycleCloud templates: what is inside `${...}`
// and what follows `:=`. Parsed once into a tree (Expression), checked for
// unknown names (CheckReferences) and evaluated against a Scope.
//
// Grammar (precedence from low to high; keywords and function names ignore
// case):
//   expr     := or ('?' expr ':' expr)?
//   or       := and ('||' and)*
//   and      := compare ('&&' compare)*
//   compare  := sum (op sum)?     op: == != === !== =?= =!= is isnt in
//                                      < <= > >=
//   sum      := product (('+' | '-') product)*
//   product  := unary (('*' | '/' | '%') unary)*
//   unary    := ('!' | '-') unary | postfix
//   postfix  := primary ('.' NAME | '[' expr ']' | '(' args ')')*
//   primary  := NUMBER | STRING | true | false | undefined | null
//             | NAME | '$' NAME | '(' expr ')'
//             | '{' [expr (',' expr)*] '}'            a list
//             | '[' [NAME '=' expr (';' NAME '=' expr)* [';']] ']'   a record
// Strings take "..." or '...' with backslash escapes.
//
// Semantics (doc/cyclecloud.md has the table): == and != compare strings
// ignoring case and treat undefined as equal only to undefined; ===, is, =?=
// compare exactly (!==, isnt, =!= negate them); `x in {..}` is membership
// by ==. && || ! use truth (false, undefined, 0 and "" are false). + adds
// numbers and joins strings; / of two integers is integer division.
//
// Thread-compatible; an Expression is immutable once parsed.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/statusor.h"
#include "cyclecloud/location.h"
#include "cyclecloud/value.h"

namespace imagesmith::cyclecloud {

// Answers the names an expression uses. Lookup gets the first name of a
// path (`Subnet` of `Subnet.Name`) and returns its value: a parameter's
// value, ClusterName, or a Deferred value for a node of another cluster
// ([noderef]) or an [environment]. It returns NotFound for a name it does
// not know (the caller reports it with the expression's location).
class Scope {
 public:
  virtual ~Scope() = default;
  virtual StatusOr<Value> Lookup(std::string_view name) const = 0;
};

struct ExprNode;

class Expression {
 public:
  // Parses `text`; `start` is where text[0] is in its file, so errors say
  // "FILE:LINE:COL: ..." for the exact character. The whole text must be
  // one expression.
  static StatusOr<Expression> Parse(std::string_view text, const Location& start);

  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;
  ~Expression();

  // Every name the expression reads (first component of each path, and
  // each $Name), with where it is, in order of appearance.
  struct NameUse {
    std::string name;
    Location at;
  };
  std::vector<NameUse> Names() const;

  // Fails with "FILE:LINE:COL: unknown parameter NAME" for the first name
  // `scope` does not know, even in a branch evaluation would not take.
  Status CheckReferences(const Scope& scope) const;

  // Evaluates. Errors (a function given the wrong kind, division by zero,
  // an unknown function or name) carry the location of the operator or
  // call. A result that depends on a running cluster is Deferred holding
  // "${TEXT}".
  StatusOr<Value> Evaluate(const Scope& scope) const;

  const std::string& text() const { return text_; }

 private:
  Expression() = default;
  std::unique_ptr<ExprNode> root_;
  std::string text_;
};

// The built-in functions, lower-cased ("ifthenelse", "strjoin", ...).
const std::vector<std::string>& FunctionNames();

}  // namespace imagesmith::cyclecloud
