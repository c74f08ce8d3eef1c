#include "api/body.h"

#include "api/arm_error.h"

namespace imagesmith::api {

Status BodyError(const std::string& path, const std::string& message) {
  std::string where = path.empty() ? "request body" : path;
  return ArmStatus(StatusCode::kInvalidArgument, "InvalidRequestContent", where + ": " + message,
                   where);
}

std::string JoinPath(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return parent + "." + std::string(key);
}

StatusOr<BodyObject> BodyObject::At(const Json* value, std::string path) {
  if (value == nullptr || value->is_null()) return BodyObject(nullptr, std::move(path));
  if (!value->is_object()) {
    return BodyError(path, "expected an object, got " + std::string(value->KindDescription()));
  }
  return BodyObject(value, std::move(path));
}

Status BodyObject::AllowOnly(const std::vector<std::string_view>& allowed) const {
  if (value_ == nullptr) return Status::Ok();
  for (const JsonMember& m : value_->object_items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == m.key;
    if (known) continue;
    std::string list;
    for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    return BodyError(PathOf(m.key), "unknown field; the fields allowed here are " + list);
  }
  return Status::Ok();
}

const Json* BodyObject::Find(std::string_view key) const {
  if (value_ == nullptr) return nullptr;
  const Json* v = value_->Find(key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

StatusOr<std::optional<std::string>> BodyObject::String(std::string_view key) const {
  const Json* v = Find(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) {
    return BodyError(PathOf(key), "expected a string, got " + std::string(v->KindDescription()));
  }
  return std::optional<std::string>(v->string_value());
}

StatusOr<std::optional<bool>> BodyObject::Bool(std::string_view key) const {
  const Json* v = Find(key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_bool()) {
    return BodyError(PathOf(key),
                     "expected true or false, got " + std::string(v->KindDescription()));
  }
  return std::optional<bool>(v->bool_value());
}

StatusOr<std::optional<int64_t>> BodyObject::Int(std::string_view key) const {
  const Json* v = Find(key);
  if (v == nullptr) return std::optional<int64_t>();
  std::optional<int64_t> n = v->AsInt64();
  if (!n.has_value()) {
    return BodyError(PathOf(key),
                     "expected an integer, got " +
                         (v->is_number() ? v->number_text() : std::string(v->KindDescription())));
  }
  return std::optional<int64_t>(*n);
}

StatusOr<BodyObject> BodyObject::Object(std::string_view key) const {
  return At(Find(key), PathOf(key));
}

StatusOr<std::string> BodyObject::RequiredString(std::string_view key) const {
  ASSIGN_OR_RETURN(std::optional<std::string> s, String(key));
  if (!s.has_value()) return BodyError(PathOf(key), "is required");
  return *s;
}

StatusOr<std::optional<Region>> BodyObject::Location() const {
  ASSIGN_OR_RETURN(std::optional<std::string> s, String("location"));
  if (!s.has_value()) return std::optional<Region>();
  auto r = Region::Parse(*s);
  if (!r.ok()) return BodyError(PathOf("location"), r.status().message());
  return std::optional<Region>(*r);
}

StatusOr<std::optional<Json>> BodyObject::Tags() const {
  const Json* v = Find("tags");
  if (v == nullptr) return std::optional<Json>();
  std::string path = PathOf("tags");
  if (!v->is_object()) {
    return BodyError(path,
                     "expected an object of strings, got " + std::string(v->KindDescription()));
  }
  if (v->object_items().size() > 50) return BodyError(path, "at most 50 tags are allowed");
  for (const JsonMember& m : v->object_items()) {
    std::string p = path + "." + m.key;
    if (m.key.empty() || m.key.size() > 512 ||
        m.key.find_first_of("<>%&\\?/") != std::string::npos) {
      return BodyError(p, "tag names are 1-512 characters without < > % & \\ ? /");
    }
    if (!m.value.is_string()) {
      return BodyError(p, "expected a string, got " + std::string(m.value.KindDescription()));
    }
    if (m.value.string_value().size() > 256) {
      return BodyError(p, "tag values are at most 256 characters");
    }
  }
  return std::optional<Json>(*v);
}

}  // namespace imagesmith::api
