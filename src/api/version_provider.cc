// Gallery image versions. PUT publishes a version from a managed image or
// another version and replicates it to its target regions; PATCH changes the
// regions, replica counts and flags (and finishes an interrupted
// replication). The rules and the replication protocol are
// gallery/publish.h's.
//
// Replication is a durable operation (version_replication.h): PUT and PATCH
// write the version and start the operation in one transaction; with
// request.wait (the CLI without a server) the caller runs it to its end and
// returns the finished version, otherwise the answer (201/200, the version
// Creating or Updating) carries the operation and a worker replicates.
#include "api/arm_error.h"
#include "api/body.h"
#include "api/etag.h"
#include "api/provider_util.h"
#include "api/resource_providers.h"
#include "api/version_replication.h"
#include "base/strings.h"
#include "batch/images.h"
#include "gallery/publish.h"
#include "gallery/resources.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

constexpr const char* kVersionRead = "Microsoft.Compute/galleries/images/versions/read";
constexpr const char* kVersionWrite = "Microsoft.Compute/galleries/images/versions/write";
constexpr const char* kVersionDelete = "Microsoft.Compute/galleries/images/versions/delete";

Status CheckDefinitionId(const ResourceId& id) {
  if (id.kind() != ResourceId::Kind::kResource || !id.IsType(gallery::kImageDefinitionType)) {
    return InvalidArgumentError("expected a " + std::string(gallery::kImageDefinitionType) +
                                " ID, got " + id.ToString());
  }
  RETURN_IF_ERROR(ValidateResourceGroupName(id.resource_group()));
  RETURN_IF_ERROR(gallery::ValidateGalleryName(id.Parent().name()));
  return gallery::ValidateImageDefinitionName(id.name());
}

// A version ID; `allow_latest` accepts the name "latest" (GET only).
Status CheckVersionId(const ResourceId& id, bool allow_latest) {
  if (id.kind() != ResourceId::Kind::kResource || !id.IsType(gallery::kImageVersionType)) {
    return InvalidArgumentError("expected a " + std::string(gallery::kImageVersionType) +
                                " ID, got " + id.ToString());
  }
  RETURN_IF_ERROR(CheckDefinitionId(id.Parent()));
  if (allow_latest && EqualsIgnoreCase(id.name(), "latest")) return Status::Ok();
  return gallery::ImageVersion::Parse(id.name()).status();
}

std::optional<tmpl::StorageAccountType> StorageType(const std::string& canonical) {
  for (auto k : {tmpl::StorageAccountType::kStandardLRS, tmpl::StorageAccountType::kStandardZRS,
                 tmpl::StorageAccountType::kPremiumLRS}) {
    if (canonical == tmpl::StorageAccountTypeName(k)) return k;
  }
  return std::nullopt;
}

StatusOr<std::optional<tmpl::StorageAccountType>> StorageTypeAt(const BodyObject& obj,
                                                                std::string_view key) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, obj.String(key));
  if (!text) return std::optional<tmpl::StorageAccountType>();
  auto parsed = gallery::ParseStorageAccountType(obj.PathOf(key), *text);
  if (!parsed.ok()) return BodyError(obj.PathOf(key), parsed.status().message());
  return StorageType(*parsed);
}

struct TargetInBody {
  Region region;
  std::optional<int64_t> count;
  std::optional<tmpl::StorageAccountType> type;
};

// The members of a version body (PUT and PATCH).
struct VersionBody {
  std::optional<Region> location;
  std::optional<Json> tags;
  std::optional<std::vector<TargetInBody>> targets;
  std::optional<int64_t> replica_count;
  std::optional<bool> exclude_from_latest;
  std::optional<int64_t> end_of_life_us;
  std::optional<tmpl::StorageAccountType> storage_account_type;
  std::optional<bool> allow_deletion_of_replicated_locations;
  std::optional<bool> block_deletion_before_end_of_life;
  std::optional<ResourceId> source;  // storageProfile.source.id
};

