// The Image Builder template model: Microsoft.VirtualMachineImages/imageTemplates
// as typed C++ values, after parsing and validation (see parser.h).
//
// Every field holds a normalised value: canonical enum spelling, region names
// such as "eastus", resource IDs as ResourceId, checksums as Sha256Digest,
// defaults filled in where the template reference states them. The build,
// gallery and fleet layers consume this model and never re-parse strings.
// Plain copyable value types.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/json.h"
#include "base/region.h"
#include "base/resource_id.h"
#include "base/sha256.h"
#include "template/image_version.h"

namespace imagesmith::tmpl {

// Tags keep the order they were written in.
using Tags = std::vector<std::pair<std::string, std::string>>;

// ---- customize[] and validate.inVMValidations[] ---------------------------

struct ShellStep {
  std::vector<std::string> inline_commands;  // exactly one of inline / script_uri
  std::string script_uri;
  std::optional<Sha256Digest> sha256;
};

struct PowerShellStep {
  std::vector<std::string> inline_commands;
  std::string script_uri;
  std::optional<Sha256Digest> sha256;
  bool run_elevated = false;
  bool run_as_system = false;
  std::vector<int64_t> valid_exit_codes;  // default {0}
};

struct FileStep {
  std::string source_uri;
  std::string destination;
  std::optional<Sha256Digest> sha256;
};

struct WindowsRestartStep {
  static constexpr const char* kDefaultCommand = "shutdown /r /f /t 0 /c \"packer restart\"";
  std::string restart_command = kDefaultCommand;
  std::string restart_check_command;
  std::chrono::seconds restart_timeout{5 * 60};
  std::string restart_timeout_text = "5m";  // as written (normalised), for output
};

struct WindowsUpdateStep {
  static constexpr const char* kDefaultSearchCriteria = "BrowseOnly=0 and IsInstalled=0";
  std::string search_criteria = kDefaultSearchCriteria;
  std::vector<std::string> filters;
  int64_t update_limit = 1000;
};

enum class StepType { kShell, kPowerShell, kFile, kWindowsRestart, kWindowsUpdate };
const char* StepTypeName(StepType t);
// True for the customizer types that only run on Windows images.
bool IsWindowsOnly(StepType t);

// One customizer or validator.
struct Step {
  std::string name;  // optional in the template
  SourcePos pos;     // where its object starts, for later error messages
  std::variant<ShellStep, PowerShellStep, FileStep, WindowsRestartStep, WindowsUpdateStep> spec;

  StepType type() const { return static_cast<StepType>(spec.index()); }
};

// ---- source -----------------------------------------------------------------

struct PlanInfo {
  std::string plan_name;
  std::string plan_product;
  std::string plan_publisher;
};

struct PlatformImageSource {
  std::string publisher;
  std::string offer;
  std::string sku;
  std::string version;  // "latest" or an explicit version
  std::optional<PlanInfo> plan_info;
};

struct ManagedImageSource {
  ResourceId image_id;  // Microsoft.Compute/images
};

struct SharedImageVersionSource {
  ResourceId image_version_id;  // Microsoft.Compute/galleries/images/versions
  bool latest() const { return image_version_id.name() == "latest"; }
};

using Source = std::variant<PlatformImageSource, ManagedImageSource, SharedImageVersionSource>;

// ---- distribute[] -----------------------------------------------------------

enum class StorageAccountType { kStandardLRS, kStandardZRS, kPremiumLRS };
const char* StorageAccountTypeName(StorageAccountType t);

struct TargetRegion {
  Region region;
  int64_t replica_count = 1;
  std::optional<StorageAccountType> storage_account_type;
};

enum class VersioningScheme { kLatest, kSource };

struct Versioning {
  VersioningScheme scheme = VersioningScheme::kLatest;
  std::optional<uint32_t> major;  // only with kLatest
};

struct ManagedImageTarget {
  ResourceId image_id;
  Region location;
};

struct SharedImageTarget {
  // The image definition (…/galleries/g/images/d), without a version.
  ResourceId gallery_image_id;
  // Set when the template named an explicit version (…/versions/1.2.3).
  std::optional<ImageVersion> explicit_version;
  std::vector<TargetRegion> target_regions;  // replicationRegions is converted here
  bool exclude_from_latest = false;
  std::optional<StorageAccountType> storage_account_type;
  std::optional<Versioning> versioning;
};

struct VhdTarget {
  std::string uri;  // empty: the template's staging area
};

struct Distribution {
  std::string run_output_name;
  Tags artifact_tags;
  SourcePos pos;
  std::variant<ManagedImageTarget, SharedImageTarget, VhdTarget> target;
};

// ---- the rest of properties -------------------------------------------------

enum class ErrorAction { kCleanup, kAbort };

struct ErrorHandling {
  ErrorAction on_customizer_error = ErrorAction::kCleanup;
  ErrorAction on_validation_error = ErrorAction::kCleanup;
};

struct Validation {
  bool continue_distribute_on_failure = false;
  bool source_validation_only = false;
  std::vector<Step> in_vm_validations;
};

struct VnetConfig {
  std::optional<ResourceId> subnet_id;
  std::string proxy_vm_size;
  std::optional<ResourceId> container_instance_subnet_id;
};

struct VmProfile {
  std::string vm_size;          // empty: the default for the source's generation
  int64_t os_disk_size_gb = 0;  // 0: the source's size
  std::vector<ResourceId> user_assigned_identities;
  std::optional<VnetConfig> vnet_config;
};

struct ImageTemplate {
  static constexpr const char* kType = "Microsoft.VirtualMachineImages/imageTemplates";

  ImageTemplate(Region location_in, Source source_in)
      : location(std::move(location_in)), source(std::move(source_in)) {}

  std::string name;  // from an ARM resource's "name", if given
  std::string api_version;
  Region location;
  Tags tags;
  std::optional<ResourceId> identity;  // the one user-assigned identity

  int64_t build_timeout_minutes = 240;  // 0 in the file means 240
  std::vector<Step> customize;
  ErrorHandling error_handling;
  bool error_handling_given = false;  // written in the file (not only the defaults)
  std::vector<Distribution> distribute;
  std::optional<bool> optimize_vm_boot;  // optimize.vmBoot.state Enabled/Disabled
  Source source;
  std::optional<ResourceId> staging_resource_group;
  Validation validate;
  VmProfile vm_profile;
  std::optional<bool> auto_run;
  Tags managed_resource_tags;

  // The normalised template as JSON, with canonical property names in the
  // reference's order. Parsing this output again yields the same model.
  Json ToJson() const;
};

}  // namespace imagesmith::tmpl
