// Publishing images: gallery image versions (with replication to their target
// regions) and managed images, from images already in the store; and the
// reverse, resolving a ManagedImage / SharedImageVersion source ID to the
// store image behind it. This is the API the build pipeline and the CLI use.
//
// Replication protocol (doc/gallery.md): a new version is written first with
// provisioningState Creating and every target region InProgress, in one
// transaction. Then each region in turn -- the home region (the version's
// location) first, copied from the source's region, the others from home --
// is copied with store::Store::Replicate outside any transaction and marked
// Completed (or Failed, with the error as details) in its own transaction.
// When no region is left InProgress the version becomes Succeeded (or Failed).
// A crash anywhere leaves a version that ReplicateVersion (and so a re-run of
// `sig image-version create` / `update`) completes. A version counts for
// `latest` in a region only once its replica there is Completed.
//
// While publishing, a store Pin holds the source and every target so a
// concurrent store gc cannot take them; afterwards the resource's
// properties.imagesmith.storeRefs keep them.
//
// Thread-safety: the functions may run concurrently in several threads and
// processes on the same data; each state change is its own transaction.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "gallery/resources.h"
#include "meta/meta_store.h"
#include "store/store.h"
#include "template/model.h"

namespace imagesmith::gallery {

// An image in the store and what it is.
struct SourceImage {
  SourceImage(Region region_in, Sha256Digest image_in)
      : region(std::move(region_in)), image(image_in) {}

  Region region;       // where the image is complete
  Sha256Digest image;  // its store digest
  store::ImageKind kind = store::ImageKind::kDisk;
  std::string os_type = "Linux";          // Linux | Windows
  std::string os_state = "Generalized";   // Generalized | Specialized
  std::string hyper_v_generation = "V1";  // V1 | V2
  uint64_t size_bytes = 0;                // the OS disk's virtual size
  // The source's own version ("0.20250101.1" for a platform image, "1.2.3"
  // for a gallery version), for the Source versioning scheme; may be empty.
  std::string version;
  // storageProfile.source.id of the new resource (a managed image ID, a
  // template's ID, ...); may be empty.
  std::string resource_id;
};

struct PublishRequest {
  PublishRequest(ResourceId definition_in, SourceImage source_in)
      : definition(std::move(definition_in)), source(std::move(source_in)) {}