StatusOr<VersionBody> ParseVersionBody(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
  ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
  // provisioningState, replicationStatus and imagesmith are read-only.
  RETURN_IF_ERROR(props.AllowOnly({"publishingProfile", "storageProfile", "safetyProfile",
                                   "provisioningState", "replicationStatus", "imagesmith"}));
  VersionBody out;
  ASSIGN_OR_RETURN(out.location, top.Location());
  ASSIGN_OR_RETURN(out.tags, top.Tags());

  ASSIGN_OR_RETURN(BodyObject pub, props.Object("publishingProfile"));
  RETURN_IF_ERROR(pub.AllowOnly({"targetRegions", "replicaCount", "excludeFromLatest",
                                 "endOfLifeDate", "storageAccountType", "publishedDate"}));
  if (const Json* targets = pub.Find("targetRegions")) {
    std::string path = pub.PathOf("targetRegions");
    if (!targets->is_array()) {
      return BodyError(path,
                       "expected an array of {name, regionalReplicaCount, "
                       "storageAccountType}");
    }
    std::vector<TargetInBody> list;
    for (size_t i = 0; i < targets->array_items().size(); ++i) {
      ASSIGN_OR_RETURN(BodyObject t, BodyObject::At(&targets->array_items()[i],
                                                    path + "[" + std::to_string(i) + "]"));
      RETURN_IF_ERROR(t.AllowOnly({"name", "regionalReplicaCount", "storageAccountType"}));
      ASSIGN_OR_RETURN(std::string name, t.RequiredString("name"));
      auto region = Region::Parse(name);
      if (!region.ok()) return BodyError(t.PathOf("name"), region.status().message());
      TargetInBody entry{*region, std::nullopt, std::nullopt};
      ASSIGN_OR_RETURN(entry.count, t.Int("regionalReplicaCount"));
      ASSIGN_OR_RETURN(entry.type, StorageTypeAt(t, "storageAccountType"));
      list.push_back(std::move(entry));
    }
    out.targets = std::move(list);
  }
  ASSIGN_OR_RETURN(out.replica_count, pub.Int("replicaCount"));
  ASSIGN_OR_RETURN(out.exclude_from_latest, pub.Bool("excludeFromLatest"));
  ASSIGN_OR_RETURN(std::optional<std::string> eol, pub.String("endOfLifeDate"));
  if (eol) {
    auto t = gallery::ParseDateTime(pub.PathOf("endOfLifeDate"), *eol);
    if (!t.ok()) return BodyError(pub.PathOf("endOfLifeDate"), t.status().message());
    out.end_of_life_us = *t;
  }
  ASSIGN_OR_RETURN(out.storage_account_type, StorageTypeAt(pub, "storageAccountType"));

  ASSIGN_OR_RETURN(BodyObject safety, props.Object("safetyProfile"));
  RETURN_IF_ERROR(
      safety.AllowOnly({"allowDeletionOfReplicatedLocations", "blockDeletionBeforeEndOfLife"}));
  ASSIGN_OR_RETURN(out.allow_deletion_of_replicated_locations,
                   safety.Bool("allowDeletionOfReplicatedLocations"));
  ASSIGN_OR_RETURN(out.block_deletion_before_end_of_life,
                   safety.Bool("blockDeletionBeforeEndOfLife"));

  ASSIGN_OR_RETURN(BodyObject storage, props.Object("storageProfile"));
  // osDiskImage is read-only (the size of the published disk).
  RETURN_IF_ERROR(storage.AllowOnly({"source", "osDiskImage"}));
  ASSIGN_OR_RETURN(BodyObject source, storage.Object("source"));
  RETURN_IF_ERROR(source.AllowOnly({"id"}));
  ASSIGN_OR_RETURN(std::optional<std::string> source_id, source.String("id"));
  if (source_id) {
    auto id = ResourceId::Parse(*source_id);
    if (!id.ok()) return BodyError(source.PathOf("id"), id.status().message());
    out.source = *id;
  }
  return out;
}

std::vector<tmpl::TargetRegion> Targets(const std::vector<TargetInBody>& in, int64_t default_count,
                                        std::optional<tmpl::StorageAccountType> default_type) {
  std::vector<tmpl::TargetRegion> out;
  out.reserve(in.size());
  for (const TargetInBody& t : in) {
    out.push_back({t.region, t.count.value_or(default_count), t.type ? t.type : default_type});
  }
  return out;
}

// The action that reads a source image.
std::string ReadActionFor(const ResourceId& source) {
  if (source.IsType(gallery::kManagedImageType)) return "Microsoft.Compute/images/read";
  if (source.IsType(gallery::kImageVersionType)) return kVersionRead;
  return source.FullType() + "/read";
}

StatusOr<bool> ExpandOf(const Request& request) {
  auto it = request.params.find("$expand");
  if (it == request.params.end()) return false;
  if (!EqualsIgnoreCase(it->second, "ReplicationStatus")) {
    return BodyError("$expand",
                     QuoteForMessage(it->second) + " is not allowed; use ReplicationStatus");
  }
  return true;
}

StatusOr<std::unique_ptr<store::Store>> OpenStore(Services& services) {
  return store::Store::Open(*services.env, services.data_dir + "/store");
}

StatusOr<meta::Resource> ReadVersion(Services& services, const ResourceId& id) {
  std::optional<meta::Resource> out;
  RETURN_IF_ERROR(services.meta->Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(out, gallery::GetVersion(txn, id));
    return Status::Ok();
  }));
  return std::move(*out);
}

