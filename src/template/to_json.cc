// ImageTemplate::ToJson: the normalised template, canonical names and values
// in the order the template reference uses.
#include "template/model.h"

namespace imagesmith::tmpl {
namespace {

Json StringList(const std::vector<std::string>& items) {
  Json a = Json::MakeArray();
  for (const std::string& s : items) a.Append(Json::String(s));
  return a;
}

Json TagsJson(const Tags& tags) {
  Json o = Json::MakeObject();
  for (const auto& [k, v] : tags) o.Set(k, Json::String(v));
  return o;
}

void SetScript(Json& o, const std::vector<std::string>& inline_commands,
               const std::string& script_uri, const std::optional<Sha256Digest>& sha256) {
  if (!script_uri.empty()) {
    o.Set("scriptUri", Json::String(script_uri));
  } else {
    o.Set("inline", StringList(inline_commands));
  }
  if (sha256) o.Set("sha256Checksum", Json::String(sha256->ToHex()));
}

Json StepJson(const Step& step) {
  Json o = Json::MakeObject();
  o.Set("type", Json::String(StepTypeName(step.type())));
  if (!step.name.empty()) o.Set("name", Json::String(step.name));
  std::visit(
      [&](const auto& s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, ShellStep>) {
          SetScript(o, s.inline_commands, s.script_uri, s.sha256);
        } else if constexpr (std::is_same_v<T, PowerShellStep>) {
          SetScript(o, s.inline_commands, s.script_uri, s.sha256);
          o.Set("runElevated", Json::Bool(s.run_elevated));
          o.Set("runAsSystem", Json::Bool(s.run_as_system));
          Json codes = Json::MakeArray();
          for (int64_t c : s.valid_exit_codes) codes.Append(Json::Int(c));
          o.Set("validExitCodes", std::move(codes));
        } else if constexpr (std::is_same_v<T, FileStep>) {
          o.Set("sourceUri", Json::String(s.source_uri));
          o.Set("destination", Json::String(s.destination));
          if (s.sha256) o.Set("sha256Checksum", Json::String(s.sha256->ToHex()));
        } else if constexpr (std::is_same_v<T, WindowsRestartStep>) {
          o.Set("restartCommand", Json::String(s.restart_command));
          if (!s.restart_check_command.empty()) {
            o.Set("restartCheckCommand", Json::String(s.restart_check_command));
          }
          o.Set("restartTimeout", Json::String(s.restart_timeout_text));
        } else {
          o.Set("searchCriteria", Json::String(s.search_criteria));
          o.Set("filters", StringList(s.filters));
          o.Set("updateLimit", Json::Int(s.update_limit));
        }
      },
      step.spec);
  return o;
}

Json SourceJson(const Source& source) {
  Json o = Json::MakeObject();
  std::visit(
      [&](const auto& s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, PlatformImageSource>) {
          o.Set("type", Json::String("PlatformImage"));
          o.Set("publisher", Json::String(s.publisher));
          o.Set("offer", Json::String(s.offer));
          o.Set("sku", Json::String(s.sku));
          o.Set("version", Json::String(s.version));
          if (s.plan_info) {
            Json p = Json::MakeObject();
            p.Set("planName", Json::String(s.plan_info->plan_name));
            p.Set("planProduct", Json::String(s.plan_info->plan_product));
            p.Set("planPublisher", Json::String(s.plan_info->plan_publisher));
            o.Set("planInfo", std::move(p));
          }
        } else if constexpr (std::is_same_v<T, ManagedImageSource>) {
          o.Set("type", Json::String("ManagedImage"));
          o.Set("imageId", Json::String(s.image_id.ToString()));
        } else {
          o.Set("type", Json::String("SharedImageVersion"));
          o.Set("imageVersionId", Json::String(s.image_version_id.ToString()));
        }
      },
      source);
  return o;
}

Json DistributionJson(const Distribution& d, const std::string& api_version) {
  Json o = Json::MakeObject();
  std::visit(
      [&](const auto& t) {
        using T = std::decay_t<decltype(t)>;
        if constexpr (std::is_same_v<T, ManagedImageTarget>) {
          o.Set("type", Json::String("ManagedImage"));
          o.Set("runOutputName", Json::String(d.run_output_name));
          o.Set("imageId", Json::String(t.image_id.ToString()));
          o.Set("location", Json::String(t.location.name()));
        } else if constexpr (std::is_same_v<T, SharedImageTarget>) {
          o.Set("type", Json::String("SharedImage"));
          o.Set("runOutputName", Json::String(d.run_output_name));
          ResourceId id = t.explicit_version
                              ? t.gallery_image_id.Child("versions", t.explicit_version->ToString())
                              : t.gallery_image_id;
          o.Set("galleryImageId", Json::String(id.ToString()));
          if (!t.target_regions.empty() && api_version < "2022-07-01") {
            // Before 2022-07-01 only replicationRegions exists (one replica each).
            Json regions = Json::MakeArray();
            for (const TargetRegion& r : t.target_regions)
              regions.Append(Json::String(r.region.name()));
            o.Set("replicationRegions", std::move(regions));
          } else if (!t.target_regions.empty()) {
            Json regions = Json::MakeArray();
            for (const TargetRegion& r : t.target_regions) {
              Json rj = Json::MakeObject();
              rj.Set("name", Json::String(r.region.name()));
              rj.Set("replicaCount", Json::Int(r.replica_count));
              if (r.storage_account_type) {
                rj.Set("storageAccountType",
                       Json::String(StorageAccountTypeName(*r.storage_account_type)));
              }
              regions.Append(std::move(rj));
            }
            o.Set("targetRegions", std::move(regions));
          }
          o.Set("excludeFromLatest", Json::Bool(t.exclude_from_latest));
          if (t.storage_account_type) {
            o.Set("storageAccountType",
                  Json::String(StorageAccountTypeName(*t.storage_account_type)));
          }
          if (t.versioning) {
            Json v = Json::MakeObject();
            v.Set("scheme",
                  Json::String(t.versioning->scheme == VersioningScheme::kLatest ? "Latest"
                                                                                 : "Source"));
            if (t.versioning->major) v.Set("major", Json::Int(*t.versioning->major));
            o.Set("versioning", std::move(v));
          }
        } else {
          o.Set("type", Json::String("VHD"));
          o.Set("runOutputName", Json::String(d.run_output_name));
          if (!t.uri.empty()) o.Set("uri", Json::String(t.uri));
        }
      },
      d.target);
  if (!d.artifact_tags.empty()) o.Set("artifactTags", TagsJson(d.artifact_tags));
  return o;
}

