#include "gallery/resources.h"

#include <algorithm>

#include "base/strings.h"
#include "meta/scopes.h"

namespace imagesmith::gallery {
namespace {

std::string Str(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr && v->is_string() ? v->string_value() : "";
}
const Json* Obj(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr && v->is_object() ? v : nullptr;
}
bool Bool(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr && v->is_bool() && v->bool_value();
}
int64_t Int(const Json& obj, std::string_view key, int64_t fallback) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr ? v->AsInt64().value_or(fallback) : fallback;
}

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

// Lists up to five IDs for "delete them first" messages.
std::string ListIds(const std::vector<meta::Resource>& items) {
  std::string list;
  for (size_t i = 0; i < items.size() && i < 5; ++i) list += "\n  " + items[i].id.ToString();
  if (items.size() > 5) list += "\n  ... and " + std::to_string(items.size() - 5) + " more";
  return list;
}

std::optional<tmpl::StorageAccountType> StorageTypeFromName(std::string_view s) {
  for (auto t : {tmpl::StorageAccountType::kStandardLRS, tmpl::StorageAccountType::kStandardZRS,
                 tmpl::StorageAccountType::kPremiumLRS}) {
    if (EqualsIgnoreCase(tmpl::StorageAccountTypeName(t), s)) return t;
  }
  return std::nullopt;
}

}  // namespace

std::string CreateHint(const ResourceId& id) {
  const auto& t = id.types();
  const std::string& g = id.resource_group();
  if (id.IsType(kGalleryType)) {
    return "create it with 'imagesmith sig create -g " + g + " -r " + id.name() + "'";
  }
  if (id.IsType(kImageDefinitionType)) {
    return "create it with 'imagesmith sig image-definition create -g " + g + " -r " + t[0].name +
           " -i " + id.name() + " --publisher P --offer O --sku S --os-type Linux'";
  }
  if (id.IsType(kImageVersionType)) {
    return "see the versions there with 'imagesmith sig image-version list -g " + g + " -r " +
           t[0].name + " -i " + t[1].name + "'";
  }
  if (id.IsType(kManagedImageType)) {
    return "create it with 'imagesmith image create -g " + g + " -n " + id.name() +
           " --source DISK_FILE --os-type Linux'";
  }
  return "check the ID";
}

// ---- galleries ----------------------------------------------------------

StatusOr<meta::Resource> GetGallery(meta::Transaction& txn, const ResourceId& gallery) {
  RETURN_IF_ERROR(CheckIdType(gallery, kGalleryType, "gallery"));
  ASSIGN_OR_RETURN(meta::Resource group, meta::GetGroup(txn, gallery.Parent()));
  (void)group;
  auto r = txn.Get(gallery);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("gallery " + Quoted(gallery.name()) +
                         " could not be found in resource group " +
                         Quoted(gallery.resource_group()) + "; " + CreateHint(gallery));
  }
  return r;
}

StatusOr<meta::Resource> CreateOrUpdateGallery(meta::Transaction& txn, const GallerySpec& spec) {
  RETURN_IF_ERROR(ValidateGalleryName(spec.name));
  ASSIGN_OR_RETURN(meta::Resource group, meta::GetGroup(txn, spec.group));
  ResourceId id = GalleryId(spec.group, spec.name);
  ASSIGN_OR_RETURN(bool exists, txn.Exists(id));
  if (exists) {
    ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
    if (spec.location.has_value() && spec.location->name() != r.location) {
      return FailedPreconditionError("gallery " + Quoted(r.id.name()) + " is in " + r.location +
                                     "; a gallery's location cannot be changed (omit -l, or "
                                     "create a gallery with another name)");
    }
    if (spec.description.has_value()) {
      r.properties.Set("description", Json::String(*spec.description));
    }
    if (spec.tags.has_value()) r.tags = *spec.tags;
    RETURN_IF_ERROR(txn.Replace(r, r.generation));
    return r;
  }
  meta::Resource r{id,
                   spec.location.has_value() ? spec.location->name() : group.location,
                   Json::MakeObject(),
                   Json::MakeObject(),
                   0,
                   0,
                   0};
  if (spec.tags.has_value()) r.tags = *spec.tags;
  if (spec.description.has_value()) {
    r.properties.Set("description", Json::String(*spec.description));
  }
  Json identifier = Json::MakeObject();
  std::string unique = spec.group.subscription() + "-";
  for (char c : spec.name) unique += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  identifier.Set("uniqueName", Json::String(unique));
  r.properties.Set("identifier", identifier);
  r.properties.Set("provisioningState", Json::String("Succeeded"));
  RETURN_IF_ERROR(txn.Create(r));
  return r;
}

