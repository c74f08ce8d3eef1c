#include "builder/staging.h"

#include "base/strings.h"
#include "meta/scopes.h"

namespace imagesmith::build {
namespace {

constexpr const char kImageBuilder[] = "AzureVMImageBuilder";
constexpr size_t kMaxGroupName = 90;  // Azure's limit for resource group names

std::string TagValue(const Json& tags, const char* key) {
  if (!tags.is_object()) return "";
  for (const JsonMember& m : tags.object_items()) {
    if (EqualsIgnoreCase(m.key, key) && m.value.is_string()) return m.value.string_value();
  }
  return "";
}

// IT_<group>_<template>_<guid>, shortening the group and template parts
// (never the GUID) to fit Azure's 90 characters.
std::string DefaultStagingName(const ResourceId& template_id, const std::string& guid) {
  std::string group = template_id.resource_group();
  std::string name = template_id.name();
  const size_t fixed = 3 + 1 + 1 + guid.size();  // "IT_" + "_" + "_" + guid
  while (fixed + group.size() + name.size() > kMaxGroupName) {
    if (group.size() >= name.size()) {
      group.pop_back();
    } else {
      name.pop_back();
    }
  }
  return "IT_" + group + "_" + name + "_" + guid;
}

Json DefaultTags(const ResourceId& template_id) {
  Json tags = Json::MakeObject();
  tags.Set("createdBy", Json::String(kImageBuilder));
  tags.Set("imageTemplateName", Json::String(template_id.name()));
  tags.Set("imageTemplateResourceGroupName", Json::String(template_id.resource_group()));
  return tags;
}

// Whether the group's tags say it belongs to a template other than `template_id`.
bool UsedByAnother(const Json& tags, const ResourceId& template_id) {
  const std::string name = TagValue(tags, "imageTemplateName");
  const std::string group = TagValue(tags, "imageTemplateResourceGroupName");
  if (name.empty()) return false;
  return !EqualsIgnoreCase(name, template_id.name()) ||
         !EqualsIgnoreCase(group, template_id.resource_group());
}

}  // namespace

Json StagingGroup::ToJson() const {
  Json j = Json::MakeObject();
  j.Set("id", Json::String(id.ToString()));
  j.Set("created", Json::Bool(created));
  return j;
}

StatusOr<StagingGroup> StagingGroup::FromJson(const Json& j) {
  const Json* id = j.is_object() ? j.Find("id") : nullptr;
  const Json* created = j.is_object() ? j.Find("created") : nullptr;
  if (id == nullptr || !id->is_string() || created == nullptr || !created->is_bool()) {
    return DataLossError("the stored staging group record is damaged: " + j.Dump(-1));
  }
  ASSIGN_OR_RETURN(ResourceId rid, ResourceId::Parse(id->string_value()));
  return StagingGroup{rid, created->bool_value()};
}

StatusOr<StagingGroup> PrepareStagingGroup(meta::Transaction& txn, const ResourceId& template_id,
                                           const Region& location,
                                           const std::optional<ResourceId>& requested,
                                           const std::string& guid) {
  if (!requested.has_value()) {
    const std::string name = DefaultStagingName(template_id, guid);
    ASSIGN_OR_RETURN(meta::Resource g, meta::CreateGroup(txn, template_id.subscription(), name,
                                                         location, DefaultTags(template_id)));
    return StagingGroup{g.id, true};
  }
  const ResourceId& want = *requested;
  if (!EqualsIgnoreCase(want.subscription(), template_id.subscription())) {
    return InvalidArgumentError("properties.stagingResourceGroup: " + want.ToString() +
                                " is in subscription " + want.subscription() +
                                ", not the template's (" + template_id.subscription() + ")");
  }
  const ResourceId group_id =
      ResourceId::ForResourceGroup(want.subscription(), want.resource_group());
  auto existing = txn.Get(group_id);
  if (existing.status().code() == StatusCode::kNotFound) {
    auto made = meta::CreateGroup(txn, template_id.subscription(), want.resource_group(), location,
                                  DefaultTags(template_id));
    if (!made.ok()) {
      return made.status().WithContext("properties.stagingResourceGroup");
    }
    return StagingGroup{made->id, true};
  }
  if (!existing.ok()) return existing.status();
  meta::Resource g = std::move(existing).value();
  const std::string where =
      "properties.stagingResourceGroup: resource group '" + g.id.resource_group() + "'";
  if (!EqualsIgnoreCase(g.location, location.name())) {
    return FailedPreconditionError(where + " is in " + g.location +
                                   ", not in the template's region " + location.name() +
                                   "; use a group in the same region, or leave "
                                   "stagingResourceGroup out and imagesmith creates one");
  }
  if (UsedByAnother(g.tags, template_id)) {
    return FailedPreconditionError(where + " is already the staging group of image template '" +
                                   TagValue(g.tags, "imageTemplateName") + "' in group '" +
                                   TagValue(g.tags, "imageTemplateResourceGroupName") +
                                   "'; a staging group serves one template");
  }
  ASSIGN_OR_RETURN(int64_t inside, txn.CountDescendants(g.id));
  if (inside > 0) {
    ASSIGN_OR_RETURN(std::vector<meta::Resource> some, txn.ListDescendants(g.id, 3));
    std::string list;
    for (const meta::Resource& r : some) list += "\n  " + r.id.ToString();
    return FailedPreconditionError(where + " must be empty but holds " + std::to_string(inside) +
                                   " resource(s):" + list);
  }
  if (!g.tags.is_object()) g.tags = Json::MakeObject();
  g.tags.Set("usedBy", Json::String(kImageBuilder));
  g.tags.Set("imageTemplateName", Json::String(template_id.name()));
  g.tags.Set("imageTemplateResourceGroupName", Json::String(template_id.resource_group()));
  RETURN_IF_ERROR(txn.Replace(g));
  return StagingGroup{g.id, false};
}

StatusOr<std::vector<std::string>> StagingFiles(meta::Transaction& txn, const StagingGroup& group) {
  std::vector<std::string> files;
  auto blobs = txn.ListChildren(group.id, kStagingBlobType);
  if (blobs.status().code() == StatusCode::kNotFound) return files;
  if (!blobs.ok()) return blobs.status();
  for (const meta::Resource& b : *blobs) {
    const Json* path = b.properties.Find("path");
    if (path != nullptr && path->is_string()) files.push_back(path->string_value());
  }
  return files;
}

Status ReleaseStagingGroup(meta::Transaction& txn, const StagingGroup& group,
                           const ResourceId& template_id) {
  auto g = txn.Get(group.id);
  if (g.status().code() == StatusCode::kNotFound) return Status::Ok();  // already gone
  if (!g.ok()) return g.status();
  auto blobs = txn.ListChildren(group.id, kStagingBlobType);
  if (!blobs.ok() && blobs.status().code() != StatusCode::kNotFound) return blobs.status();
  if (blobs.ok()) {
    for (const meta::Resource& b : *blobs) RETURN_IF_ERROR(txn.Delete(b.id));
  }
  if (group.created) {
    ASSIGN_OR_RETURN(int64_t left, txn.CountDescendants(group.id));
    if (left == 0) return txn.Delete(group.id);
    return Status::Ok();  // someone put their own resources there: keep the group
  }
  // A group the user gave keeps its tags except the ones naming this template.
  meta::Resource kept = std::move(g).value();
  if (kept.tags.is_object() && !UsedByAnother(kept.tags, template_id)) {
    Json tags = Json::MakeObject();
    for (const JsonMember& m : kept.tags.object_items()) {
      if (EqualsIgnoreCase(m.key, "usedBy") || EqualsIgnoreCase(m.key, "imageTemplateName") ||
          EqualsIgnoreCase(m.key, "imageTemplateResourceGroupName")) {
        continue;
      }
      tags.Set(m.key, m.value);
    }
    kept.tags = std::move(tags);
    RETURN_IF_ERROR(txn.Replace(kept));
  }
  return Status::Ok();
}

}  // namespace imagesmith::build
