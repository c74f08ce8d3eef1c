// Values of the CycleCloud template language: what an attribute, a
// parameter or an expression evaluates to. CycleCloud's types are undefined
// (the attribute is not set), booleans, integers, doubles, strings, lists
// and records ([Name=...; Label=...] in parameter menus). A fifth kind,
// deferred, stands for a reference that only a running cluster can answer
// (`${filer.instance.PrivateIp}` names a node of another cluster); it keeps
// the expression's text.
//
// Value is a plain copyable value type; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"

namespace imagesmith::cyclecloud {

class Value {
 public:
  enum class Kind { kUndefined, kBool, kInt, kDouble, kString, kList, kRecord, kDeferred };
  using List = std::vector<Value>;
  using Record = std::vector<std::pair<std::string, Value>>;

  Value() = default;  // undefined
  static Value Undefined() { return Value(); }
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Double(double d);
  static Value String(std::string s);
  static Value MakeList(List items);
  static Value MakeRecord(Record fields);
  // `text` is the expression as written, for messages and show_cluster.
  static Value Deferred(std::string text);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_deferred() const { return kind_ == Kind::kDeferred; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kDouble; }

  // Accessors require the matching kind (deferred_text: kDeferred).
  bool bool_value() const { return bool_; }
  int64_t int_value() const { return int_; }
  double double_value() const { return kind_ == Kind::kInt ? static_cast<double>(int_) : double_; }
  const std::string& string_value() const { return string_; }
  const std::string& deferred_text() const { return string_; }
  const List& list_items() const { return list_; }
  const Record& record_fields() const { return record_; }
  // The field named `name` (ignoring case) of a record, or nullptr.
  const Value* Field(std::string_view name) const;

  // CycleCloud's truth: false, undefined, 0 and "" are false.
  bool Truthy() const;
  // The text an embedded reference becomes: numbers in decimal, booleans
  // "true"/"false", undefined "", lists joined with ", ".
  std::string ToText() const;
  // "a string", "an integer", ... for messages.
  std::string_view KindName() const;

  // Same kind and value; strings compare exactly (== in the language; =?=
  // compares ignoring case, see expr.cc). An int equals the double of the
  // same value.
  bool Equals(const Value& other) const;

  // JSON: undefined -> null, deferred -> {"deferred": text}.
  Json ToJson() const;
  // The inverse for JSON parameter files (objects become records).
  static Value FromJson(const Json& json);

 private:
  Kind kind_ = Kind::kUndefined;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  List list_;
  Record record_;
};

}  // namespace imagesmith::cyclecloud
