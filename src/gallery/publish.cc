#include "gallery/publish.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "base/crash_point.h"
#include "base/random.h"
#include "base/strings.h"
#include "disk/convert.h"
#include "meta/scopes.h"

namespace imagesmith::gallery {
namespace {

constexpr int64_t kMaxReplicaCount = 100;

std::string Str(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

std::string KindName(store::ImageKind k) { return k == store::ImageKind::kTree ? "tree" : "disk"; }

Status CheckReplicaCount(std::string_view field, int64_t n) {
  if (n >= 1 && n <= kMaxReplicaCount) return Status::Ok();
  return InvalidArgumentError(std::string(field) + ": replica count " + std::to_string(n) +
                              " is out of range; use 1 to " + std::to_string(kMaxReplicaCount));
}

// The full target list: validated, duplicates rejected, home first.
StatusOr<std::vector<tmpl::TargetRegion>> NormaliseTargets(
    const std::vector<tmpl::TargetRegion>& targets, int64_t default_count, const Region& home) {
  RETURN_IF_ERROR(CheckReplicaCount("replicaCount", default_count));
  std::vector<tmpl::TargetRegion> out;
  std::set<std::string> seen;
  bool has_home = false;
  for (const tmpl::TargetRegion& t : targets) {
    RETURN_IF_ERROR(CheckReplicaCount("targetRegions " + t.region.name(), t.replica_count));
    if (!seen.insert(t.region.name()).second) {
      return InvalidArgumentError("targetRegions: " + t.region.name() +
                                  " is listed twice; name each region once");
    }
    if (t.region == home) has_home = true;
  }
  if (!has_home) out.push_back({home, default_count, std::nullopt});
  for (const tmpl::TargetRegion& t : targets) {
    if (t.region == home) {
      out.insert(out.begin(), t);
    } else {
      out.push_back(t);
    }
  }
  return out;
}

// Reads a version record, lets `fn` change it, and writes it back, in one
// transaction.
Status MutateVersion(meta::MetaStore& meta, const ResourceId& id,
                     const std::function<Status(VersionRecord&)>& fn) {
  return meta.Update([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(meta::Resource r, GetVersion(txn, id));
    ASSIGN_OR_RETURN(VersionRecord rec, VersionRecord::FromResource(r));
    RETURN_IF_ERROR(fn(rec));
    r.properties = rec.ToProperties();
    return txn.Replace(r, r.generation);
  });
}

StatusOr<VersionRecord> ReadVersion(meta::MetaStore& meta, const ResourceId& id) {
  std::optional<VersionRecord> out;
  if (Status st = meta.Read([&](meta::Transaction& txn) -> Status {
        ASSIGN_OR_RETURN(meta::Resource r, GetVersion(txn, id));
        ASSIGN_OR_RETURN(VersionRecord rec, VersionRecord::FromResource(r));
        out = std::move(rec);
        return Status::Ok();
      });
      !st.ok())
    return st;
  return std::move(*out);
}

StatusOr<meta::Resource> ReadResource(meta::MetaStore& meta, const ResourceId& id) {
  std::optional<meta::Resource> out;
  if (Status st = meta.Read([&](meta::Transaction& txn) -> Status {
        ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
        out = std::move(r);
        return Status::Ok();
      });
      !st.ok())
    return st;
  return std::move(*out);
}

// Copies `image` into `to` (from `from`), or checks it is there when they are
// the same region.
Status CopyImage(store::Store& store, const Region& from, const Region& to,
                 const Sha256Digest& image) {
  if (from == to) {
    if (store.HasImage(to, image)) return Status::Ok();
    return NotFoundError("image " + image.ToHex() + " is not in the store in " + to.name());
  }
  return store.Replicate(from, to, image, {}).status();
}

// The replication loop (see publish.h). `pin` is held by the caller.
StatusOr<meta::Resource> Replicate(
    meta::MetaStore& meta, store::Store& store, store::Pin& pin, const ResourceId& id,
    const std::function<void(const Region&, ReplicaState)>& on_region) {
  std::set<std::string> attempted;
  Status first_error;
  while (true) {
    ASSIGN_OR_RETURN(VersionRecord rec, ReadVersion(meta, id));
    const ReplicaStatus* next = nullptr;
    // Home first: the other regions copy from it.
    if (const ReplicaStatus* h = rec.Replica(rec.home); h != nullptr &&
                                                        h->state != ReplicaState::kCompleted &&
                                                        !attempted.count(h->region.name())) {
      next = h;
    }
    for (const ReplicaStatus& s : rec.replication) {
      if (next != nullptr) break;
      if (s.state != ReplicaState::kCompleted && !attempted.count(s.region.name())) next = &s;
    }
    if (next == nullptr) break;
    Region region = next->region;
    attempted.insert(region.name());
    if (next->state == ReplicaState::kFailed) {
      // A retry: say so before copying again.
      RETURN_IF_ERROR(MutateVersion(meta, id, [&](VersionRecord& v) {
        if (ReplicaStatus* s = v.Replica(region)) {
          s->state = ReplicaState::kInProgress;
          s->details.clear();
        }
        return Status::Ok();
      }));
    }
    const ReplicaStatus* home = rec.Replica(rec.home);
    Region from = region != rec.home && home != nullptr && home->state == ReplicaState::kCompleted
                      ? rec.home
                      : rec.source_region;
    RETURN_IF_ERROR(pin.Add({region, rec.image}));
    CrashPoint("gallery.replicate.before_copy");
    Status copied = CopyImage(store, from, region, rec.image);
    CrashPoint("gallery.replicate.after_copy");
    RETURN_IF_ERROR(MutateVersion(meta, id, [&](VersionRecord& v) {
      if (ReplicaStatus* s = v.Replica(region)) {
        s->state = copied.ok() ? ReplicaState::kCompleted : ReplicaState::kFailed;
        s->details = copied.ok() ? "" : copied.message();
      }
      return Status::Ok();
    }));
    CrashPoint("gallery.replicate.marked");
    if (on_region)
      on_region(region, copied.ok() ? ReplicaState::kCompleted : ReplicaState::kFailed);
    if (!copied.ok() && first_error.ok()) {
      first_error = Status(copied.code(), "replicating image version " + id.ToString() + " to " +
                                              region.name() + " failed: " + copied.message() +
                                              "; retry with 'imagesmith sig image-version "
                                              "update' once the cause is fixed");
    }
  }
  RETURN_IF_ERROR(MutateVersion(meta, id, [&](VersionRecord& v) {
    bool failed = false, done = true;
    for (const ReplicaStatus& s : v.replication) {
      failed = failed || s.state == ReplicaState::kFailed;
      done = done && s.state == ReplicaState::kCompleted;
    }
    if (done) v.provisioning_state = "Succeeded";
    if (failed) v.provisioning_state = "Failed";
    return Status::Ok();
  }));
  CrashPoint("gallery.replicate.finished");
  if (!first_error.ok()) return first_error;
  return ReadResource(meta, id);
}

Status CheckSourceMatchesDefinition(const meta::Resource& def, const SourceImage& src) {
  ASSIGN_OR_RETURN(std::string os_type, ParseOsType("source osType", src.os_type));
  ASSIGN_OR_RETURN(std::string gen,
                   ParseHyperVGeneration("source hyperVGeneration", src.hyper_v_generation));
  std::string def_os = Str(def.properties, "osType");
  std::string def_gen = Str(def.properties, "hyperVGeneration");
  if (os_type != def_os) {
    return InvalidArgumentError("the source image is " + os_type + " but image definition '" +
                                def.id.name() + "' is for " + def_os + " images; publish it to a " +
                                os_type + " definition");
  }
  if (gen != def_gen) {
    return InvalidArgumentError("the source image is hyperVGeneration " + gen +
                                " but image definition '" + def.id.name() + "' is " + def_gen +
                                "; publish it to a definition created with --hyper-v-generation " +
                                gen);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<meta::Resource> PublishVersion(Env& env, meta::MetaStore& meta, store::Store& store,
                                        const PublishRequest& request) {
  // Everything that can be checked before writing anything.
  std::optional<meta::Resource> def;
  if (Status st = meta.Read([&](meta::Transaction& txn) -> Status {
        ASSIGN_OR_RETURN(meta::Resource d, GetDefinition(txn, request.definition));
        def = std::move(d);
        return Status::Ok();
      });
      !st.ok())
    return st;
  RETURN_IF_ERROR(CheckSourceMatchesDefinition(*def, request.source));
  ASSIGN_OR_RETURN(Region home, Region::Parse(def->location));
  ASSIGN_OR_RETURN(auto targets,
                   NormaliseTargets(request.target_regions, request.replica_count, home));
  ASSIGN_OR_RETURN(store::Pin pin, store.NewPin());
  RETURN_IF_ERROR(pin.Add({request.source.region, request.source.image}));
  if (!store.HasImage(request.source.region, request.source.image)) {
    return NotFoundError("the source image " + request.source.image.ToHex() +
                         " is not in the store in " + request.source.region.name() +
                         "; nothing was published");
  }

  VersionRecord rec(home, request.source.region);
  rec.target_regions = targets;
  rec.replica_count = request.replica_count;
  rec.exclude_from_latest = request.exclude_from_latest;
  rec.end_of_life_us = request.end_of_life_us;
  rec.published_us = env.NowMicros();
  rec.storage_account_type = request.storage_account_type;
  rec.allow_deletion_of_replicated_locations = request.allow_deletion_of_replicated_locations;
  rec.block_deletion_before_end_of_life = request.block_deletion_before_end_of_life;
  rec.source_id = request.source.resource_id;
  rec.size_bytes = request.source.size_bytes;
  rec.provisioning_state = "Creating";
  for (const tmpl::TargetRegion& t : targets) rec.replication.push_back({t.region, {}, ""});
  rec.image = request.source.image;
  rec.kind = KindName(request.source.kind);
  rec.os_type = Str(def->properties, "osType");
  rec.os_state = Str(def->properties, "osState");
  rec.hyper_v_generation = Str(def->properties, "hyperVGeneration");

  ResourceId id = request.definition;
  bool resume = false;
  if (Status st = meta.Update([&](meta::Transaction& txn) -> Status {
        ASSIGN_OR_RETURN(std::vector<ImageVersion> existing,
                         VersionNumbers(txn, request.definition));
        bool checked = false;
        if (request.version.has_value()) {
          ResourceId vid = request.definition.Child("versions", request.version->ToString());
          ASSIGN_OR_RETURN(bool exists, txn.Exists(vid));
          if (exists) {
            ASSIGN_OR_RETURN(meta::Resource old, txn.Get(vid));
            if (request.check) RETURN_IF_ERROR(request.check(txn, &old));
            checked = true;
            ASSIGN_OR_RETURN(VersionRecord old_rec, VersionRecord::FromResource(old));
            if (old_rec.provisioning_state != "Succeeded" && old_rec.image == rec.image) {
              id = vid;  // the same publish, interrupted: finish it
              resume = true;
              if (request.on_written) return request.on_written(txn, id);
              return Status::Ok();
            }
          }
        }
        ASSIGN_OR_RETURN(ImageVersion v,
                         ChooseVersion(request.definition.ToString(), existing, request.version,
                                       request.versioning, request.source.version));
        if (request.check && !checked) RETURN_IF_ERROR(request.check(txn, nullptr));
        rec.version = v;
        id = request.definition.Child("versions", v.ToString());
        meta::Resource r{id, home.name(), request.tags, rec.ToProperties(), 0, 0, 0};
        RETURN_IF_ERROR(txn.Create(r));
        if (request.on_written) return request.on_written(txn, id);
        return Status::Ok();
      });
      !st.ok())
    return st;
  CrashPoint(resume ? "gallery.publish.resumed" : "gallery.publish.created");
  if (!request.replicate) return ReadResource(meta, id);
  for (const tmpl::TargetRegion& t : targets) RETURN_IF_ERROR(pin.Add({t.region, rec.image}));
  return Replicate(meta, store, pin, id, request.on_region);
}

StatusOr<meta::Resource> ReplicateVersion(
    Env& env, meta::MetaStore& meta, store::Store& store, const ResourceId& version,
    const std::function<void(const Region&, ReplicaState)>& on_region) {
  (void)env;
  ASSIGN_OR_RETURN(VersionRecord rec, ReadVersion(meta, version));
  if (rec.AllCompleted() && rec.provisioning_state == "Succeeded") {
    return ReadResource(meta, version);
  }
  ASSIGN_OR_RETURN(store::Pin pin, store.NewPin());
  RETURN_IF_ERROR(pin.Add({rec.source_region, rec.image}));
  return Replicate(meta, store, pin, version, on_region);
}

StatusOr<meta::Resource> UpdateVersion(Env& env, meta::MetaStore& meta, store::Store& store,
                                       const ResourceId& version, const VersionUpdate& update) {
  if (update.replica_count.has_value()) {
    RETURN_IF_ERROR(CheckReplicaCount("replicaCount", *update.replica_count));
  }
  ASSIGN_OR_RETURN(store::Pin pin, store.NewPin());
  bool added = false;
  if (Status st = meta.Update([&](meta::Transaction& txn) -> Status {
        ASSIGN_OR_RETURN(meta::Resource r, GetVersion(txn, version));
        if (update.check) RETURN_IF_ERROR(update.check(txn, r));
        ASSIGN_OR_RETURN(VersionRecord rec, VersionRecord::FromResource(r));
        RETURN_IF_ERROR(pin.Add({rec.source_region, rec.image}));
        if (update.allow_deletion_of_replicated_locations.has_value()) {
          rec.allow_deletion_of_replicated_locations =
              *update.allow_deletion_of_replicated_locations;
        }
        if (update.replica_count.has_value()) rec.replica_count = *update.replica_count;
        if (update.target_regions.has_value()) {
          int64_t default_count = update.replica_count.value_or(rec.replica_count);
          ASSIGN_OR_RETURN(auto targets,
                           NormaliseTargets(*update.target_regions, default_count, rec.home));
          bool home_listed = false;
          for (const tmpl::TargetRegion& t : *update.target_regions) {
            home_listed = home_listed || t.region == rec.home;
          }
          if (!home_listed) {
            return InvalidArgumentError("targetRegions: the version's home region " +
                                        rec.home.name() +
                                        " cannot be removed; list it among the target regions");
          }
          std::vector<ReplicaStatus> replication;
          for (const tmpl::TargetRegion& t : targets) {
            if (const ReplicaStatus* s = rec.Replica(t.region)) {
              replication.push_back(*s);
            } else {
              replication.push_back({t.region, ReplicaState::kInProgress, ""});
              added = true;
            }
          }
          for (const ReplicaStatus& s : rec.replication) {
            bool kept = false;
            for (const tmpl::TargetRegion& t : targets) kept = kept || t.region == s.region;
            if (!kept && s.state == ReplicaState::kCompleted &&
                !rec.allow_deletion_of_replicated_locations) {
              return FailedPreconditionError(
                  "targetRegions: removing " + s.region.name() + " from image version " +
                  version.ToString() +
                  " would delete a completed replica, and safetyProfile."
                  "allowDeletionOfReplicatedLocations is false; pass "
                  "--allow-replicated-location-deletion true to allow it");
            }
          }
          rec.target_regions = targets;
          rec.replication = replication;
        }
        if (update.exclude_from_latest.has_value()) {
          rec.exclude_from_latest = *update.exclude_from_latest;
        }
        if (update.end_of_life_us.has_value()) rec.end_of_life_us = *update.end_of_life_us;
        if (update.block_deletion_before_end_of_life.has_value()) {
          rec.block_deletion_before_end_of_life = *update.block_deletion_before_end_of_life;
        }
        if (update.tags.has_value()) r.tags = *update.tags;
        if (added && rec.provisioning_state == "Succeeded") rec.provisioning_state = "Updating";
        r.properties = rec.ToProperties();
        RETURN_IF_ERROR(txn.Replace(r, r.generation));
        if (update.on_written) {
          return update.on_written(txn, version,
                                   !(rec.AllCompleted() && rec.provisioning_state == "Succeeded"));
        }
        return Status::Ok();
      });
      !st.ok())
    return st;
  CrashPoint("gallery.update.written");
  ASSIGN_OR_RETURN(VersionRecord rec, ReadVersion(meta, version));
  if ((rec.AllCompleted() && rec.provisioning_state == "Succeeded") || !update.replicate) {
    return ReadResource(meta, version);
  }
  (void)env;
  return Replicate(meta, store, pin, version, {});
}

// ---- managed images -----------------------------------------------------------

StatusOr<meta::Resource> GetManagedImage(meta::Transaction& txn, const ResourceId& image) {
  RETURN_IF_ERROR(CheckIdType(image, kManagedImageType, "image"));
  RETURN_IF_ERROR(meta::GetGroup(txn, image.Parent()).status());
  auto r = txn.Get(image);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("image '" + image.name() + "' could not be found in resource group '" +
                         image.resource_group() + "'; " + CreateHint(image));
  }
  return r;
}

Status DeleteManagedImage(meta::Transaction& txn, const ResourceId& image) {
  RETURN_IF_ERROR(GetManagedImage(txn, image).status());
  return txn.Delete(image);
}

namespace {

// Checks the name, the group and that the name is free; returns the location.
StatusOr<Region> PrecheckManagedImage(meta::MetaStore& meta, const ManagedImageRequest& request) {
  RETURN_IF_ERROR(CheckIdType(request.image, kManagedImageType, "image"));
  RETURN_IF_ERROR(ValidateManagedImageName(request.image.name()));
  std::optional<Region> location = request.location;
  if (Status st = meta.Read([&](meta::Transaction& txn) -> Status {
        if (request.check) RETURN_IF_ERROR(request.check(txn));
        ASSIGN_OR_RETURN(meta::Resource group, meta::GetGroup(txn, request.image.Parent()));
        ASSIGN_OR_RETURN(bool exists, txn.Exists(request.image));
        if (exists) {
          return AlreadyExistsError("image '" + request.image.name() +
                                    "' already exists in resource group '" +
                                    request.image.resource_group() +
                                    "'; delete it first with 'imagesmith image delete -g " +
                                    request.image.resource_group() + " -n " + request.image.name() +
                                    "' or pick another name");
        }
        if (!location.has_value()) {
          ASSIGN_OR_RETURN(Region l, Region::Parse(group.location));
          location = l;
        }
        return Status::Ok();
      });
      !st.ok())
    return st;
  return *location;
}

// Removes the scratch files of imports whose process is gone (killed during
// a conversion): "import-<pid>-<random>.raw[.partial]".
void RemoveStaleImports(Env& env, const std::string& scratch_dir) {
  auto names = env.ListDir(scratch_dir);
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    if (!StartsWith(name, "import-")) continue;
    std::vector<std::string> parts = Split(name.substr(7), '-');
    if (parts.size() < 2 || !IsAsciiDigits(parts[0]) || parts[0].size() > 9) continue;
    pid_t pid = static_cast<pid_t>(std::stol(parts[0]));
    if (::kill(pid, 0) != 0 && errno == ESRCH) (void)env.RemoveAll(JoinPath(scratch_dir, name));
  }
}

StatusOr<meta::Resource> FinishManagedImage(meta::MetaStore& meta, store::Store& store,
                                            store::Pin& pin, const ManagedImageRequest& request,
                                            const Region& location) {
  const SourceImage& src = request.source;
  ASSIGN_OR_RETURN(std::string os_type, ParseOsType("osType", src.os_type));
  ASSIGN_OR_RETURN(std::string os_state, ParseOsState("osState", src.os_state));
  ASSIGN_OR_RETURN(std::string gen,
                   ParseHyperVGeneration("hyperVGeneration", src.hyper_v_generation));
  RETURN_IF_ERROR(pin.Add({src.region, src.image}));
  RETURN_IF_ERROR(pin.Add({location, src.image}));
  RETURN_IF_ERROR(CopyImage(store, src.region, location, src.image));
  CrashPoint("gallery.image.copied");

  meta::Resource r{request.image, location.name(), request.tags, Json::MakeObject(), 0, 0, 0};
  Json& p = r.properties;
  p.Set("hyperVGeneration", Json::String(gen));
  p.Set("provisioningState", Json::String("Succeeded"));
  p.Set("sourceVirtualMachine", Json::Null());
  Json os_disk = Json::MakeObject();
  os_disk.Set("blobUri", Json::Null());
  os_disk.Set("caching", Json::String("ReadWrite"));
  os_disk.Set("diskSizeGb",
              Json::Int(static_cast<int64_t>((src.size_bytes + (1ull << 30) - 1) >> 30)));
  os_disk.Set("osState", Json::String(os_state));
  os_disk.Set("osType", Json::String(os_type));
  os_disk.Set("storageAccountType", Json::String("Standard_LRS"));
  Json storage = Json::MakeObject();
  storage.Set("dataDisks", Json::MakeArray());
  storage.Set("osDisk", os_disk);
  storage.Set("zoneResilient", Json::Bool(false));
  p.Set("storageProfile", storage);
  Json own = Json::MakeObject();
  own.Set("image", Json::String(src.image.ToHex()));
  own.Set("kind", Json::String(KindName(src.kind)));
  own.Set("sizeInBytes", Json::Int(static_cast<int64_t>(src.size_bytes)));
  if (!src.resource_id.empty()) own.Set("source", Json::String(src.resource_id));
  Json ref = Json::MakeObject();
  ref.Set("region", Json::String(location.name()));
  ref.Set("image", Json::String(src.image.ToHex()));
  Json refs = Json::MakeArray();
  refs.Append(ref);
  own.Set("storeRefs", refs);
  p.Set("imagesmith", own);
  if (Status st = meta.Update([&](meta::Transaction& txn) -> Status {
        if (request.check) RETURN_IF_ERROR(request.check(txn));
        RETURN_IF_ERROR(meta::GetGroup(txn, request.image.Parent()).status());
        ASSIGN_OR_RETURN(bool exists, txn.Exists(request.image));
        if (exists) {
          return AlreadyExistsError("image '" + request.image.name() +
                                    "' was created by someone else meanwhile; delete it first or "
                                    "pick another name");
        }
        return txn.Create(r);
      });
      !st.ok())
    return st;
  CrashPoint("gallery.image.created");
  return r;
}

}  // namespace

StatusOr<meta::Resource> CreateManagedImage(Env& env, meta::MetaStore& meta, store::Store& store,
                                            const ManagedImageRequest& request) {
  (void)env;
  ASSIGN_OR_RETURN(Region location, PrecheckManagedImage(meta, request));
  ASSIGN_OR_RETURN(store::Pin pin, store.NewPin());
  return FinishManagedImage(meta, store, pin, request, location);
}

StatusOr<meta::Resource> ImportManagedImage(Env& env, meta::MetaStore& meta, store::Store& store,
                                            const std::string& path, const std::string& scratch_dir,
                                            ManagedImageRequest request) {
  ASSIGN_OR_RETURN(Region location, PrecheckManagedImage(meta, request));
  ASSIGN_OR_RETURN(std::string os_type, ParseOsType("osType", request.source.os_type));
  ASSIGN_OR_RETURN(std::string gen,
                   ParseHyperVGeneration("hyperVGeneration", request.source.hyper_v_generation));
  if (!env.FileExists(path) || env.IsDirectory(path)) {
    return NotFoundError("source: disk file " + QuoteForMessage(path) +
                         " does not exist; give a raw, VHD or qcow2 disk image");
  }
  RETURN_IF_ERROR(env.CreateDirs(scratch_dir));
  RemoveStaleImports(env, scratch_dir);
  std::string raw =
      JoinPath(scratch_dir, "import-" + std::to_string(getpid()) + "-" + RandomHex(16) + ".raw");
  // The pin protects what PutDisk writes until the resource names it.
  ASSIGN_OR_RETURN(store::Pin pin, store.NewPin());
  disk::ConvertOptions options;
  options.format = disk::DiskFormat::kRaw;
  Status converted = disk::ConvertDisk(path, raw, options);
  if (!converted.ok()) {
    (void)env.RemoveAll(raw);
    (void)env.RemoveAll(raw + ".partial");
    return converted.WithContext("source: cannot read disk file " + path);
  }
  CrashPoint("gallery.import.converted");
  Json meta_doc = Json::MakeObject();
  meta_doc.Set("hyperVGeneration", Json::String(gen));
  meta_doc.Set("osType", Json::String(os_type));
  meta_doc.Set("sourceFile", Json::String(Basename(path)));
  auto digest = store.PutDisk(location, raw, meta_doc, nullptr, {});
  (void)env.RemoveAll(raw);
  if (!digest.ok()) return digest.status().WithContext("storing " + path);
  CrashPoint("gallery.import.stored");
  RETURN_IF_ERROR(pin.Add({location, *digest}));
  ASSIGN_OR_RETURN(store::ImageInfo info, store.GetImage(location, *digest));
  request.source.region = location;
  request.source.image = *digest;
  request.source.kind = store::ImageKind::kDisk;
  request.source.os_type = os_type;
  request.source.hyper_v_generation = gen;
  request.source.size_bytes = info.logical_bytes;
  return FinishManagedImage(meta, store, pin, request, location);
}

// ---- sources --------------------------------------------------------------------

StatusOr<SourceImage> ResolveImageSource(meta::Transaction& txn, const ResourceId& source,
                                         const Region& region) {
  if (source.IsType(kManagedImageType)) {
    ASSIGN_OR_RETURN(meta::Resource r, GetManagedImage(txn, source));
    const Json* own = r.properties.Find("imagesmith");
    const Json* storage = r.properties.Find("storageProfile");
    const Json* os_disk =
        storage != nullptr && storage->is_object() ? storage->Find("osDisk") : nullptr;
    auto digest = Sha256Digest::FromHex(own != nullptr ? Str(*own, "image") : "");
    auto location = Region::Parse(r.location);
    if (!digest.ok() || !location.ok() || os_disk == nullptr) {
      return DataLossError("image " + source.ToString() + " has damaged properties");
    }
    SourceImage out{*location, *digest};
    out.kind = Str(*own, "kind") == "tree" ? store::ImageKind::kTree : store::ImageKind::kDisk;
    out.os_type = Str(*os_disk, "osType");
    out.os_state = Str(*os_disk, "osState");
    out.hyper_v_generation = Str(r.properties, "hyperVGeneration");
    const Json* size = own->Find("sizeInBytes");
    out.size_bytes = size != nullptr ? static_cast<uint64_t>(size->AsInt64().value_or(0)) : 0;
    out.resource_id = r.id.ToString();
    return out;
  }
  if (source.IsType(kImageVersionType)) {
    StatusOr<meta::Resource> found = EqualsIgnoreCase(source.name(), "latest")
                                         ? ResolveLatestVersion(txn, source.Parent(), region)
                                         : GetVersion(txn, source);
    if (!found.ok()) return found.status();
    const meta::Resource& r = *found;
    ASSIGN_OR_RETURN(VersionRecord rec, VersionRecord::FromResource(r));
    const ReplicaStatus* here = rec.Replica(region);
    const ReplicaStatus* home = rec.Replica(rec.home);
    Region at = region;
    if (here == nullptr || here->state != ReplicaState::kCompleted) {
      if (home == nullptr || home->state != ReplicaState::kCompleted) {
        return FailedPreconditionError(
            "image version " + r.id.ToString() +
            " is not usable yet: its replication has not completed (provisioningState " +
            rec.provisioning_state + "); finish it with 'imagesmith sig image-version update'");
      }
      at = rec.home;
    }
    SourceImage out{at, rec.image};
    out.kind = rec.kind == "tree" ? store::ImageKind::kTree : store::ImageKind::kDisk;
    out.os_type = rec.os_type;
    out.os_state = rec.os_state;
    out.hyper_v_generation = rec.hyper_v_generation;
    out.size_bytes = rec.size_bytes;
    out.version = rec.version.ToString();
    out.resource_id = r.id.ToString();
    return out;
  }
  return InvalidArgumentError("source " + QuoteForMessage(source.ToString()) + " is a " +
                              source.FullType() +
                              "; expected a managed image (Microsoft.Compute/images) or a gallery "
                              "image version (Microsoft.Compute/galleries/images/versions, "
                              "'latest' allowed)");
}

}  // namespace imagesmith::gallery