Status DeleteGallery(meta::Transaction& txn, const ResourceId& gallery) {
  RETURN_IF_ERROR(GetGallery(txn, gallery).status());
  ASSIGN_OR_RETURN(auto defs, txn.ListChildren(gallery, kImageDefinitionType));
  if (!defs.empty()) {
    return FailedPreconditionError(
        "gallery " + Quoted(gallery.name()) + " still holds " + std::to_string(defs.size()) +
        " image definition(s); delete them first with 'imagesmith sig image-definition delete':" +
        ListIds(defs));
  }
  return txn.Delete(gallery);
}

// ---- image definitions ------------------------------------------------------

StatusOr<meta::Resource> GetDefinition(meta::Transaction& txn, const ResourceId& definition) {
  RETURN_IF_ERROR(CheckIdType(definition, kImageDefinitionType, "image definition"));
  RETURN_IF_ERROR(GetGallery(txn, definition.Parent()).status());
  auto r = txn.Get(definition);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("image definition " + Quoted(definition.name()) +
                         " could not be found in gallery " + Quoted(definition.Parent().name()) +
                         "; " + CreateHint(definition));
  }
  return r;
}

StatusOr<meta::Resource> CreateOrUpdateDefinition(meta::Transaction& txn,
                                                  const DefinitionSpec& spec) {
  RETURN_IF_ERROR(ValidateImageDefinitionName(spec.name));
  RETURN_IF_ERROR(ValidateIdentifierPart("publisher", spec.publisher));
  RETURN_IF_ERROR(ValidateIdentifierPart("offer", spec.offer));
  RETURN_IF_ERROR(ValidateIdentifierPart("sku", spec.sku));
  ASSIGN_OR_RETURN(std::string os_type, ParseOsType("osType", spec.os_type));
  ASSIGN_OR_RETURN(std::string os_state, ParseOsState("osState", spec.os_state));
  ASSIGN_OR_RETURN(std::string gen,
                   ParseHyperVGeneration("hyperVGeneration", spec.hyper_v_generation));
  ASSIGN_OR_RETURN(meta::Resource gallery, GetGallery(txn, spec.gallery));
  if (spec.location.has_value() && spec.location->name() != gallery.location) {
    return InvalidArgumentError("location: image definition " + Quoted(spec.name) +
                                " must be in its gallery's location " + gallery.location +
                                ", not " + spec.location->name() + " (omit -l)");
  }
  ResourceId id = spec.gallery.Child("images", spec.name);

  // One publisher/offer/sku per gallery.
  ASSIGN_OR_RETURN(auto siblings, txn.ListChildren(spec.gallery, kImageDefinitionType));
  for (const meta::Resource& s : siblings) {
    if (s.id == id) continue;
    const Json* ident = Obj(s.properties, "identifier");
    if (ident != nullptr && EqualsIgnoreCase(Str(*ident, "publisher"), spec.publisher) &&
        EqualsIgnoreCase(Str(*ident, "offer"), spec.offer) &&
        EqualsIgnoreCase(Str(*ident, "sku"), spec.sku)) {
      return AlreadyExistsError("publisher/offer/sku " + spec.publisher + "/" + spec.offer + "/" +
                                spec.sku + " is already used by image definition " +
                                Quoted(s.id.name()) + " in gallery " + Quoted(spec.gallery.name()) +
                                "; each definition in a gallery needs its own identifier");
    }
  }

  ASSIGN_OR_RETURN(bool exists, txn.Exists(id));
  if (exists) {
    ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
    const Json* ident = Obj(r.properties, "identifier");
    Json none = Json::MakeObject();
    if (ident == nullptr) ident = &none;
    struct Field {
      const char* name;
      std::string old_value, new_value;
    };
    for (const Field& f : {Field{"identifier.publisher", Str(*ident, "publisher"), spec.publisher},
                           Field{"identifier.offer", Str(*ident, "offer"), spec.offer},
                           Field{"identifier.sku", Str(*ident, "sku"), spec.sku},
                           Field{"osType", Str(r.properties, "osType"), os_type},
                           Field{"osState", Str(r.properties, "osState"), os_state},
                           Field{"hyperVGeneration", Str(r.properties, "hyperVGeneration"), gen}}) {
      if (f.old_value != f.new_value) {
        return FailedPreconditionError(
            "image definition " + Quoted(r.id.name()) + ": changing property '" + f.name +
            "' from " + Quoted(f.old_value) + " to " + Quoted(f.new_value) +
            " is not allowed; a definition's identity is fixed (create a new definition)");
      }
    }
    if (spec.description.has_value()) {
      r.properties.Set("description", Json::String(*spec.description));
    }
    if (spec.end_of_life_us.has_value()) {
      r.properties.Set("endOfLifeDate", Json::String(FormatDateTime(*spec.end_of_life_us)));
    }
    if (spec.tags.has_value()) r.tags = *spec.tags;
    RETURN_IF_ERROR(txn.Replace(r, r.generation));
    return r;
  }

  meta::Resource r{id, gallery.location, Json::MakeObject(), Json::MakeObject(), 0, 0, 0};
  if (spec.tags.has_value()) r.tags = *spec.tags;
  if (spec.description.has_value()) {
    r.properties.Set("description", Json::String(*spec.description));
  }
  if (spec.end_of_life_us.has_value()) {
    r.properties.Set("endOfLifeDate", Json::String(FormatDateTime(*spec.end_of_life_us)));
  }
  r.properties.Set("hyperVGeneration", Json::String(gen));
  Json ident = Json::MakeObject();
  ident.Set("offer", Json::String(spec.offer));
  ident.Set("publisher", Json::String(spec.publisher));
  ident.Set("sku", Json::String(spec.sku));
  r.properties.Set("identifier", ident);
  r.properties.Set("osState", Json::String(os_state));
  r.properties.Set("osType", Json::String(os_type));
  r.properties.Set("provisioningState", Json::String("Succeeded"));
  RETURN_IF_ERROR(txn.Create(r));
  return r;
}

