#include "gallery/versioning.h"

#include <algorithm>

#include "base/strings.h"

namespace imagesmith::gallery {

const char* ReplicaStateName(ReplicaState s) {
  switch (s) {
    case ReplicaState::kCompleted:
      return "Completed";
    case ReplicaState::kFailed:
      return "Failed";
    case ReplicaState::kInProgress:
      break;
  }
  return "InProgress";
}

ReplicaState ParseReplicaState(std::string_view s) {
  if (s == "Completed") return ReplicaState::kCompleted;
  if (s == "Failed") return ReplicaState::kFailed;
  return ReplicaState::kInProgress;
}

StatusOr<ImageVersion> NextLatestVersion(const std::vector<ImageVersion>& existing,
                                         std::optional<uint32_t> major) {
  std::optional<ImageVersion> best;
  for (const ImageVersion& v : existing) {
    if (major.has_value() && v.major() != *major) continue;
    if (!best.has_value() || v > *best) best = v;
  }
  if (!best.has_value()) return ImageVersion(major.value_or(1), 0, 0);
  if (best->patch() == ImageVersion::kMaxPart) {
    return OutOfRangeError("versioning scheme Latest: the highest version " + best->ToString() +
                           " already has the largest patch number (2147483647); set "
                           "versioning.major to a new major version or name the version "
                           "explicitly");
  }
  return ImageVersion(best->major(), best->minor(), best->patch() + 1);
}

StatusOr<ImageVersion> SourceSchemeVersion(const std::vector<ImageVersion>& existing,
                                           std::string_view source_version) {
  if (source_version.empty()) {
    return InvalidArgumentError(
        "versioning scheme Source takes the version of the source image, and this source has "
        "none; use a PlatformImage or SharedImageVersion source, or the Latest scheme");
  }
  auto v = ImageVersion::Parse(source_version);
  if (!v.ok()) {
    return InvalidArgumentError(
        "versioning scheme Source: the source image's version cannot "
        "name a gallery image version: " +
        v.status().message());
  }
  if (std::find(existing.begin(), existing.end(), *v) != existing.end()) {
    return AlreadyExistsError("versioning scheme Source: version " + v->ToString() +
                              " (the source image's version) already exists; the Source scheme "
                              "can publish each source version once, use the Latest scheme to "
                              "publish it again");
  }
  return *v;
}

StatusOr<ImageVersion> ChooseVersion(const std::string& definition,
                                     const std::vector<ImageVersion>& existing,
                                     const std::optional<ImageVersion>& explicit_version,
                                     const std::optional<tmpl::Versioning>& versioning,
                                     std::string_view source_version) {
  if (explicit_version.has_value()) {
    if (std::find(existing.begin(), existing.end(), *explicit_version) != existing.end()) {
      return AlreadyExistsError("image version " + explicit_version->ToString() +
                                " already exists in " + definition +
                                "; an explicit version must be new: pick a higher version or "
                                "let versioning choose one");
    }
    return *explicit_version;
  }
  tmpl::Versioning v = versioning.value_or(tmpl::Versioning{});
  if (v.scheme == tmpl::VersioningScheme::kSource) {
    return SourceSchemeVersion(existing, source_version);
  }
  return NextLatestVersion(existing, v.major);
}

std::optional<ImageVersion> LatestInRegion(const std::vector<VersionFacts>& versions,
                                           const Region& region) {
  std::optional<ImageVersion> best;
  for (const VersionFacts& f : versions) {
    if (f.exclude_from_latest) continue;
    bool completed = false;
    for (const auto& [r, state] : f.replicas) {
      if (r == region && state == ReplicaState::kCompleted) completed = true;
    }
    if (completed && (!best.has_value() || f.version > *best)) best = f.version;
  }
  return best;
}

}  // namespace imagesmith::gallery
