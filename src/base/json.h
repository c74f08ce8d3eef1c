// A JSON document model that remembers where every value came from.
//
// imagesmith reports errors in user files as file:line:column, so the parser
// records the source position of every value and object key. Objects keep
// their members in file order and keep duplicate keys (the template layer
// decides whether a duplicate is an error). Numbers keep their exact text so
// a 64-bit integer or a value like 1e400 is never silently rounded.
//
// Json is a value type (copyable, movable). It is thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/statusor.h"

namespace imagesmith {

// A position in a text file: 1-based line and column (columns count Unicode
// code points, as editors do). {0, 0} means "not from a file".
struct SourcePos {
  int line = 0;
  int column = 0;
  bool known() const { return line > 0; }
  friend bool operator==(const SourcePos&, const SourcePos&) = default;
};

struct JsonMember;

class Json {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<Json>;
  using Object = std::vector<JsonMember>;

  Json() = default;  // null
  static Json Null() { return Json(); }
  static Json Bool(bool b);
  static Json Int(int64_t n);
  // `text` must be a valid JSON number literal.
  static Json NumberText(std::string text);
  static Json String(std::string s);
  static Json MakeArray();
  static Json MakeObject();

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_number() const { return kind() == Kind::kNumber; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_object() const { return kind() == Kind::kObject; }

  // Accessors require the matching kind.
  bool bool_value() const { return std::get<bool>(data_); }
  const std::string& number_text() const { return std::get<NumberRep>(data_).text; }
  const std::string& string_value() const { return std::get<std::string>(data_); }
  const Array& array_items() const { return std::get<Array>(data_); }
  Array& array_items() { return std::get<Array>(data_); }
  const Object& object_items() const;
  Object& object_items();

  // The integer value of a number with no fraction or exponent that fits in
  // int64; nullopt otherwise (also for non-numbers).
  std::optional<int64_t> AsInt64() const;
  // The value of any number as a double; nullopt for non-numbers or values
  // outside double's range.
  std::optional<double> AsDouble() const;

  // Object helpers (require is_object()). Find returns the first member with
  // exactly `key`, or nullptr. Set replaces the first such member or appends.
  const Json* Find(std::string_view key) const;
  Json* Find(std::string_view key);
  Json& Set(std::string key, Json value);
  // Array helper (requires is_array()).
  void Append(Json value);

  // Serializes to JSON text. indent < 0 gives compact output; otherwise
  // pretty-printed with `indent` spaces per level. Strings are emitted as
  // UTF-8 with the mandatory escapes only.
  std::string Dump(int indent = 2) const;

  // A lowercase name for messages: "null", "a boolean", "a number", "a string",
  // "an array", "an object".
  std::string_view KindDescription() const;

  SourcePos pos;  // where the value starts in its source file, if parsed

 private:
  struct NumberRep {
    std::string text;
  };
  // Objects are boxed: JsonMember is incomplete here, and std::variant needs
  // complete alternatives under every standard library.
  struct ObjectBox {
    ObjectBox();
    ObjectBox(const ObjectBox& other);
    ObjectBox(ObjectBox&& other) noexcept;
    ObjectBox& operator=(const ObjectBox& other);
    ObjectBox& operator=(ObjectBox&& other) noexcept;
    ~ObjectBox();
    std::unique_ptr<Object> items;
  };
  std::variant<std::monostate, bool, NumberRep, std::string, Array, ObjectBox> data_;
};

struct JsonMember {
  std::string key;
  SourcePos key_pos;
  Json value;
};

struct JsonParseOptions {
  // Accept // line and /* block */ comments, as Azure Resource Manager does.
  bool allow_comments = true;
  // Nesting deeper than this is rejected (protects the stack).
  int max_depth = 128;
};

// A syntax error: where it is and what was expected there.
struct JsonSyntaxError {
  SourcePos pos;
  std::string message;
};

// Parses `text` as one JSON document. A leading UTF-8 byte-order mark is
// skipped. On failure returns InvalidArgument with "line:column: message" and,
// if `error` is non-null, fills it with the position and bare message.
StatusOr<Json> ParseJson(std::string_view text, const JsonParseOptions& options = {},
                         JsonSyntaxError* error = nullptr);

// Appends `s` to `out` as a quoted JSON string.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace imagesmith