Status DeleteDefinition(meta::Transaction& txn, const ResourceId& definition) {
  RETURN_IF_ERROR(GetDefinition(txn, definition).status());
  ASSIGN_OR_RETURN(auto versions, txn.ListChildren(definition, kImageVersionType));
  if (!versions.empty()) {
    return FailedPreconditionError(
        "image definition " + Quoted(definition.name()) + " still holds " +
        std::to_string(versions.size()) +
        " image version(s); delete them first with 'imagesmith sig image-version delete':" +
        ListIds(versions));
  }
  return txn.Delete(definition);
}

// ---- image versions -----------------------------------------------------------

StatusOr<VersionRecord> VersionRecord::FromResource(const meta::Resource& r) {
  auto damaged = [&](const std::string& what) {
    return DataLossError("image version " + r.id.ToString() + " has damaged properties (" + what +
                         ")");
  };
  auto version = ImageVersion::Parse(r.id.name());
  if (!version.ok()) return damaged("name");
  auto home = Region::Parse(r.location);
  if (!home.ok()) return damaged("location");
  const Json& p = r.properties;
  const Json* own = Obj(p, "imagesmith");
  if (own == nullptr) return damaged("imagesmith");
  auto src_region = Region::Parse(Str(*own, "sourceRegion"));
  if (!src_region.ok()) return damaged("imagesmith.sourceRegion");
  VersionRecord v(*home, *src_region);
  v.version = *version;
  const Json* pub = Obj(p, "publishingProfile");
  if (pub == nullptr) return damaged("publishingProfile");
  const Json* targets = pub->Find("targetRegions");
  if (targets == nullptr || !targets->is_array()) return damaged("targetRegions");
  for (const Json& t : targets->array_items()) {
    auto region = Region::Parse(Str(t, "name"));
    if (!region.ok()) return damaged("targetRegions name");
    tmpl::TargetRegion tr{*region, Int(t, "regionalReplicaCount", 1), std::nullopt};
    tr.storage_account_type = StorageTypeFromName(Str(t, "storageAccountType"));
    v.target_regions.push_back(tr);
  }
  v.replica_count = Int(*pub, "replicaCount", 1);
  v.exclude_from_latest = Bool(*pub, "excludeFromLatest");
  if (std::string eol = Str(*pub, "endOfLifeDate"); !eol.empty()) {
    auto t = ParseDateTime("endOfLifeDate", eol);
    if (!t.ok()) return damaged("endOfLifeDate");
    v.end_of_life_us = *t;
  }
  if (std::string pd = Str(*pub, "publishedDate"); !pd.empty()) {
    auto t = ParseDateTime("publishedDate", pd);
    if (t.ok()) v.published_us = *t;
  }
  v.storage_account_type = StorageTypeFromName(Str(*pub, "storageAccountType"));
  if (const Json* safety = Obj(p, "safetyProfile")) {
    v.allow_deletion_of_replicated_locations = Bool(*safety, "allowDeletionOfReplicatedLocations");
    v.block_deletion_before_end_of_life = Bool(*safety, "blockDeletionBeforeEndOfLife");
  }
  if (const Json* storage = Obj(p, "storageProfile")) {
    if (const Json* src = Obj(*storage, "source")) v.source_id = Str(*src, "id");
    if (const Json* os = Obj(*storage, "osDiskImage")) {
      v.size_bytes = static_cast<uint64_t>(Int(*os, "sizeInBytes", 0));
    }
  }
  v.provisioning_state = Str(p, "provisioningState");
  if (const Json* rs = Obj(p, "replicationStatus")) {
    if (const Json* summary = rs->Find("summary"); summary != nullptr && summary->is_array()) {
      for (const Json& s : summary->array_items()) {
        auto region = Region::Parse(Str(s, "region"));
        if (!region.ok()) return damaged("replicationStatus region");
        v.replication.push_back({*region, ParseReplicaState(Str(s, "state")), Str(s, "details")});
      }
    }
  }
  auto digest = Sha256Digest::FromHex(Str(*own, "image"));
  if (!digest.ok()) return damaged("imagesmith.image");
  v.image = *digest;
  v.kind = Str(*own, "kind");
  v.os_type = Str(*own, "osType");
  v.os_state = Str(*own, "osState");
  v.hyper_v_generation = Str(*own, "hyperVGeneration");
  return v;
}

