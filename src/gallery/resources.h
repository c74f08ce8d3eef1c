// Galleries, image definitions and image versions as meta resources, with the
// Compute Gallery's rules: names, a group that must exist, one
// publisher/offer/sku per gallery, immutable definition identity, nested
// deletion, blockDeletionBeforeEndOfLife, `latest`.
//
// Properties are stored in Azure's REST shape (what `az sig ... show`
// prints), plus `properties.imagesmith` for what only imagesmith needs:
// `storeRefs` = [{"region": "eastus", "image": "<sha256>"}] names every store
// image the resource keeps alive (store gc's roots).
//
// Every function here runs inside the caller's transaction and is
// thread-compatible. Errors name the resource ID and say what to do next.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/region.h"
#include "base/sha256.h"
#include "gallery/names.h"
#include "gallery/versioning.h"
#include "meta/meta_store.h"
#include "template/model.h"

namespace imagesmith::gallery {

// ---- galleries ----------------------------------------------------------

struct GallerySpec {
  ResourceId group;  // /subscriptions/s/resourceGroups/g; must exist
  std::string name;
  std::optional<Region> location;  // default: the group's
  std::optional<std::string> description;
  std::optional<Json> tags;  // an object of strings
};

// Creates the gallery, or updates description and tags of an existing one
// (az's create-or-update). A different location for an existing gallery is
// FailedPrecondition. Returns the stored resource.
StatusOr<meta::Resource> CreateOrUpdateGallery(meta::Transaction& txn, const GallerySpec& spec);
// NotFound says how to create it.
StatusOr<meta::Resource> GetGallery(meta::Transaction& txn, const ResourceId& gallery);
// FailedPrecondition listing the definitions still in it.
Status DeleteGallery(meta::Transaction& txn, const ResourceId& gallery);

// ---- image definitions ------------------------------------------------------

struct DefinitionSpec {
  DefinitionSpec(ResourceId gallery_in, std::string name_in)
      : gallery(std::move(gallery_in)), name(std::move(name_in)) {}

  ResourceId gallery;  // must exist
  std::string name;
  std::string publisher, offer, sku;
  std::string os_type = "Linux";          // Linux | Windows
  std::string os_state = "Generalized";   // Generalized | Specialized
  std::string hyper_v_generation = "V1";  // V1 | V2
  std::optional<Region> location;         // default and only choice: the gallery's
  std::optional<std::string> description;
  std::optional<int64_t> end_of_life_us;
  std::optional<Json> tags;
};

// Creates the definition, or updates description, end-of-life date and tags
// of an existing one. Changing the identity of an existing definition
// (publisher, offer, sku, osType, osState, hyperVGeneration) is
// FailedPrecondition naming the property. A publisher/offer/sku triple used
// by another definition in the gallery is AlreadyExists naming it.
StatusOr<meta::Resource> CreateOrUpdateDefinition(meta::Transaction& txn,
                                                  const DefinitionSpec& spec);
StatusOr<meta::Resource> GetDefinition(meta::Transaction& txn, const ResourceId& definition);
// FailedPrecondition listing the versions still in it.
Status DeleteDefinition(meta::Transaction& txn, const ResourceId& definition);

// ---- image versions -----------------------------------------------------------

// The state of one regional replica (replicationStatus.summary[]).
struct ReplicaStatus {
  Region region;
  ReplicaState state = ReplicaState::kInProgress;
  std::string details;
};

// A version resource's properties as typed values. Copyable.
struct VersionRecord {
  VersionRecord(Region home_in, Region source_region_in)
      : home(std::move(home_in)), source_region(std::move(source_region_in)) {}

  ImageVersion version;
  Region home;  // the version's location (its definition's)
  std::vector<tmpl::TargetRegion> target_regions;
  int64_t replica_count = 1;
  bool exclude_from_latest = false;
  std::optional<int64_t> end_of_life_us;
  int64_t published_us = 0;
  std::optional<tmpl::StorageAccountType> storage_account_type;
  bool allow_deletion_of_replicated_locations = false;
  bool block_deletion_before_end_of_life = false;
  std::string source_id;  // storageProfile.source.id; may be empty
  uint64_t size_bytes = 0;
  // Creating (first publish not finished), Updating (regions being added),
  // Succeeded, Failed (a replica failed).
  std::string provisioning_state = "Creating";
  std::vector<ReplicaStatus> replication;  // one per target region
  // The image in the store, where it came from and what it is.
  Sha256Digest image;
  Region source_region;
  std::string kind;  // "disk" | "tree"
  std::string os_type, os_state, hyper_v_generation;

  // Parses the properties written by ToProperties; DataLoss naming `id` if
  // they are damaged.
  static StatusOr<VersionRecord> FromResource(const meta::Resource& r);
  // Azure's shape, with replicationStatus and properties.imagesmith.storeRefs.
  Json ToProperties() const;

  const ReplicaStatus* Replica(const Region& region) const;
  ReplicaStatus* Replica(const Region& region);
  // Completed in every target region.
  bool AllCompleted() const;
};

// The version, or NotFound naming it (and saying how to list versions).
StatusOr<meta::Resource> GetVersion(meta::Transaction& txn, const ResourceId& version);
// Every version of a definition, ordered by version number.
StatusOr<std::vector<meta::Resource>> ListVersions(meta::Transaction& txn,
                                                   const ResourceId& definition);
// The version numbers in a definition (for ChooseVersion).
StatusOr<std::vector<ImageVersion>> VersionNumbers(meta::Transaction& txn,
                                                   const ResourceId& definition);
// `latest` of `definition` in `region` (see LatestInRegion). NotFound says no
// version is replicated to that region, naming the definition.
StatusOr<meta::Resource> ResolveLatestVersion(meta::Transaction& txn, const ResourceId& definition,
                                              const Region& region);
// Deletes a version. FailedPrecondition when blockDeletionBeforeEndOfLife is
// set and the end-of-life date is after `now_us`; the message says when it
// may be deleted. Store objects are left to store gc.
Status DeleteVersion(meta::Transaction& txn, const ResourceId& version, int64_t now_us);

// The JSON a `show` prints: the resource in Azure's shape. replicationStatus
// is included only when `expand_replication` (az's --expand
// ReplicationStatus).
Json VersionJson(const meta::Resource& r, bool expand_replication);

// The `imagesmith` hint for creating a missing resource.
std::string CreateHint(const ResourceId& id);

}  // namespace imagesmith::gallery
