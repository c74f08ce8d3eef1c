#include "builder/distribute.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>

#include "base/crash_point.h"
#include "base/strings.h"
#include "catalog/debian_base.h"
#include "disk/convert.h"
#include "sandbox/sandbox.h"

namespace imagesmith::build {
namespace {

constexpr uint64_t kMaxResultBytes = 1 << 20;

}  // namespace

Json TreeImageMeta(const BuiltImage& image) {
  Json m = Json::MakeObject();
  m.Set("bootConfig", catalog::BootConfigToJson(image.boot));
  m.Set("diskSizeBytes", Json::Int(static_cast<int64_t>(image.disk_size_bytes)));
  m.Set("hyperVGeneration", Json::String(image.hyper_v_generation));
  m.Set("osType", Json::String("Linux"));
  m.Set("osState", Json::String("Generalized"));
  m.Set("version", Json::String(image.source_version));
  return m;
}

StatusOr<Sha256Digest> IngestTree(Env& env, const PublishContext& ctx, const BuiltImage& image,
                                  store::Pin& pin, RunLog& log, std::chrono::milliseconds timeout) {
  const std::string dir = ctx.store_dir + "/tmp";
  RETURN_IF_ERROR(env.CreateDirs(dir));
  const std::string stem = dir + "/ingest-" + std::to_string(::getpid());
  const std::string meta_file = stem + ".meta.json";
  const std::string result_file = stem + ".result.json";
  RETURN_IF_ERROR(env.WriteFileAtomic(meta_file, TreeImageMeta(image).Dump(-1)));
  (void)env.RemoveAll(result_file);
  sandbox::HostRunOptions ho;
  ho.control.timeout = timeout;
  ho.control.on_line = [&log](std::string_view line, bool is_stderr) {
    log.Output("store", line, is_stderr);
  };
  auto r = sandbox::RunHostWithTree(
      sandbox::Tree{image.layers, "", ""},
      {ctx.self_exe, "internal", "put-tree", "--store", ctx.store_dir, "--region", ctx.home.name(),
       "--meta-file", meta_file, "--result-file", result_file, "{tree}"},
      ho);
  (void)env.RemoveAll(meta_file);
  if (!r.ok()) return r.status().WithContext("ingesting the image into the store");
  auto text = env.ReadFile(result_file, kMaxResultBytes);
  (void)env.RemoveAll(result_file);
  if (!r->success() || !text.ok()) {
    return AbortedError("ingesting the image into the store failed: " + r->Describe() +
                        " (its output is in the log)");
  }
  ASSIGN_OR_RETURN(Json result, ParseJson(*text));
  const Json* digest = result.Find("image");
  if (digest == nullptr || !digest->is_string()) {
    return InternalError("internal put-tree wrote no image digest");
  }
  ASSIGN_OR_RETURN(Sha256Digest d, Sha256Digest::FromHex(digest->string_value()));
  RETURN_IF_ERROR(pin.Add(store::ImageRef{ctx.home, d}));
  auto number = [&](const char* k) {
    const Json* v = result.Find(k);
    return v != nullptr ? v->AsInt64().value_or(0) : 0;
  };
  log.Info("stored the image tree in " + ctx.home.name() + " as " + d.ToHex() + ": " +
           std::to_string(number("newObjects")) + " new objects (" +
           std::to_string(number("newBytes")) + " bytes), " +
           std::to_string(number("reusedObjects")) + " already stored");
  return d;
}

StatusOr<ResourceId> PublishTarget(Env& env, const PublishContext& ctx,
                                   const gallery::SourceImage& image,
                                   const tmpl::Distribution& target, RunLog& log) {
  Json tags = Json::MakeObject();
  for (const auto& [k, v] : target.artifact_tags) tags.Set(k, Json::String(v));
  if (const auto* mi = std::get_if<tmpl::ManagedImageTarget>(&target.target)) {
    gallery::ManagedImageRequest req(mi->image_id, image);
    req.location = mi->location;
    req.tags = tags;
    if (ctx.authorize) {
      req.check = [&](meta::Transaction& txn) {
        return ctx.authorize(txn, "Microsoft.Compute/images/write", mi->image_id);
      };
    }
    ASSIGN_OR_RETURN(meta::Resource r,
                     gallery::CreateManagedImage(env, *ctx.meta, *ctx.store, req));
    log.Info("managed image " + r.id.ToString() + " in " + r.location);
    return r.id;
  }
  const auto* si = std::get_if<tmpl::SharedImageTarget>(&target.target);
  if (si == nullptr) return InternalError("PublishTarget called for a VHD target");
  gallery::PublishRequest req(si->gallery_image_id, image);
  req.version = si->explicit_version;
  req.versioning = si->versioning;
  req.target_regions = si->target_regions;
  req.exclude_from_latest = si->exclude_from_latest;
  req.storage_account_type = si->storage_account_type;
  req.tags = tags;
  if (ctx.authorize) {
    req.check = [&](meta::Transaction& txn, const meta::Resource*) {
      return ctx.authorize(txn, "Microsoft.Compute/galleries/images/versions/write",
                           si->gallery_image_id);
    };
  }
  req.on_region = [&log](const Region& region, gallery::ReplicaState state) {
    log.Info("replica in " + region.name() + ": " + gallery::ReplicaStateName(state));
  };
  ASSIGN_OR_RETURN(meta::Resource r, gallery::PublishVersion(env, *ctx.meta, *ctx.store, req));
  log.Info("gallery image version " + r.id.ToString());
  return r.id;
}

StatusOr<StoreSource> MaterializeStoreSource(Env& env, meta::MetaStore& meta, store::Store& store,
                                             const tmpl::Source& source, const Region& region,
                                             const std::string& data_dir, RunLog& log,
                                             const AuthorizeFn& authorize) {
  ResourceId id = std::holds_alternative<tmpl::ManagedImageSource>(source)
                      ? std::get<tmpl::ManagedImageSource>(source).image_id
                      : std::get<tmpl::SharedImageVersionSource>(source).image_version_id;
  std::optional<gallery::SourceImage> resolved;
  const bool managed = std::holds_alternative<tmpl::ManagedImageSource>(source);
  Status read = meta.Read([&](meta::Transaction& txn) {
    if (authorize) {
      RETURN_IF_ERROR(authorize(txn,
                                managed ? "Microsoft.Compute/images/read"
                                        : "Microsoft.Compute/galleries/images/versions/read",
                                id));
    }
    ASSIGN_OR_RETURN(gallery::SourceImage s, gallery::ResolveImageSource(txn, id, region));
    resolved = std::move(s);
    return Status::Ok();
  });
  RETURN_IF_ERROR(read.WithContext("properties.source"));
  const gallery::SourceImage& s = *resolved;
  if (s.kind != store::ImageKind::kTree) {
    return FailedPreconditionError(
        "properties.source: " + s.resource_id +
        " was imported from a disk file, so imagesmith has no file tree to customize; use an "
        "image that an imagesmith build published");
  }
  ASSIGN_OR_RETURN(store::ImageInfo info, store.GetImage(s.region, s.image));
  const Json* boot = info.meta.is_object() ? info.meta.Find("bootConfig") : nullptr;
  if (boot == nullptr) {
    return DataLossError("the store image " + s.image.ToHex() + " behind " + s.resource_id +
                         " has no boot configuration");
  }
  ASSIGN_OR_RETURN(catalog::BootConfig config, catalog::BootConfigFromJson(*boot));
  StoreSource out;
  out.generation = config.generation;
  out.disk_size_bytes = s.size_bytes;
  if (const Json* size = info.meta.Find("diskSizeBytes")) {
    out.disk_size_bytes = static_cast<uint64_t>(size->AsInt64().value_or(0));
  }
  out.id = s.resource_id;
  out.version = s.version;
  out.image = s.image;
  const std::string dir = data_dir + "/sources/" + s.image.ToHex();
  out.rootfs = dir + "/rootfs";
  if (env.IsDirectory(out.rootfs)) {
    log.Info("source " + s.resource_id + ": store image " + s.image.ToHex() + " (cached tree)");
    return out;
  }
  const std::string partial = dir + "/rootfs.partial";
  (void)env.RemoveAll(partial);
  RETURN_IF_ERROR(env.CreateDirs(dir));
  log.Info("source " + s.resource_id + ": materializing store image " + s.image.ToHex() + " from " +
           s.region.name());
  RETURN_IF_ERROR(store.MaterializeTree(s.region, s.image, partial, {}));
  RETURN_IF_ERROR(env.Rename(partial, out.rootfs));
  return out;
}

Status ExportStoredImage(Env& env, store::Store& store, const Region& region,
                         const Sha256Digest& image, disk::DiskFormat format,
                         const std::string& out_path, RunLog* log) {
  if (env.FileExists(out_path)) {
    return AlreadyExistsError(out_path + " already exists; remove it or choose another file");
  }
  ASSIGN_OR_RETURN(store::ImageInfo info, store.GetImage(region, image));
  std::string work = out_path + ".work.XXXXXX";
  if (::mkdtemp(work.data()) == nullptr) {
    return ErrnoError("creating a work directory beside " + out_path, errno);
  }
  struct Cleanup {
    Env& env;
    std::string dir;
    ~Cleanup() { (void)env.RemoveAll(dir); }
  } cleanup{env, work};
  auto note = [&](const std::string& text) {
    if (log != nullptr) log->Info(text);
  };
  const std::string raw = work + "/disk.raw";
  if (info.kind == store::ImageKind::kDisk) {
    note("writing the stored disk " + image.ToHex());
    RETURN_IF_ERROR(store.MaterializeDisk(region, image, raw, {}));
  } else {
    const Json* boot = info.meta.is_object() ? info.meta.Find("bootConfig") : nullptr;
    const Json* size = info.meta.is_object() ? info.meta.Find("diskSizeBytes") : nullptr;
    if (boot == nullptr || size == nullptr || !size->AsInt64().has_value()) {
      return DataLossError("store image " + image.ToHex() +
                           " has no boot configuration or disk size in its meta document");
    }
    ASSIGN_OR_RETURN(catalog::BootConfig config, catalog::BootConfigFromJson(*boot));
    const uint64_t disk_bytes = static_cast<uint64_t>(*size->AsInt64());
    const std::string tree = work + "/tree";
    note("materializing the tree of " + image.ToHex());
    RETURN_IF_ERROR(store.MaterializeTree(region, image, tree, {}));
    const std::string root = work + "/root.ext4";
    ProcessOptions po;
    po.argv = catalog::RootFsCommand(config, root, catalog::RootPartitionBytes(disk_bytes));
    for (std::string& a : po.argv) {
      if (a == catalog::kTreePlaceholder) a = tree;
    }
    po.timeout = std::chrono::minutes(30);
    note("making the root filesystem");
    ASSIGN_OR_RETURN(ProcessResult r, env.RunProcess(po));
    if (!r.success()) {
      return InternalError("making the root filesystem failed (" + r.Describe() +
                           "): " + catalog::LastLines(r.stderr_data, 5));
    }
    (void)env.RemoveAll(tree);
    RETURN_IF_ERROR(catalog::AssembleDisk(env, config, root, disk_bytes, raw));
  }
  if (format == disk::DiskFormat::kRaw) return env.Rename(raw, out_path);
  disk::ConvertOptions co;
  co.format = format;
  co.azure = format == disk::DiskFormat::kVhdFixed;
  co.round_up = co.azure;
  note("converting to " + std::string(disk::DiskFormatName(format)));
  return disk::ConvertDisk(raw, out_path, co);
}

Status PutTreeMain(Env& env, const std::string& store_dir, const std::string& region,
                   const std::string& meta_file, const std::string& result_file,
                   const std::string& tree) {
  ASSIGN_OR_RETURN(Region r, Region::Parse(region));
  ASSIGN_OR_RETURN(std::string meta_text, env.ReadFile(meta_file, kMaxResultBytes));
  ASSIGN_OR_RETURN(Json meta, ParseJson(meta_text));
  ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, store::Store::Open(env, store_dir));
  store::PutStats stats;
  ASSIGN_OR_RETURN(Sha256Digest d, store->PutTree(r, tree, meta, &stats, {}));
  CrashPoint("build.ingest.put");
  Json out = Json::MakeObject();
  out.Set("image", Json::String(d.ToHex()));
  out.Set("newObjects", Json::Int(static_cast<int64_t>(stats.new_objects)));
  out.Set("newBytes", Json::Int(static_cast<int64_t>(stats.new_bytes)));
  out.Set("reusedObjects", Json::Int(static_cast<int64_t>(stats.reused_objects)));
  return env.WriteFileAtomic(result_file, out.Dump(-1));
}

}  // namespace imagesmith::build
