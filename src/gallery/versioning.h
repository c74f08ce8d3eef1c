// Version numbers for new gallery image versions, and `latest`.
//
// The rules come from the template reference ("versioning" under
// Properties: distribute) and the Compute Gallery's: version names are
// Major.Minor.Patch (tmpl::ImageVersion), an explicit version must be new,
// the Latest scheme takes the highest existing version (optionally under
// one major) and adds one to its patch, the Source scheme reuses the source
// image's version. Pure functions over plain values; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/region.h"
#include "base/statusor.h"
#include "template/image_version.h"
#include "template/model.h"

namespace imagesmith::gallery {

using tmpl::ImageVersion;

// The state of one regional replica, as replicationStatus.summary[].state.
enum class ReplicaState { kInProgress, kCompleted, kFailed };
const char* ReplicaStateName(ReplicaState s);  // "InProgress", "Completed", "Failed"
// Inverse of ReplicaStateName; anything else reads as kInProgress.
ReplicaState ParseReplicaState(std::string_view s);

// Latest scheme: the highest version in `existing` (restricted to `major`
// when set) with its patch plus one. With no such version: major.0.0, or
// 1.0.0 without a major. OutOfRange when the patch is already 2147483647
// (the message says to set another major).
StatusOr<ImageVersion> NextLatestVersion(const std::vector<ImageVersion>& existing,
                                         std::optional<uint32_t> major);

// Source scheme: `source_version` parsed as Major.Minor.Patch. Empty means
// the source has no version (a managed image): InvalidArgument saying the
// scheme needs a PlatformImage or SharedImageVersion source. AlreadyExists
// when `existing` holds it.
StatusOr<ImageVersion> SourceSchemeVersion(const std::vector<ImageVersion>& existing,
                                           std::string_view source_version);

// The version a new publish gets: `explicit_version` when set (AlreadyExists
// if `existing` holds it: explicit versions must be new), else by
// `versioning` (the Latest scheme without a major when unset).
// `definition` names the definition in messages.
StatusOr<ImageVersion> ChooseVersion(const std::string& definition,
                                     const std::vector<ImageVersion>& existing,
                                     const std::optional<ImageVersion>& explicit_version,
                                     const std::optional<tmpl::Versioning>& versioning,
                                     std::string_view source_version);

// What `latest` needs to know about one version.
struct VersionFacts {
  ImageVersion version;
  bool exclude_from_latest = false;
  std::vector<std::pair<Region, ReplicaState>> replicas;
};

// `latest` in `region`: the highest version not excluded from latest whose
// replica in `region` is Completed; nullopt when there is none.
std::optional<ImageVersion> LatestInRegion(const std::vector<VersionFacts>& versions,
                                           const Region& region);

}  // namespace imagesmith::gallery
