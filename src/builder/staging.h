// The staging resource group of an image template, following the template
// reference ("Properties: stagingResourceGroup"):
//   - not given (or ""): imagesmith creates IT_<group>_<template>_<guid> in
//     the template's region, tagged createdBy/imageTemplateName/
//     imageTemplateResourceGroupName, and deletes it with the template;
//   - given and existing: it must be empty, in the template's region and not
//     used by another template; it gets usedBy/imageTemplateName/
//     imageTemplateResourceGroupName tags (existing tags kept); at template
//     deletion the resources inside are deleted, the group stays;
//   - given and missing: created with that name (Azure's name rule) and the
//     default tags, and deleted with the template.
// What a template puts in its staging group (VHDs distributed without a
// `uri`) are resources of type kStagingBlobType, each naming its file.
//
// Functions run inside the caller's transaction; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/region.h"
#include "base/resource_id.h"
#include "meta/meta_store.h"

namespace imagesmith::build {

// A VHD kept in the staging area: the resource's properties.path is the file.
inline constexpr const char kStagingBlobType[] = "Microsoft.Storage/storageAccounts";

struct StagingGroup {
  ResourceId id;
  bool created = false;  // imagesmith created it: deleted with the template

  Json ToJson() const;  // {"id": ..., "created": ...}
  static StatusOr<StagingGroup> FromJson(const Json& j);
};

// Resolves (creating when needed) the staging group for `template_id` in
// `location`. `requested` is the template's stagingResourceGroup. Errors:
// InvalidArgument for a requested group in another subscription or with a
// bad name; FailedPrecondition for an existing group that is in another
// region, holds resources or is used by another template (each message
// says which and what to do). `guid` makes the IT_ name unique.
StatusOr<StagingGroup> PrepareStagingGroup(meta::Transaction& txn, const ResourceId& template_id,
                                           const Region& location,
                                           const std::optional<ResourceId>& requested,
                                           const std::string& guid);

// The files of the staging resources inside `group`, for the caller to
// delete after ReleaseStagingGroup commits.
StatusOr<std::vector<std::string>> StagingFiles(meta::Transaction& txn, const StagingGroup& group);

// At template deletion: deletes the staging resources inside the group, and
// the group itself when imagesmith created it (and nothing else is in it).
Status ReleaseStagingGroup(meta::Transaction& txn, const StagingGroup& group,
                           const ResourceId& template_id);

}  // namespace imagesmith::build
