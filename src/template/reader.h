// Internal to template/: the machinery the parser uses to walk a JSON document
// against the template schema while collecting every problem, rather than
// stopping at the first. Not part of the layer's public interface.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/region.h"
#include "base/resource_id.h"
#include "base/sha256.h"
#include "template/diagnostics.h"
#include "template/model.h"

namespace imagesmith::tmpl::internal {

// Collects diagnostics for one file. Not thread-safe.
class Context {
 public:
  void Error(SourcePos pos, const std::string& path, std::string message);
  void Warning(SourcePos pos, const std::string& path, std::string message);
  int error_count() const { return errors_; }
  std::vector<Diagnostic>& diagnostics() { return diags_; }

  std::string api_version;  // as normalised, for feature gates ("" if unknown)

 private:
  std::vector<Diagnostic> diags_;
  int errors_ = 0;
};

// The member of object `obj` named `name` in any case, or nullptr (also when
// `obj` is not an object). Reports nothing.
const Json* FindMember(const Json& obj, std::string_view name);

// "a.b" / "a[\"odd key\"]" / "a[3]".
std::string MemberPath(const std::string& path, std::string_view key);
std::string IndexPath(const std::string& path, size_t index);

// How a string field is checked for placeholders left from the reference's
// examples (<subscriptionID>, <region>, {destinationResourceGroupName}).
enum class TextKind {
  kStructured,  // IDs, names, regions, URIs: any <word> inside is a placeholder
  kFreeText,    // commands and scripts: only a whole value like "<commands to run>"
};

// Reports and returns true if `value` is a placeholder.
bool CheckPlaceholder(Context& ctx, const Json& value, const std::string& path, TextKind kind);

// A view of one JSON object being read against a list of known properties.
// Lookups ignore case, as Azure does. Construction reports a non-object value
// and duplicate keys; Finish() reports every property that was not known.
class ObjectView {
 public:
  // `what` names the object in messages: "the template", "a Shell customizer".
  ObjectView(Context& ctx, const Json& value, std::string path, std::string what,
             std::initializer_list<const char*> known);

  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }
  SourcePos pos() const { return value_.pos; }
  Context& ctx() { return ctx_; }

  // The member named `canonical` (any case), or nullptr.
  const Json* Get(std::string_view canonical) const;
  // The path of member `canonical`.
  std::string PathOf(std::string_view canonical) const { return MemberPath(path_, canonical); }

  // Replaces the description and known properties, for objects whose schema
  // depends on a discriminator such as "type" read first.
  void SetSchema(std::string what, std::initializer_list<const char*> known);

  // Properties that belong to a sibling object type, for "X is a property of
  // Y" hints on unknown properties.
  void AddSibling(std::string what, std::initializer_list<const char*> known);
  // Properties the service writes (read-only); given ones draw a warning.
  // Properties accepted and ignored with a warning: ones the service writes
  // (read-only), or ARM deployment properties imagesmith has no use for.
  void AddIgnored(std::initializer_list<const char*> names, std::string why);
  void AddReadOnly(std::initializer_list<const char*> names) {
    AddIgnored(names, "read-only property; it is reported by the service and ignored on input");
  }

  // Reports unknown properties with a did-you-mean suggestion.
  void Finish();

 private:
  Context& ctx_;
  const Json& value_;
  std::string path_;
  std::string what_;
  std::vector<std::string> known_;
  std::vector<std::pair<std::string, std::string>> ignored_;  // name, why
  std::vector<std::pair<std::string, std::vector<std::string>>> siblings_;
  bool ok_ = false;
};

// Typed readers. Each returns nullopt when the property is absent or wrong
// (having reported the problem); `required` reports an absent property.
std::optional<std::string> ReadString(ObjectView& v, std::string_view name, bool required,
                                      TextKind kind = TextKind::kStructured,
                                      bool allow_empty = false);
std::optional<bool> ReadBool(ObjectView& v, std::string_view name, bool required);
// Integers in [min, max]; `range_hint` completes "expected an integer ...".
std::optional<int64_t> ReadInt(ObjectView& v, std::string_view name, bool required, int64_t min,
                               int64_t max);
// A string enum; returns the index into `allowed` (matched ignoring case).
std::optional<size_t> ReadEnum(ObjectView& v, std::string_view name, bool required,
                               const std::vector<std::string>& allowed);
// An array of strings; a single string is accepted as a one-element array.
std::optional<std::vector<std::string>> ReadStringList(ObjectView& v, std::string_view name,
                                                       bool required, TextKind kind,
                                                       bool allow_empty_list);
std::optional<Region> ReadRegion(ObjectView& v, std::string_view name, bool required,
                                 bool image_builder_only);
std::optional<Sha256Digest> ReadSha256(ObjectView& v, std::string_view name);
std::optional<Tags> ReadTags(ObjectView& v, std::string_view name);

// A resource ID whose type must be one of `types` (Azure full types, e.g.
// "Microsoft.Compute/images"). `expected_shape` is shown in errors.
std::optional<ResourceId> ParseResourceIdValue(Context& ctx, const Json& value,
                                               const std::string& path,
                                               const std::vector<std::string>& types,
                                               const std::string& expected_shape);
std::optional<ResourceId> ReadResourceId(ObjectView& v, std::string_view name, bool required,
                                         const std::vector<std::string>& types,
                                         const std::string& expected_shape);

// A human name for an Azure type in messages ("a managed image ID").
std::string DescribeResourceType(const ResourceId& id);

// From this API version on, Azure matches property names and enum values
// case-sensitively and requires an identity.
inline constexpr const char kStrictApiVersion[] = "2024-02-01";

// True when the template's (known) apiVersion is kStrictApiVersion or newer,
// and the words that explain it in a diagnostic.
bool StrictCase(const Context& ctx);
std::string StrictCaseNote(const Context& ctx);

// True if the template's apiVersion is at least `min` (lexical compare of
// YYYY-MM-DD works); unknown versions count as new enough.
bool ApiAtLeast(const Context& ctx, std::string_view min);

// Section parsers (parse_steps.cc, parse_distribute.cc).
std::optional<Step> ParseStep(Context& ctx, const Json& value, const std::string& path,
                              bool validator);
std::optional<Source> ParseSource(Context& ctx, const Json& value, const std::string& path);
std::optional<Distribution> ParseDistribution(Context& ctx, const Json& value,
                                              const std::string& path);

}  // namespace imagesmith::tmpl::internal
