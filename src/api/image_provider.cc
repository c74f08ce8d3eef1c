// Managed images (Microsoft.Compute/images). PUT imports a disk file (raw,
// VHD or qcow2) named by properties.storageProfile.osDisk.blobUri into the
// store, as `imagesmith image create --source FILE` does; the rules are
// gallery/publish.h's (ImportManagedImage).
#include "api/arm_error.h"
#include "api/body.h"
#include "api/etag.h"
#include "api/provider_util.h"
#include "api/resource_providers.h"
#include "base/strings.h"
#include "batch/images.h"
#include "gallery/publish.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

constexpr const char* kImageRead = "Microsoft.Compute/images/read";
constexpr const char* kImageWrite = "Microsoft.Compute/images/write";
constexpr const char* kImageDelete = "Microsoft.Compute/images/delete";

Status CheckImageId(const ResourceId& id) {
  if (id.kind() != ResourceId::Kind::kResource || !id.IsType(gallery::kManagedImageType)) {
    return InvalidArgumentError("expected a " + std::string(gallery::kManagedImageType) +
                                " ID, got " + id.ToString());
  }
  RETURN_IF_ERROR(ValidateResourceGroupName(id.resource_group()));
  return gallery::ValidateManagedImageName(id.name());
}

struct ImageBody {
  std::optional<Region> location;
  std::optional<Json> tags;
  std::optional<std::string> os_type, os_state, hyper_v_generation;
  std::optional<std::string> path;  // from blobUri
};

StatusOr<ImageBody> ParseImageBody(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
  ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
  RETURN_IF_ERROR(props.AllowOnly({"storageProfile", "hyperVGeneration", "sourceVirtualMachine",
                                   "provisioningState", "imagesmith"}));
  if (props.Has("sourceVirtualMachine")) {
    return BodyError(props.PathOf("sourceVirtualMachine"),
                     "capturing a virtual machine is not supported; give the disk file as "
                     "properties.storageProfile.osDisk.blobUri");
  }
  ASSIGN_OR_RETURN(BodyObject storage, props.Object("storageProfile"));
  RETURN_IF_ERROR(storage.AllowOnly({"osDisk", "dataDisks", "zoneResilient"}));
  if (const Json* data = storage.Find("dataDisks");
      data != nullptr && (!data->is_array() || !data->array_items().empty())) {
    return BodyError(storage.PathOf("dataDisks"), "data disks are not supported; give []");
  }
  ASSIGN_OR_RETURN(BodyObject os_disk, storage.Object("osDisk"));
  // caching, storageAccountType and diskSizeGb are what a GET shows; the
  // size comes from the disk file.
  RETURN_IF_ERROR(os_disk.AllowOnly(
      {"osType", "osState", "blobUri", "caching", "storageAccountType", "diskSizeGb"}));
  ImageBody out;
  ASSIGN_OR_RETURN(out.location, top.Location());
  ASSIGN_OR_RETURN(out.tags, top.Tags());
  ASSIGN_OR_RETURN(std::optional<std::string> os_type, os_disk.String("osType"));
  if (os_type) {
    auto t = gallery::ParseOsType(os_disk.PathOf("osType"), *os_type);
    if (!t.ok()) return BodyError(os_disk.PathOf("osType"), t.status().message());
    out.os_type = *t;
  }
  ASSIGN_OR_RETURN(std::optional<std::string> os_state, os_disk.String("osState"));
  if (os_state) {
    auto t = gallery::ParseOsState(os_disk.PathOf("osState"), *os_state);
    if (!t.ok()) return BodyError(os_disk.PathOf("osState"), t.status().message());
    out.os_state = *t;
  }
  ASSIGN_OR_RETURN(std::optional<std::string> gen, props.String("hyperVGeneration"));
  if (gen) {
    auto t = gallery::ParseHyperVGeneration(props.PathOf("hyperVGeneration"), *gen);
    if (!t.ok()) return BodyError(props.PathOf("hyperVGeneration"), t.status().message());
    out.hyper_v_generation = *t;
  }
  ASSIGN_OR_RETURN(std::optional<std::string> uri, os_disk.String("blobUri"));
  if (uri) {
    std::string path = *uri;
    if (StartsWith(path, "file://")) path = path.substr(7);
    if (path.empty()) return BodyError(os_disk.PathOf("blobUri"), "is empty");
    out.path = path;
  }
  return out;
}

Json ToJson(const meta::Resource& r) { return r.ToJson(); }

