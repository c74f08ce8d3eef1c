// Distribution of a built image to the store-backed targets, and build
// sources that come from the store.
//
//   ingest (once per run): the image's file tree, merged from its overlay
//     layers, goes into the store in the template's region as a "tree" image
//     whose meta holds the boot configuration and disk size, so its disk can
//     be made again byte for byte (catalog/boot_disk.h);
//   ManagedImage: gallery::CreateManagedImage (replicated to its location);
//   SharedImage: gallery::PublishVersion (versioning, target regions);
//   and, for sources, MaterializeStoreSource: a ManagedImage or
//   SharedImageVersion (…/versions/latest too) resolved by the gallery and
//   materialised from the store into a cached tree the build starts from.
//
// The tree is merged by the kernel (overlayfs), so ingestion runs in a child
// process: `imagesmith internal put-tree` inside a private mount namespace
// (sandbox::RunHostWithTree). PutTreeMain is that command's body.
//
// Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/region.h"
#include "builder/run_log.h"
#include "catalog/boot_disk.h"
#include "disk/disk.h"
#include "gallery/publish.h"
#include "meta/meta_store.h"
#include "store/store.h"
#include "template/model.h"

namespace imagesmith::build {

// What the pipeline made, for ingestion.
struct BuiltImage {
  std::vector<std::string> layers;  // overlay layers, lowest first
  catalog::BootConfig boot;
  uint64_t disk_size_bytes = 0;
  std::string hyper_v_generation;  // "V1" | "V2"
  std::string source_version;      // the source's version, for versioning Source
};

// Asks, inside the caller's transaction, whether the run's principal may do
// `action` on `scope` (api/template_run.cc gives auth::Authorize for the
// template's identity). OK when allowed; PermissionDenied naming the action,
// the scope and the principal otherwise.
using AuthorizeFn =
    std::function<Status(meta::Transaction&, std::string_view action, const ResourceId& scope)>;

// The store and metadata a run publishes into. All borrowed.
struct PublishContext {
  meta::MetaStore* meta = nullptr;
  store::Store* store = nullptr;
  std::string store_dir;  // for the ingest child process
  std::string self_exe;   // the imagesmith binary (for `internal put-tree`)
  ResourceId template_id;
  Region home;  // the template's location: where the image is ingested
  // Checked in the write transaction of every publish (write on the managed
  // image or the image definition). Empty: nothing is checked.
  AuthorizeFn authorize;
};

// The image's meta document in the store: {"bootConfig": ..., "diskSizeBytes":
// n, "hyperVGeneration": "V1", "osType": "Linux", "version": "..."}.
Json TreeImageMeta(const BuiltImage& image);

// Ingests `image` into `ctx.home` through the child process; `pin` keeps it
// (and everything the child writes) from store gc. Output lines go to `log`.
StatusOr<Sha256Digest> IngestTree(Env& env, const PublishContext& ctx, const BuiltImage& image,
                                  store::Pin& pin, RunLog& log, std::chrono::milliseconds timeout);

// Publishes to one ManagedImage or SharedImage target; returns the created
// resource's ID. `tags` are the target's artifactTags.
StatusOr<ResourceId> PublishTarget(Env& env, const PublishContext& ctx,
                                   const gallery::SourceImage& image,
                                   const tmpl::Distribution& target, RunLog& log);

// A build source from the store, materialised as a plain tree.
struct StoreSource {
  std::string rootfs;  // a directory tree (cached under data_dir/sources/<digest>)
  catalog::Generation generation = catalog::Generation::kV1;
  uint64_t disk_size_bytes = 0;
  std::string id;       // the resolved resource ID (latest resolved)
  std::string version;  // the version name, or ""
  Sha256Digest image;
};

// Resolves a ManagedImage / SharedImageVersion source in `region` and
// materialises it (once; later runs reuse the cached tree). A source that
// is an imported disk rather than a tree is FailedPrecondition: imagesmith
// customizes trees.
// `authorize` (may be empty) must allow reading the source image.
StatusOr<StoreSource> MaterializeStoreSource(Env& env, meta::MetaStore& meta, store::Store& store,
                                             const tmpl::Source& source, const Region& region,
                                             const std::string& data_dir, RunLog& log,
                                             const AuthorizeFn& authorize = {});

// Writes the disk of a stored image to `out_path` in `format`. A tree
// image's disk is made again from its tree and boot configuration
// (catalog/boot_disk.h), so the same stored image always gives the same
// bytes -- the bytes of the disk the build made. A disk image's bytes come
// back as stored. VHDs follow Azure's rules (fixed, whole MiB) when `format`
// is kVhdFixed. Work files go in a directory beside `out_path`, removed
// afterwards; `out_path` must not exist (AlreadyExists).
Status ExportStoredImage(Env& env, store::Store& store, const Region& region,
                         const Sha256Digest& image, disk::DiskFormat format,
                         const std::string& out_path, RunLog* log);

// The body of `imagesmith internal put-tree --store DIR --region R
// --meta-file F --result-file OUT TREE`: PutTree, then writes
// {"image": "<digest>", "newBytes": n, ...} to OUT.
Status PutTreeMain(Env& env, const std::string& store_dir, const std::string& region,
                   const std::string& meta_file, const std::string& result_file,
                   const std::string& tree);

}  // namespace imagesmith::build
