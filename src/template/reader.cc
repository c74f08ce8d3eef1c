#include "template/reader.h"

#include <algorithm>

#include "base/strings.h"

namespace imagesmith::tmpl {

// ---- Diagnostics --------------------------------------------------------------

std::string Diagnostic::Format(std::string_view default_file) const {
  std::string out(file.empty() ? default_file : std::string_view(file));
  if (pos.known()) out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  out += severity == Severity::kError ? ": error: " : ": warning: ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

Json Diagnostic::ToJson() const {
  Json j = Json::MakeObject();
  j.Set("severity", Json::String(severity == Severity::kError ? "error" : "warning"));
  if (!file.empty()) j.Set("file", Json::String(file));
  if (pos.known()) {
    j.Set("line", Json::Int(pos.line));
    j.Set("column", Json::Int(pos.column));
  }
  j.Set("path", Json::String(path));
  j.Set("message", Json::String(message));
  return j;
}

namespace internal {

void Context::Error(SourcePos pos, const std::string& path, std::string message) {
  diags_.push_back({Severity::kError, pos, path, std::move(message), ""});
  ++errors_;
}

void Context::Warning(SourcePos pos, const std::string& path, std::string message) {
  diags_.push_back({Severity::kWarning, pos, path, std::move(message), ""});
}

// ---- Paths --------------------------------------------------------------------

std::string MemberPath(const std::string& path, std::string_view key) {
  bool simple = !key.empty();
  for (char c : key) {
    simple = simple && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '$' || c == '-');
  }
  if (simple) return path.empty() ? std::string(key) : path + "." + std::string(key);
  std::string quoted;
  AppendJsonString(quoted, key);
  return path + "[" + quoted + "]";
}

const Json* FindMember(const Json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  for (const JsonMember& m : obj.object_items()) {
    if (EqualsIgnoreCase(m.key, name)) return &m.value;
  }
  return nullptr;
}

std::string IndexPath(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// ---- Placeholders -------------------------------------------------------------

namespace {

std::string PlaceholderHint(std::string_view placeholder) {
  std::string p = AsciiToLower(placeholder);
  if (p.find("subscription") != std::string::npos) {
    return " (run 'imagesmith account show' to see your subscription ID)";
  }
  if (p.find("region") != std::string::npos || p.find("location") != std::string::npos) {
    return " (a region such as eastus)";
  }
  if (p.find("checksum") != std::string::npos || p.find("sha256") != std::string::npos) {
    return " (the output of sha256sum FILE)";
  }
  return "";
}

// Finds "<word ...>" with only letters, digits, spaces and _ . - inside.
std::optional<std::string> FindAngleToken(std::string_view s) {
  for (size_t open = s.find('<'); open != std::string_view::npos; open = s.find('<', open + 1)) {
    size_t close = s.find('>', open + 1);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view inner = s.substr(open + 1, close - open - 1);
    bool word = !inner.empty() && inner.size() <= 80;
    for (char c : inner) {
      word = word && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == ' ' || c == '_' || c == '.' || c == '-' || c == '/');
    }
    if (word) return std::string(s.substr(open, close - open + 1));
  }
  return std::nullopt;
}

// Finds "{identifier}" as the reference writes some path segments; the REST
// documentation writes them with dashes ("{subscription-id}"). A braced GUID
// is a value, not a placeholder.
std::optional<std::string> FindBraceToken(std::string_view s) {
  for (size_t open = s.find('{'); open != std::string_view::npos; open = s.find('{', open + 1)) {
    size_t close = s.find('}', open + 1);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view inner = s.substr(open + 1, close - open - 1);
    bool ident = !inner.empty() && inner.size() <= 80;
    bool has_non_hex_letter = false;
    for (char c : inner) {
      ident = ident && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-');
      char lower = static_cast<char>(c | 0x20);
      has_non_hex_letter = has_non_hex_letter || (lower >= 'g' && lower <= 'z') || c == '_';
    }
    ident = ident && has_non_hex_letter;
    if (ident) return std::string(s.substr(open, close - open + 1));
  }
  return std::nullopt;
}

}  // namespace

bool CheckPlaceholder(Context& ctx, const Json& value, const std::string& path, TextKind kind) {
  if (!value.is_string()) return false;
  std::string_view s = value.string_value();
  std::optional<std::string> token;
  if (kind == TextKind::kStructured && s.size() > 2 && s.front() == '[' && s.back() == ']' &&
      s[1] != '[' && s.find('(') != std::string_view::npos) {
    ctx.Error(value.pos, path,
              "ARM template expression " + QuoteForMessage(s) +
                  " left in the value; expressions are evaluated only in ARM deployment templates "
                  "(a file with \"$schema\", \"parameters\" and \"resources\": [...]), so "
                  "deploy this file as one or write the value itself");
    return true;
  }
  if (kind == TextKind::kStructured) {
    token = FindAngleToken(s);
    if (!token && StartsWith(s, "/")) token = FindBraceToken(s);
  } else {
    std::string_view t = TrimWhitespace(s);
    if (t.size() > 2 && t.front() == '<' && t.back() == '>' &&
        t.find(' ') != std::string_view::npos && FindAngleToken(t) == std::string(t)) {
      token = std::string(t);
    }
  }
  if (!token) return false;
  ctx.Error(value.pos, path,
            "placeholder " + *token + " left in the value; replace it with a real value" +
                PlaceholderHint(*token));
  return true;
}

// ---- Case rules of newer API versions -------------------------------------------

bool StrictCase(const Context& ctx) {
  return !ctx.api_version.empty() && ApiAtLeast(ctx, kStrictApiVersion);
}

std::string StrictCaseNote(const Context& ctx) {
  return std::string("API version ") + kStrictApiVersion +
         " and later match names and values case-sensitively (this template uses " +
         ctx.api_version + ")";
}

// ---- ObjectView ---------------------------------------------------------------

ObjectView::ObjectView(Context& ctx, const Json& value, std::string path, std::string what,
                       std::initializer_list<const char*> known)
    : ctx_(ctx), value_(value), path_(std::move(path)), what_(std::move(what)) {
  for (const char* k : known) known_.emplace_back(k);
  if (!value.is_object()) {
    if (!CheckPlaceholder(ctx, value, path_, TextKind::kStructured)) {
      ctx.Error(
          value.pos, path_,
          "expected " + what_ + " (a JSON object), found " + std::string(value.KindDescription()));
    }
    return;
  }
  ok_ = true;
  const auto& members = value.object_items();
  for (size_t i = 0; i < members.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (EqualsIgnoreCase(members[i].key, members[j].key)) {
        const SourcePos& first = members[j].key_pos;
        std::string where = std::to_string(first.line) + ":" + std::to_string(first.column);
        std::string message = members[i].key == members[j].key
                                  ? "property given twice (first at " + where + "); keep one"
                                  : "property given twice, as \"" + members[j].key + "\" at " +
                                        where + " and as \"" + members[i].key +
                                        "\" (names ignore case); keep one";
        ctx.Error(members[i].key_pos, MemberPath(path_, members[i].key), message);
        break;
      }
    }
  }
}

const Json* ObjectView::Get(std::string_view canonical) const {
  return ok_ ? FindMember(value_, canonical) : nullptr;
}

void ObjectView::SetSchema(std::string what, std::initializer_list<const char*> known) {
  what_ = std::move(what);
  known_.clear();
  for (const char* k : known) known_.emplace_back(k);
}

void ObjectView::AddSibling(std::string what, std::initializer_list<const char*> known) {
  std::vector<std::string> names;
  for (const char* k : known) names.emplace_back(k);
  siblings_.emplace_back(std::move(what), std::move(names));
}

void ObjectView::AddIgnored(std::initializer_list<const char*> names, std::string why) {
  for (const char* n : names) ignored_.emplace_back(n, why);
}

void ObjectView::Finish() {
  if (!ok_) return;
  for (const JsonMember& m : value_.object_items()) {
    auto matches = [&](const std::string& k) { return EqualsIgnoreCase(k, m.key); };
    if (auto k = std::find_if(known_.begin(), known_.end(), matches); k != known_.end()) {
      if (*k != m.key && StrictCase(ctx_)) {
        ctx_.Warning(m.key_pos, MemberPath(path_, m.key),
                     "written \"" + *k + "\" in the specification; " + StrictCaseNote(ctx_));
      }
      continue;
    }
    std::string path = MemberPath(path_, m.key);
    auto ignored = std::find_if(ignored_.begin(), ignored_.end(),
                                [&](const auto& i) { return matches(i.first); });
    if (ignored != ignored_.end()) {
      ctx_.Warning(m.key_pos, path, ignored->second);
      continue;
    }
    std::string message = "unknown property \"" + m.key + "\" in " + what_;
    bool explained = false;
    for (const auto& [sibling, names] : siblings_) {
      if (std::any_of(names.begin(), names.end(), matches)) {
        message += "; \"" + m.key + "\" is a property of " + sibling;
        explained = true;
        break;
      }
    }
    if (!explained) {
      std::string guess = ClosestMatch(m.key, known_);
      if (!guess.empty()) {
        message += "; did you mean \"" + guess + "\"?";
      } else {
        message += "; expected one of: " + Join(known_, ", ");
      }
    }
    ctx_.Error(m.key_pos, path, message);
  }
}

// ---- Typed readers ------------------------------------------------------------

namespace {

void Missing(ObjectView& v, std::string_view name, const std::string& expected) {
  v.ctx().Error(v.pos(), v.PathOf(name), "required property is missing; expected " + expected);
}

void WrongKind(ObjectView& v, std::string_view name, const Json& value,
               const std::string& expected) {
  if (CheckPlaceholder(v.ctx(), value, v.PathOf(name), TextKind::kStructured)) return;
  v.ctx().Error(value.pos, v.PathOf(name),
                "expected " + expected + ", found " + std::string(value.KindDescription()) +
                    (value.is_string() ? " " + QuoteForMessage(value.string_value()) : ""));
}

}  // namespace

std::optional<std::string> ReadString(ObjectView& v, std::string_view name, bool required,
                                      TextKind kind, bool allow_empty) {
  const Json* value = v.Get(name);
  if (value == nullptr) {
    if (required) Missing(v, name, "a string");
    return std::nullopt;
  }
  if (!value->is_string()) {
    WrongKind(v, name, *value, "a string");
    return std::nullopt;
  }
  if (CheckPlaceholder(v.ctx(), *value, v.PathOf(name), kind)) return std::nullopt;
  if (!allow_empty && value->string_value().empty()) {
    v.ctx().Error(value->pos, v.PathOf(name), "must not be empty");
    return std::nullopt;
  }
  return value->string_value();
}

std::optional<bool> ReadBool(ObjectView& v, std::string_view name, bool required) {
  const Json* value = v.Get(name);
  if (value == nullptr) {
    if (required) Missing(v, name, "true or false");
    return std::nullopt;
  }
  if (value->is_bool()) return value->bool_value();
  if (value->is_string() && (EqualsIgnoreCase(value->string_value(), "true") ||
                             EqualsIgnoreCase(value->string_value(), "false"))) {
    bool b = EqualsIgnoreCase(value->string_value(), "true");
    v.ctx().Warning(value->pos, v.PathOf(name),
                    std::string("boolean written as a string; write ") + (b ? "true" : "false") +
                        " without quotes");
    return b;
  }
  WrongKind(v, name, *value, "true or false");
  return std::nullopt;
}

std::optional<int64_t> ReadInt(ObjectView& v, std::string_view name, bool required, int64_t min,
                               int64_t max) {
  std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  const Json* value = v.Get(name);
  if (value == nullptr) {
    if (required) Missing(v, name, range);
    return std::nullopt;
  }
  std::optional<int64_t> n;
  if (value->is_number()) {
    n = value->AsInt64();
    if (!n) {
      v.ctx().Error(value->pos, v.PathOf(name),
                    "expected " + range + ", found " + value->number_text());
      return std::nullopt;
    }
  } else if (value->is_string() && IsAsciiDigits(value->string_value()) &&
             value->string_value().size() < 19) {
    n = std::stoll(value->string_value());
    v.ctx().Warning(
        value->pos, v.PathOf(name),
        "number written as a string; write " + value->string_value() + " without quotes");
  } else {
    WrongKind(v, name, *value, range);
    return std::nullopt;
  }
  if (*n < min || *n > max) {
    v.ctx().Error(value->pos, v.PathOf(name),
                  "expected " + range + ", found " + std::to_string(*n));
    return std::nullopt;
  }
  return n;
}

std::optional<size_t> ReadEnum(ObjectView& v, std::string_view name, bool required,
                               const std::vector<std::string>& allowed) {
  std::string expected = "one of " + Join(allowed, ", ");
  const Json* value = v.Get(name);
  if (value == nullptr) {
    if (required) Missing(v, name, expected);
    return std::nullopt;
  }
  if (!value->is_string()) {
    WrongKind(v, name, *value, expected);
    return std::nullopt;
  }
  if (CheckPlaceholder(v.ctx(), *value, v.PathOf(name), TextKind::kStructured)) return std::nullopt;
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (EqualsIgnoreCase(allowed[i], value->string_value())) {
      if (allowed[i] != value->string_value() && StrictCase(v.ctx())) {
        v.ctx().Warning(
            value->pos, v.PathOf(name),
            "written \"" + allowed[i] + "\" in the specification; " + StrictCaseNote(v.ctx()));
      }
      return i;
    }
  }
  std::string message =
      "expected " + expected + ", found " + QuoteForMessage(value->string_value());
  std::string guess = ClosestMatch(value->string_value(), allowed);
  if (!guess.empty()) message += "; did you mean \"" + guess + "\"?";
  v.ctx().Error(value->pos, v.PathOf(name), message);
  return std::nullopt;
}