Json StateJson(bool enabled) {
  Json o = Json::MakeObject();
  o.Set("state", Json::String(enabled ? "Enabled" : "Disabled"));
  return o;
}

const char* ActionName(ErrorAction a) { return a == ErrorAction::kAbort ? "abort" : "cleanup"; }

}  // namespace

Json ImageTemplate::ToJson() const {
  Json root = Json::MakeObject();
  if (!name.empty()) root.Set("name", Json::String(name));
  root.Set("type", Json::String(kType));
  root.Set("apiVersion", Json::String(api_version));
  root.Set("location", Json::String(location.name()));
  if (!tags.empty()) root.Set("tags", TagsJson(tags));
  if (identity) {
    Json id = Json::MakeObject();
    id.Set("type", Json::String("UserAssigned"));
    Json ids = Json::MakeObject();
    ids.Set(identity->ToString(), Json::MakeObject());
    id.Set("userAssignedIdentities", std::move(ids));
    root.Set("identity", std::move(id));
  }
  Json p = Json::MakeObject();
  p.Set("buildTimeoutInMinutes", Json::Int(build_timeout_minutes));
  Json steps = Json::MakeArray();
  for (const Step& s : customize) steps.Append(StepJson(s));
  p.Set("customize", std::move(steps));
  Json eh = Json::MakeObject();
  eh.Set("onCustomizerError", Json::String(ActionName(error_handling.on_customizer_error)));
  eh.Set("onValidationError", Json::String(ActionName(error_handling.on_validation_error)));
  p.Set("errorHandling", std::move(eh));
  Json dist = Json::MakeArray();
  for (const Distribution& d : distribute) dist.Append(DistributionJson(d, api_version));
  p.Set("distribute", std::move(dist));
  if (optimize_vm_boot) {
    Json opt = Json::MakeObject();
    opt.Set("vmBoot", StateJson(*optimize_vm_boot));
    p.Set("optimize", std::move(opt));
  }
  p.Set("source", SourceJson(source));
  if (staging_resource_group) {
    p.Set("stagingResourceGroup", Json::String(staging_resource_group->ToString()));
  }
  Json val = Json::MakeObject();
  val.Set("continueDistributeOnFailure", Json::Bool(validate.continue_distribute_on_failure));
  val.Set("sourceValidationOnly", Json::Bool(validate.source_validation_only));
  Json validators = Json::MakeArray();
  for (const Step& s : validate.in_vm_validations) validators.Append(StepJson(s));
  val.Set("inVMValidations", std::move(validators));
  p.Set("validate", std::move(val));
  Json vm = Json::MakeObject();
  if (!vm_profile.vm_size.empty()) vm.Set("vmSize", Json::String(vm_profile.vm_size));
  vm.Set("osDiskSizeGB", Json::Int(vm_profile.os_disk_size_gb));
  if (!vm_profile.user_assigned_identities.empty()) {
    Json ids = Json::MakeArray();
    for (const ResourceId& id : vm_profile.user_assigned_identities) {
      ids.Append(Json::String(id.ToString()));
    }
    vm.Set("userAssignedIdentities", std::move(ids));
  }
  if (vm_profile.vnet_config) {
    Json vnet = Json::MakeObject();
    const VnetConfig& c = *vm_profile.vnet_config;
    if (c.subnet_id) vnet.Set("subnetId", Json::String(c.subnet_id->ToString()));
    if (!c.proxy_vm_size.empty()) vnet.Set("proxyVmSize", Json::String(c.proxy_vm_size));
    if (c.container_instance_subnet_id) {
      vnet.Set("containerInstanceSubnetId",
               Json::String(c.container_instance_subnet_id->ToString()));
    }
    vm.Set("vnetConfig", std::move(vnet));
  }
  p.Set("vmProfile", std::move(vm));
  if (auto_run) p.Set("autoRun", StateJson(*auto_run));
  if (!managed_resource_tags.empty()) p.Set("managedResourceTags", TagsJson(managed_resource_tags));
  root.Set("properties", std::move(p));
  return root;
}

}  // namespace imagesmith::tmpl
