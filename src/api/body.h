// Reading ARM request bodies: typed access to the members of a JSON object
// with errors that name the JSON path ("properties.identifier.publisher"),
// and the refusal of members a type does not know. Every error is
// InvalidArgument with the ARM code InvalidRequestContent and the path as
// its target (arm_error.h).
//
// A body may carry the read-only members a GET returns (id, name, type,
// etag, resourceGroup, systemData, properties.provisioningState, ...), so
// that what was read can be sent back; providers list them as allowed and
// ignore them.
//
// Pure functions over borrowed Json; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/region.h"
#include "base/statusor.h"

namespace imagesmith::api {

// InvalidRequestContent naming `path`: "<path>: <message>".
Status BodyError(const std::string& path, const std::string& message);

// "a.b" from ("a", "b"); "b" when `parent` is empty.
std::string JoinPath(const std::string& parent, std::string_view key);

// A JSON object at a path, for reading its members.
class BodyObject {
 public:
  // `value` may be null (an absent object: every member is absent). Anything
  // else but an object is an error naming `path` ("" for the body itself).
  static StatusOr<BodyObject> At(const Json* value, std::string path);

  // Refuses members not in `allowed` (compared exactly, as ARM does),
  // naming the first unknown one and listing the allowed ones.
  Status AllowOnly(const std::vector<std::string_view>& allowed) const;

  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  const Json* Find(std::string_view key) const;
  const std::string& path() const { return path_; }
  std::string PathOf(std::string_view key) const { return JoinPath(path_, key); }

  // Typed members; nullopt when absent or null. A member of another type is
  // an error naming its path.
  StatusOr<std::optional<std::string>> String(std::string_view key) const;
  StatusOr<std::optional<bool>> Bool(std::string_view key) const;
  StatusOr<std::optional<int64_t>> Int(std::string_view key) const;
  // A nested object; absent gives an object with no members.
  StatusOr<BodyObject> Object(std::string_view key) const;
  // A required string: absent is an error saying it is required.
  StatusOr<std::string> RequiredString(std::string_view key) const;

  // "location": a region name.
  StatusOr<std::optional<Region>> Location() const;
  // "tags": an object of string values (at most 50, names 1-512 characters,
  // values up to 256).
  StatusOr<std::optional<Json>> Tags() const;

 private:
  BodyObject(const Json* value, std::string path) : value_(value), path_(std::move(path)) {}

  const Json* value_;  // an object, or nullptr for an absent one; borrowed
  std::string path_;
};

// The top-level members every tracked resource body may carry, read-only
// ones included: id, name, type, location, tags, properties, etag,
// resourceGroup, systemData.
inline const std::vector<std::string_view> kTopLevelMembers = {
    "id", "name", "type", "location", "tags", "properties", "etag", "resourceGroup", "systemData"};

}  // namespace imagesmith::api