  ResourceId definition;  // .../galleries/{g}/images/{d}; must exist
  // The version to create; when unset, `versioning` picks one (ChooseVersion).
  std::optional<ImageVersion> version;
  SourceImage source;
  std::optional<tmpl::Versioning> versioning;
  // Regions to replicate to. The home region (the definition's location) is
  // always one; it is added with `replica_count` when missing. Duplicate
  // regions are InvalidArgument.
  std::vector<tmpl::TargetRegion> target_regions;
  int64_t replica_count = 1;  // 1-100; for regions that do not say
  std::optional<tmpl::StorageAccountType> storage_account_type;  // default Standard_LRS
  bool exclude_from_latest = false;
  std::optional<int64_t> end_of_life_us;
  bool block_deletion_before_end_of_life = false;
  bool allow_deletion_of_replicated_locations = false;
  Json tags = Json::MakeObject();
  // Called after each region's state change, e.g. for progress output.
  std::function<void(const Region&, ReplicaState)> on_region;
  // When set, called inside the transaction that creates the version (or
  // finds the interrupted publish it resumes), with that existing version or
  // nullptr; an error aborts the publish before anything is written. The api
  // layer authorizes and checks ETag preconditions here.
  std::function<Status(meta::Transaction&, const meta::Resource* existing)> check;
  // When false, PublishVersion returns as soon as the version is written
  // (provisioningState Creating) and leaves the copying to ReplicateVersion
  // (the api layer runs it as a durable operation).
  bool replicate = true;
  // When set, called inside the transaction that creates the version (or
  // finds the interrupted publish it resumes), after the write, with the
  // version's ID; an error aborts the publish. The api layer starts the
  // replication's durable operation here so that it commits with the
  // version.
  std::function<Status(meta::Transaction&, const ResourceId& version)> on_written;
};

// Creates the version and replicates it to every target region (see above).
// Fails before creating anything on bad input (InvalidArgument naming the
// field), a missing group/gallery/definition (NotFound with how to create
// it), an existing explicit version (AlreadyExists; but an existing version
// that is still Creating from the same source image is resumed instead), a
// source whose osType or hyperVGeneration differs from the definition's
// (InvalidArgument), or a source image missing from the store (NotFound).
// If a replica fails, the version stays with that region Failed and the
// error is returned; ReplicateVersion retries it. On success returns the
// version resource (provisioningState Succeeded). A resumed publish keeps the
// target regions and flags it was first created with (change them with
// UpdateVersion).
StatusOr<meta::Resource> PublishVersion(Env& env, meta::MetaStore& meta, store::Store& store,
                                        const PublishRequest& request);

// Completes a version's replication: every target region that is not
// Completed (InProgress after a crash, or Failed) is copied and marked. OK
// and a no-op for a version that is already complete. Returns the version.
StatusOr<meta::Resource> ReplicateVersion(
    Env& env, meta::MetaStore& meta, store::Store& store, const ResourceId& version,
    const std::function<void(const Region&, ReplicaState)>& on_region = {});

// What may change on a version (unset fields stay as they are). Everything
// else about a version is fixed once it is created.
struct VersionUpdate {
  std::optional<std::vector<tmpl::TargetRegion>> target_regions;
  std::optional<int64_t> replica_count;
  std::optional<bool> exclude_from_latest;
  std::optional<int64_t> end_of_life_us;
  std::optional<bool> block_deletion_before_end_of_life;
  std::optional<bool> allow_deletion_of_replicated_locations;
  std::optional<Json> tags;
  // When set, called inside the transaction that applies the update, with
  // the version as it is; an error aborts the update (see PublishRequest).
  std::function<Status(meta::Transaction&, const meta::Resource& current)> check;
  // When false, UpdateVersion returns once the update is written and leaves
  // the copying of added (or unfinished) regions to ReplicateVersion.
  bool replicate = true;
  // When set, called inside the transaction that applies the update, after
  // the write, with whether the version still needs replication (a region
  // is not Completed); an error aborts the update.
  std::function<Status(meta::Transaction&, const ResourceId& version, bool needs_replication)>
      on_written;
};

// Applies `update` and replicates to any region it adds (provisioningState
// Updating until done). `replica_count` sets publishingProfile.replicaCount
// (the default count); each entry of `target_regions` carries its own count. Removing a region
// whose replica is Completed needs allowDeletionOfReplicatedLocations (FailedPrecondition
// otherwise); the home region cannot be removed. Also resumes an unfinished replication.
StatusOr<meta::Resource> UpdateVersion(Env& env, meta::MetaStore& meta, store::Store& store,
                                       const ResourceId& version, const VersionUpdate& update);

struct ManagedImageRequest {
  ManagedImageRequest(ResourceId image_in, SourceImage source_in)
      : image(std::move(image_in)), source(std::move(source_in)) {}

  ResourceId image;  // .../providers/Microsoft.Compute/images/{name}; must not exist
  SourceImage source;
  std::optional<Region>
      location;  // default: the group's              // replicated to `location` when elsewhere
  Json tags = Json::MakeObject();
  // When set, called inside the transaction that checks the request before
  // any work and again inside the one that creates the resource; an error
  // aborts the creation (see PublishRequest).
  std::function<Status(meta::Transaction&)> check;
};

// Creates a managed image (Microsoft.Compute/images) for a store image.
// AlreadyExists if the name is taken (delete it first); the group must
// exist. The image is copied into the location first; the resource is
// written only after that, so a failure leaves nothing behind (unreferenced
// objects go at the next store gc).
StatusOr<meta::Resource> CreateManagedImage(Env& env, meta::MetaStore& meta, store::Store& store,
                                            const ManagedImageRequest& request);

// Imports the disk file at `path` (raw, VHD or qcow2) as a managed image:
// converts it to raw in `scratch_dir` (removed afterwards), puts it into the
// store in the image's location and creates the resource.
StatusOr<meta::Resource> ImportManagedImage(Env& env, meta::MetaStore& meta, store::Store& store,
                                            const std::string& path, const std::string& scratch_dir,
                                            ManagedImageRequest request);

StatusOr<meta::Resource> GetManagedImage(meta::Transaction& txn, const ResourceId& image);
Status DeleteManagedImage(meta::Transaction& txn, const ResourceId& image);

// Resolves a source ID for a build or a VM in `region`:
//   - a managed image: its image (in its own location);
//   - a gallery version: the version's image in `region` if its replica there
//     is Completed, else in its home region; a version still Creating or with
//     no Completed replica is FailedPrecondition;
//   - .../versions/latest: `latest` in `region` (NotFound if there is none).
// The result's `resource_id` is the concrete resource (latest resolved) and
// `version` the version name. Other resource types are InvalidArgument.
StatusOr<SourceImage> ResolveImageSource(meta::Transaction& txn, const ResourceId& source,
                                         const Region& region);

}  // namespace imagesmith::gallery