StatusOr<std::vector<meta::Resource>> ListIn(meta::Transaction& txn, const ResourceId& scope) {
  if (scope.kind() == ResourceId::Kind::kSubscription) {
    return txn.ListByType(scope, gallery::kManagedImageType);
  }
  if (scope.kind() == ResourceId::Kind::kResourceGroup) {
    RETURN_IF_ERROR(meta::GetGroup(txn, scope).status());
    return txn.ListChildren(scope, gallery::kManagedImageType);
  }
  return InvalidArgumentError(
      "managed images are listed at a subscription or a resource group, "
      "not under " +
      scope.ToString());
}

class ManagedImageProvider final : public Provider {
 public:
  std::string_view Type() const override { return gallery::kManagedImageType; }
  std::vector<std::string> ApiVersions() const override {
    return {"2022-11-01", "2023-03-01", "2023-09-01", "2024-03-01"};
  }

  // Imports the disk file and creates the image (201). An image that exists
  // is 409: delete it first (its tags change with PATCH).
  StatusOr<Response> Put(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    const std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckImageId(id), target));
    ASSIGN_OR_RETURN(ImageBody body, ParseImageBody(request.body));
    if (!body.os_type) return BodyError("properties.storageProfile.osDisk.osType", "is required");
    if (!body.path) {
      return BodyError("properties.storageProfile.osDisk.blobUri",
                       "is required: the disk file (raw, VHD or qcow2) to import, as a path or "
                       "a file:// URI");
    }
    // The import reads the file with imagesmith's rights on this host.
    if (!request.caller.principal.is_owner) {
      return ArmStatus(StatusCode::kPermissionDenied, "AuthorizationFailed",
                       "properties.storageProfile.osDisk.blobUri names a file on the imagesmith "
                       "host; only the data directory's owner may import host files. Publish "
                       "images by running an image template instead",
                       "properties.storageProfile.osDisk.blobUri");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store,
                     store::Store::Open(*services.env, services.data_dir + "/store"));
    // The region is a placeholder: ImportManagedImage puts the disk into the
    // image's location.
    gallery::ManagedImageRequest req(id, gallery::SourceImage(*Region::Parse("eastus"), {}));
    req.location = body.location;
    req.source.os_type = *body.os_type;
    if (body.os_state) req.source.os_state = *body.os_state;
    req.source.hyper_v_generation = body.hyper_v_generation.value_or("V1");
    req.tags = body.tags.value_or(Json::MakeObject());
    req.check = [&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kImageWrite, id));
      ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, id));
      return CheckPreconditions(request, current ? &*current : nullptr);
    };
    auto r = gallery::ImportManagedImage(*services.env, *services.meta, *store, *body.path,
                                         services.data_dir + "/tmp", req);
    if (!r.ok()) return WithTarget(r.status(), target);
    return ResourceResponse(201, r->ToJson(), *r);
  }

  // Tags only.
  StatusOr<Response> Patch(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    const std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckImageId(id), target));
    ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&request.body, ""));
    RETURN_IF_ERROR(top.AllowOnly({"tags"}));
    ASSIGN_OR_RETURN(std::optional<Json> tags, top.Tags());
    Response out;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kImageWrite, id));
      ASSIGN_OR_RETURN(meta::Resource r, gallery::GetManagedImage(txn, id));
      RETURN_IF_ERROR(CheckPreconditions(request, &r));
      if (tags) r.tags = *tags;
      RETURN_IF_ERROR(txn.Replace(r, r.generation));
      out = ResourceResponse(200, r.ToJson(), r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return out;
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckImageId(request.id), request.id.ToString()));
    return GetOne(
        services, request, kImageRead,
        [&](meta::Transaction& txn) { return gallery::GetManagedImage(txn, request.id); }, ToJson);
  }

  // In a group, or (at a subscription) everywhere; by ID.
  StatusOr<Response> List(Services& services, const Request& request) override {
    return ListAll(
        services, request, kImageRead,
        [&](meta::Transaction& txn) { return ListIn(txn, request.id); }, ToJson);
  }

  // 200, or 204 when there was no such image. Versions published from it
  // keep their own copy.
  StatusOr<Response> Delete(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckImageId(request.id), request.id.ToString()));
    return DeleteOne(
        services, request, kImageDelete,
        [&](meta::Transaction& txn) { return meta::GetGroup(txn, request.id.Parent()).status(); },
        [&](meta::Transaction& txn) -> Status {
          RETURN_IF_ERROR(batch::CheckImageNotInUse(txn, request.id, ForceDelete(request)));
          return gallery::DeleteManagedImage(txn, request.id);
        });
  }
};

}  // namespace

std::unique_ptr<Provider> NewManagedImageProvider() {
  return std::make_unique<ManagedImageProvider>();
}

}  // namespace imagesmith::api