Json VersionRecord::ToProperties() const {
  Json p = Json::MakeObject();
  Json pub = Json::MakeObject();
  if (end_of_life_us.has_value()) {
    pub.Set("endOfLifeDate", Json::String(FormatDateTime(*end_of_life_us)));
  }
  pub.Set("excludeFromLatest", Json::Bool(exclude_from_latest));
  pub.Set("publishedDate", Json::String(FormatDateTime(published_us)));
  pub.Set("replicaCount", Json::Int(replica_count));
  pub.Set("storageAccountType",
          Json::String(tmpl::StorageAccountTypeName(
              storage_account_type.value_or(tmpl::StorageAccountType::kStandardLRS))));
  Json targets = Json::MakeArray();
  for (const tmpl::TargetRegion& t : target_regions) {
    Json j = Json::MakeObject();
    j.Set("name", Json::String(t.region.display_name()));
    j.Set("regionalReplicaCount", Json::Int(t.replica_count));
    j.Set("storageAccountType",
          Json::String(tmpl::StorageAccountTypeName(t.storage_account_type.value_or(
              storage_account_type.value_or(tmpl::StorageAccountType::kStandardLRS)))));
    targets.Append(j);
  }
  pub.Set("targetRegions", targets);
  p.Set("publishingProfile", pub);
  p.Set("provisioningState", Json::String(provisioning_state));
  Json safety = Json::MakeObject();
  safety.Set("allowDeletionOfReplicatedLocations",
             Json::Bool(allow_deletion_of_replicated_locations));
  safety.Set("blockDeletionBeforeEndOfLife", Json::Bool(block_deletion_before_end_of_life));
  p.Set("safetyProfile", safety);
  Json storage = Json::MakeObject();
  Json os_disk = Json::MakeObject();
  os_disk.Set("hostCaching", Json::String("ReadWrite"));
  os_disk.Set("sizeInBytes", Json::Int(static_cast<int64_t>(size_bytes)));
  os_disk.Set("sizeInGB", Json::Int(static_cast<int64_t>((size_bytes + (1ull << 30) - 1) >> 30)));
  storage.Set("osDiskImage", os_disk);
  if (!source_id.empty()) {
    Json src = Json::MakeObject();
    src.Set("id", Json::String(source_id));
    storage.Set("source", src);
  }
  p.Set("storageProfile", storage);

  Json summary = Json::MakeArray();
  bool any_failed = false, all_done = true;
  for (const ReplicaStatus& s : replication) {
    Json j = Json::MakeObject();
    j.Set("details", Json::String(s.details));
    j.Set("progress", Json::Int(s.state == ReplicaState::kCompleted ? 100 : 0));
    j.Set("region", Json::String(s.region.display_name()));
    j.Set("state", Json::String(ReplicaStateName(s.state)));
    summary.Append(j);
    any_failed = any_failed || s.state == ReplicaState::kFailed;
    all_done = all_done && s.state == ReplicaState::kCompleted;
  }
  Json rs = Json::MakeObject();
  rs.Set("aggregatedState",
         Json::String(any_failed ? "Failed" : (all_done ? "Completed" : "InProgress")));
  rs.Set("summary", summary);
  p.Set("replicationStatus", rs);

  // storeRefs: every Completed replica, and the source while the home
  // replica is not complete yet (so gc cannot take what resuming needs).
  Json own = Json::MakeObject();
  own.Set("hyperVGeneration", Json::String(hyper_v_generation));
  own.Set("image", Json::String(image.ToHex()));
  own.Set("kind", Json::String(kind));
  own.Set("osState", Json::String(os_state));
  own.Set("osType", Json::String(os_type));
  own.Set("sourceRegion", Json::String(source_region.name()));
  Json refs = Json::MakeArray();
  auto add_ref = [&](const Region& region) {
    for (const Json& existing : refs.array_items()) {
      if (Str(existing, "region") == region.name()) return;
    }
    Json ref = Json::MakeObject();
    ref.Set("region", Json::String(region.name()));
    ref.Set("image", Json::String(image.ToHex()));
    refs.Append(ref);
  };
  const ReplicaStatus* home_status = Replica(home);
  if (home_status == nullptr || home_status->state != ReplicaState::kCompleted) {
    add_ref(source_region);
  }
  for (const ReplicaStatus& s : replication) {
    if (s.state == ReplicaState::kCompleted) add_ref(s.region);
  }
  own.Set("storeRefs", refs);
  p.Set("imagesmith", own);
  return p;
}