// The answer to a PUT or PATCH that wrote `written` and, when `op` is set,
// started its replication: run here to the end (request.wait) and answer
// with the finished version, or answer at once with the operation.
StatusOr<Response> Replicated(Services& services, const Request& request, int http_status,
                              bool expand, const meta::Resource& written,
                              const std::optional<Operation>& op) {
  const std::string target = request.id.ToString();
  if (!op.has_value()) {
    return ResourceResponse(http_status, gallery::VersionJson(written, expand), written);
  }
  if (!request.wait) {
    Response r = ResourceResponse(http_status, gallery::VersionJson(written, expand), written);
    r.operation_id = op->id;
    return r;
  }
  Status done = FinishVersionReplication(services, *op, request);
  if (!done.ok()) return WithTarget(done, target);
  auto v = ReadVersion(services, written.id);
  if (!v.ok()) return WithTarget(v.status(), target);
  Response r = ResourceResponse(http_status, gallery::VersionJson(*v, expand), *v);
  r.operation_id = op->id;
  return r;
}

class ImageVersionProvider final : public Provider {
 public:
  std::string_view Type() const override { return gallery::kImageVersionType; }
  std::vector<std::string> ApiVersions() const override {
    return {"2022-03-03", "2022-08-03", "2023-07-03", "2024-03-03"};
  }