std::optional<std::vector<std::string>> ReadStringList(ObjectView& v, std::string_view name,
                                                       bool required, TextKind kind,
                                                       bool allow_empty_list) {
  const Json* value = v.Get(name);
  if (value == nullptr) {
    if (required) Missing(v, name, "an array of strings");
    return std::nullopt;
  }
  std::string path = v.PathOf(name);
  if (value->is_string()) {
    // The reference itself writes "inline": "<commands to run>".
    if (CheckPlaceholder(v.ctx(), *value, path, kind)) return std::nullopt;
    return std::vector<std::string>{value->string_value()};
  }
  if (!value->is_array()) {
    WrongKind(v, name, *value, "an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  const auto& items = value->array_items();
  for (size_t i = 0; i < items.size(); ++i) {
    const Json& item = items[i];
    if (!item.is_string()) {
      v.ctx().Error(item.pos, IndexPath(path, i),
                    "expected a string, found " + std::string(item.KindDescription()));
      ok = false;
      continue;
    }
    if (CheckPlaceholder(v.ctx(), item, IndexPath(path, i), kind)) {
      ok = false;
      continue;
    }
    out.push_back(item.string_value());
  }
  if (items.empty() && !allow_empty_list) {
    v.ctx().Error(value->pos, path, "must not be an empty array");
    return std::nullopt;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<Region> ReadRegion(ObjectView& v, std::string_view name, bool required,
                                 bool image_builder_only) {
  if (required && v.Get(name) == nullptr) {
    Missing(v, name, "a region such as eastus");
    return std::nullopt;
  }
  std::optional<std::string> text = ReadString(v, name, required);
  if (!text) return std::nullopt;
  const Json* value = v.Get(name);
  auto region = Region::Parse(*text);
  if (!region.ok()) {
    v.ctx().Error(value->pos, v.PathOf(name), region.status().message());
    return std::nullopt;
  }
  if (image_builder_only && !region->supports_image_builder()) {
    v.ctx().Error(value->pos, v.PathOf(name),
                  "region \"" + region->name() +
                      "\" is not a supported Image Builder location; templates may be located "
                      "in the regions the template reference lists (e.g. eastus, westeurope)");
    return std::nullopt;
  }
  return *region;
}

std::optional<Sha256Digest> ReadSha256(ObjectView& v, std::string_view name) {
  std::optional<std::string> text = ReadString(v, name, false);
  if (!text) return std::nullopt;
  auto digest = Sha256Digest::FromHex(*text);
  if (!digest.ok()) {
    v.ctx().Error(v.Get(name)->pos, v.PathOf(name),
                  "expected 64 hexadecimal digits (the output of sha256sum), got " +
                      QuoteForMessage(*text) + " (" + std::to_string(text->size()) +
                      " characters)");
    return std::nullopt;
  }
  return *digest;
}

std::optional<Tags> ReadTags(ObjectView& v, std::string_view name) {
  const Json* value = v.Get(name);
  if (value == nullptr) return std::nullopt;
  std::string path = v.PathOf(name);
  if (!value->is_object()) {
    WrongKind(v, name, *value, "an object of name/value string pairs");
    return std::nullopt;
  }
  Tags tags;
  bool ok = true;
  const auto& members = value->object_items();
  if (members.size() > 50) {
    v.ctx().Error(value->pos, path,
                  "has " + std::to_string(members.size()) + " tags; the limit is 50");
    ok = false;
  }
  for (size_t i = 0; i < members.size(); ++i) {
    const JsonMember& m = members[i];
    std::string tag_path = MemberPath(path, m.key);
    Json key_as_value = Json::String(m.key);
    key_as_value.pos = m.key_pos;
    if (CheckPlaceholder(v.ctx(), key_as_value, tag_path, TextKind::kStructured)) {
      ok = false;
      continue;
    }
    bool key_ok = true;
    if (m.key.empty() || m.key.size() > 512) {
      v.ctx().Error(m.key_pos, tag_path, "tag names must be 1-512 characters long");
      key_ok = false;
    } else if (m.key.find_first_of("<>%&\\?/") != std::string::npos) {
      v.ctx().Error(m.key_pos, tag_path,
                    "tag names must not contain any of the characters < > % & \\ ? /");
      key_ok = false;
    }
    for (size_t j = 0; j < i && key_ok; ++j) {
      if (EqualsIgnoreCase(members[j].key, m.key)) {
        v.ctx().Error(
            m.key_pos, tag_path,
            "tag given twice (tag names ignore case; first as \"" + members[j].key + "\")");
        key_ok = false;
      }
    }
    ok = ok && key_ok;
    if (!m.value.is_string()) {
      v.ctx().Error(m.value.pos, tag_path,
                    "tag values must be strings, found " + std::string(m.value.KindDescription()));
      ok = false;
      continue;
    }
    const std::string& tv = m.value.string_value();
    if (tv.size() > 2 && tv.front() == '<' && tv.back() == '>' && FindAngleToken(tv) == tv) {
      v.ctx().Error(m.value.pos, tag_path,
                    "placeholder " + tv + " left in the value; replace it with a real value");
      ok = false;
      continue;
    }
    if (tv.size() > 256) {
      v.ctx().Error(
          m.value.pos, tag_path,
          "tag values must be at most 256 characters; this one has " + std::to_string(tv.size()));
      ok = false;
      continue;
    }
    tags.emplace_back(m.key, tv);
  }
  if (!ok) return std::nullopt;
  return tags;
}

std::string DescribeResourceType(const ResourceId& id) {
  struct Known {
    const char* type;
    const char* description;
  };
  static const Known kKnown[] = {
      {"Microsoft.Resources/subscriptions", "a subscription ID"},
      {"Microsoft.Resources/resourceGroups", "a resource group ID"},
      {"Microsoft.Compute/images", "a managed image ID (Microsoft.Compute/images)"},
      {"Microsoft.Compute/galleries", "a gallery ID (Microsoft.Compute/galleries)"},
      {"Microsoft.Compute/galleries/images",
       "a gallery image definition ID (Microsoft.Compute/galleries/images)"},
      {"Microsoft.Compute/galleries/images/versions",
       "a gallery image version ID (Microsoft.Compute/galleries/images/versions)"},
      {"Microsoft.ManagedIdentity/userAssignedIdentities",
       "a user-assigned identity ID (Microsoft.ManagedIdentity/userAssignedIdentities)"},
      {"Microsoft.Network/virtualNetworks/subnets",
       "a subnet ID (Microsoft.Network/virtualNetworks/subnets)"},
      {"Microsoft.VirtualMachineImages/imageTemplates",
       "an image template ID (Microsoft.VirtualMachineImages/imageTemplates)"},
  };
  for (const Known& k : kKnown) {
    if (id.IsType(k.type)) return k.description;
  }
  return "an ID of type " + id.FullType();
}

std::optional<ResourceId> ParseResourceIdValue(Context& ctx, const Json& value,
                                               const std::string& path,
                                               const std::vector<std::string>& types,
                                               const std::string& expected_shape) {
  if (!value.is_string()) {
    if (!CheckPlaceholder(ctx, value, path, TextKind::kStructured)) {
      ctx.Error(value.pos, path,
                "expected a resource ID (" + expected_shape + "), found " +
                    std::string(value.KindDescription()));
    }
    return std::nullopt;
  }
  if (CheckPlaceholder(ctx, value, path, TextKind::kStructured)) return std::nullopt;
  const std::string& text = value.string_value();
  if (StartsWithIgnoreCase(text, "/sharedGalleries/") ||
      StartsWithIgnoreCase(text, "/communityGalleries/")) {
    ctx.Error(value.pos, path,
              "direct shared and community gallery IDs are not supported by imagesmith; use a "
              "gallery in your own subscription (" +
                  expected_shape + ")");
    return std::nullopt;
  }
  auto id = ResourceId::Parse(text);
  if (!id.ok()) {
    ctx.Error(value.pos, path,
              id.status().message() + " (this field takes " + expected_shape + ")");
    return std::nullopt;
  }
  for (const std::string& t : types) {
    if (id->IsType(t)) return *id;
  }
  ctx.Error(value.pos, path,
            "expected " + expected_shape + ", but this is " + DescribeResourceType(*id));
  return std::nullopt;
}

std::optional<ResourceId> ReadResourceId(ObjectView& v, std::string_view name, bool required,
                                         const std::vector<std::string>& types,
                                         const std::string& expected_shape) {
  const Json* value = v.Get(name);
  if (value == nullptr) {
    if (required) Missing(v, name, "a resource ID (" + expected_shape + ")");
    return std::nullopt;
  }
  return ParseResourceIdValue(v.ctx(), *value, v.PathOf(name), types, expected_shape);
}

bool ApiAtLeast(const Context& ctx, std::string_view min) {
  if (ctx.api_version.empty()) return true;
  return ctx.api_version.substr(0, 10) >= min.substr(0, 10);
}

}  // namespace internal
}  // namespace imagesmith::tmpl