const ReplicaStatus* VersionRecord::Replica(const Region& region) const {
  for (const ReplicaStatus& s : replication) {
    if (s.region == region) return &s;
  }
  return nullptr;
}

ReplicaStatus* VersionRecord::Replica(const Region& region) {
  for (ReplicaStatus& s : replication) {
    if (s.region == region) return &s;
  }
  return nullptr;
}

bool VersionRecord::AllCompleted() const {
  for (const ReplicaStatus& s : replication) {
    if (s.state != ReplicaState::kCompleted) return false;
  }
  return true;
}

StatusOr<meta::Resource> GetVersion(meta::Transaction& txn, const ResourceId& version) {
  RETURN_IF_ERROR(CheckIdType(version, kImageVersionType, "image version"));
  RETURN_IF_ERROR(GetDefinition(txn, version.Parent()).status());
  auto r = txn.Get(version);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("image version " + Quoted(version.name()) +
                         " could not be found in image definition " +
                         Quoted(version.Parent().name()) + "; " + CreateHint(version));
  }
  return r;
}

StatusOr<std::vector<meta::Resource>> ListVersions(meta::Transaction& txn,
                                                   const ResourceId& definition) {
  RETURN_IF_ERROR(GetDefinition(txn, definition).status());
  ASSIGN_OR_RETURN(auto versions, txn.ListChildren(definition, kImageVersionType));
  std::vector<std::pair<ImageVersion, meta::Resource>> keyed;
  for (meta::Resource& r : versions) {
    auto v = ImageVersion::Parse(r.id.name());
    keyed.emplace_back(v.ok() ? *v : ImageVersion(), std::move(r));
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<meta::Resource> out;
  out.reserve(keyed.size());
  for (auto& [v, r] : keyed) out.push_back(std::move(r));
  return out;
}

StatusOr<std::vector<ImageVersion>> VersionNumbers(meta::Transaction& txn,
                                                   const ResourceId& definition) {
  ASSIGN_OR_RETURN(auto versions, ListVersions(txn, definition));
  std::vector<ImageVersion> out;
  for (const meta::Resource& r : versions) {
    auto v = ImageVersion::Parse(r.id.name());
    if (v.ok()) out.push_back(*v);
  }
  return out;
}

StatusOr<meta::Resource> ResolveLatestVersion(meta::Transaction& txn, const ResourceId& definition,
                                              const Region& region) {
  ASSIGN_OR_RETURN(auto versions, ListVersions(txn, definition));
  std::vector<VersionFacts> facts;
  for (const meta::Resource& r : versions) {
    ASSIGN_OR_RETURN(VersionRecord rec, VersionRecord::FromResource(r));
    VersionFacts f{rec.version, rec.exclude_from_latest, {}};
    for (const ReplicaStatus& s : rec.replication) f.replicas.emplace_back(s.region, s.state);
    facts.push_back(std::move(f));
  }
  std::optional<ImageVersion> latest = LatestInRegion(facts, region);
  if (!latest.has_value()) {
    return NotFoundError("image definition " + definition.ToString() +
                         " has no version usable as latest in " + region.name() +
                         " (none is both replicated there and not excluded from latest); "
                         "publish one with 'imagesmith sig image-version create' targeting " +
                         region.name() +
                         ", or add the region to a version with 'imagesmith sig "
                         "image-version update --target-regions'");
  }
  return txn.Get(definition.Child("versions", latest->ToString()));
}

Status DeleteVersion(meta::Transaction& txn, const ResourceId& version, int64_t now_us) {
  ASSIGN_OR_RETURN(meta::Resource r, GetVersion(txn, version));
  ASSIGN_OR_RETURN(VersionRecord rec, VersionRecord::FromResource(r));
  if (rec.block_deletion_before_end_of_life) {
    if (!rec.end_of_life_us.has_value() || *rec.end_of_life_us > now_us) {
      std::string when = rec.end_of_life_us.has_value()
                             ? "its end of life date " + FormatDateTime(*rec.end_of_life_us)
                             : "an end of life date (none is set)";
      return FailedPreconditionError(
          "image version " + version.ToString() +
          " has blockDeletionBeforeEndOfLife set; it cannot be deleted before " + when +
          "; wait until then, or move the date with 'imagesmith sig image-version update "
          "--end-of-life-date'");
    }
  }
  return txn.Delete(version);
}

Json VersionJson(const meta::Resource& r, bool expand_replication) {
  Json j = r.ToJson();
  if (!expand_replication) {
    if (Json* p = j.Find("properties"); p != nullptr && p->is_object()) {
      Json copy = Json::MakeObject();
      for (const JsonMember& m : p->object_items()) {
        if (m.key != "replicationStatus") copy.Set(m.key, m.value);
      }
      *p = copy;
    }
  }
  return j;
}

}  // namespace imagesmith::gallery