  // Publishes the version (201) from properties.storageProfile.source.id, or
  // finishes an interrupted publish of the same source (200). A version that
  // exists and is complete is 409: change it with PATCH.
  StatusOr<Response> Put(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    const std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckVersionId(id, false), target));
    ASSIGN_OR_RETURN(bool expand, ExpandOf(request));
    ASSIGN_OR_RETURN(VersionBody body, ParseVersionBody(request.body));
    if (!body.source.has_value()) {
      return BodyError("properties.storageProfile.source.id",
                       "is required: the managed image or image version to publish");
    }
    if (body.block_deletion_before_end_of_life.value_or(false) && !body.end_of_life_us) {
      return BodyError("properties.safetyProfile.blockDeletionBeforeEndOfLife",
                       "needs properties.publishingProfile.endOfLifeDate: deletion is blocked "
                       "until that date");
    }
    const ResourceId definition = id.Parent();
    std::optional<gallery::SourceImage> source;
    std::string home_name;
    Status s = services.meta->Read([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kVersionWrite, id));
      ASSIGN_OR_RETURN(meta::Resource def, gallery::GetDefinition(txn, definition));
      ASSIGN_OR_RETURN(Region home, Region::Parse(def.location));
      home_name = home.name();
      if (body.location.has_value() && *body.location != home) {
        return BodyError("location", "an image version is in its definition's location " +
                                         home.name() + ", not " + body.location->name());
      }
      RETURN_IF_ERROR(Allow(txn, request, ReadActionFor(*body.source), *body.source));
      ASSIGN_OR_RETURN(source, gallery::ResolveImageSource(txn, *body.source, home));
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, OpenStore(services));

    gallery::PublishRequest req(definition, *source);
    ASSIGN_OR_RETURN(req.version, gallery::ImageVersion::Parse(id.name()));
    req.tags = body.tags.value_or(Json::MakeObject());
    req.replica_count = body.replica_count.value_or(1);
    req.storage_account_type = body.storage_account_type;
    if (body.targets) {
      req.target_regions = Targets(*body.targets, req.replica_count, std::nullopt);
    }
    req.exclude_from_latest = body.exclude_from_latest.value_or(false);
    req.end_of_life_us = body.end_of_life_us;
    req.block_deletion_before_end_of_life = body.block_deletion_before_end_of_life.value_or(false);
    req.allow_deletion_of_replicated_locations =
        body.allow_deletion_of_replicated_locations.value_or(false);
    bool existed = false;
    std::optional<Operation> op;
    req.replicate = false;
    req.on_written = [&](meta::Transaction& txn, const ResourceId& version) -> Status {
      ASSIGN_OR_RETURN(op, StartVersionReplicationIn(services, txn, version, home_name,
                                                     /*held=*/request.wait));
      return Status::Ok();
    };
    req.check = [&](meta::Transaction& txn, const meta::Resource* existing) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kVersionWrite, id));
      RETURN_IF_ERROR(CheckPreconditions(request, existing));
      existed = existing != nullptr;
      return Status::Ok();
    };
    auto v = gallery::PublishVersion(*services.env, *services.meta, *store, req);
    if (!v.ok()) return WithTarget(v.status(), target);
    return Replicated(services, request, existed ? 200 : 201, expand, *v, op);
  }

  // Changes target regions (replicating added ones before it returns),
  // replica counts, excludeFromLatest, endOfLifeDate, the safety profile and
  // tags; finishes an interrupted replication. 200.
  StatusOr<Response> Patch(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    const std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckVersionId(id, false), target));
    ASSIGN_OR_RETURN(bool expand, ExpandOf(request));
    ASSIGN_OR_RETURN(VersionBody body, ParseVersionBody(request.body));
    if (body.source.has_value()) {
      return BodyError("properties.storageProfile.source.id",
                       "cannot be changed on an image version; publish a new version");
    }
    if (body.location.has_value()) {
      return BodyError("location", "cannot be changed on an image version");
    }
    if (body.storage_account_type.has_value()) {
      return BodyError("properties.publishingProfile.storageAccountType",
                       "cannot be changed on an image version; give a storageAccountType per "
                       "target region");
    }
    int64_t current_count = 1;
    std::string home_name;
    Status s = services.meta->Read([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kVersionWrite, id));
      ASSIGN_OR_RETURN(meta::Resource r, gallery::GetVersion(txn, id));
      ASSIGN_OR_RETURN(gallery::VersionRecord rec, gallery::VersionRecord::FromResource(r));
      current_count = rec.replica_count;
      home_name = r.location;
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, OpenStore(services));
    gallery::VersionUpdate u;
    u.replica_count = body.replica_count;
    if (body.targets) {
      u.target_regions =
          Targets(*body.targets, body.replica_count.value_or(current_count), std::nullopt);
    }
    u.exclude_from_latest = body.exclude_from_latest;
    u.end_of_life_us = body.end_of_life_us;
    u.block_deletion_before_end_of_life = body.block_deletion_before_end_of_life;
    u.allow_deletion_of_replicated_locations = body.allow_deletion_of_replicated_locations;
    u.tags = body.tags;
    u.check = [&](meta::Transaction& txn, const meta::Resource& current) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kVersionWrite, id));
      return CheckPreconditions(request, &current);
    };
    std::optional<Operation> op;
    u.replicate = false;
    u.on_written = [&](meta::Transaction& txn, const ResourceId& version,
                       bool needs_replication) -> Status {
      if (!needs_replication) return Status::Ok();
      ASSIGN_OR_RETURN(op, StartVersionReplicationIn(services, txn, version, home_name,
                                                     /*held=*/request.wait));
      return Status::Ok();
    };
    auto v = gallery::UpdateVersion(*services.env, *services.meta, *store, id, u);
    if (!v.ok()) return WithTarget(v.status(), target);
    return Replicated(services, request, 200, expand, *v, op);
  }

  // A version; the name "latest" is the version that is latest in the
  // region given as the `location` parameter (default: the definition's).
  StatusOr<Response> Get(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    const std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckVersionId(id, true), target));
    ASSIGN_OR_RETURN(bool expand, ExpandOf(request));
    std::optional<Region> region;
    if (auto it = request.params.find("location"); it != request.params.end()) {
      auto r = Region::Parse(it->second);
      if (!r.ok()) return BodyError("location", r.status().message());
      region = *r;
    }
    Response out;
    Status s = services.meta->Read([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kVersionRead, id));
      std::optional<meta::Resource> found;
      if (EqualsIgnoreCase(id.name(), "latest")) {
        ASSIGN_OR_RETURN(meta::Resource def, gallery::GetDefinition(txn, id.Parent()));
        if (!region.has_value()) {
          ASSIGN_OR_RETURN(region, Region::Parse(def.location));
        }
        ASSIGN_OR_RETURN(found, gallery::ResolveLatestVersion(txn, id.Parent(), *region));
      } else {
        ASSIGN_OR_RETURN(found, gallery::GetVersion(txn, id));
      }
      out = ResourceResponse(200, gallery::VersionJson(*found, expand), *found);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return out;
  }

  // The versions of the definition `request.id`, by version number.
  StatusOr<Response> List(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckDefinitionId(request.id), request.id.ToString()));
    ASSIGN_OR_RETURN(bool expand, ExpandOf(request));
    return ListAll(
        services, request, kVersionRead,
        [&](meta::Transaction& txn) { return gallery::ListVersions(txn, request.id); },
        [&](const meta::Resource& r) { return gallery::VersionJson(r, expand); });
  }

  // 200, or 204 when there was no such version. Refused (409) before the
  // end-of-life date when blockDeletionBeforeEndOfLife is set.
  StatusOr<Response> Delete(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckVersionId(request.id, false), request.id.ToString()));
    return DeleteOne(
        services, request, kVersionDelete,
        [&](meta::Transaction& txn) {
          return gallery::GetDefinition(txn, request.id.Parent()).status();
        },
        [&](meta::Transaction& txn) -> Status {
          RETURN_IF_ERROR(batch::CheckImageNotInUse(txn, request.id, ForceDelete(request)));
          return gallery::DeleteVersion(txn, request.id, services.env->NowMicros());
        });
  }
};

}  // namespace

std::unique_ptr<Provider> NewImageVersionProvider() {
  return std::make_unique<ImageVersionProvider>();
}

}  // namespace imagesmith::api
