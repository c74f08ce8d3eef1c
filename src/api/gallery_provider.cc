// Compute Galleries and their image definitions. The rules (names, one
// publisher/offer/sku per gallery, immutable identity, nested deletion) are
// gallery/resources.h's; this file reads ARM bodies, authorizes and answers.
#include "api/arm_error.h"
#include "api/body.h"
#include "api/etag.h"
#include "api/provider_util.h"
#include "api/resource_providers.h"
#include "batch/images.h"
#include "gallery/resources.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

constexpr const char* kGalleryRead = "Microsoft.Compute/galleries/read";
constexpr const char* kGalleryWrite = "Microsoft.Compute/galleries/write";
constexpr const char* kGalleryDelete = "Microsoft.Compute/galleries/delete";
constexpr const char* kDefinitionRead = "Microsoft.Compute/galleries/images/read";
constexpr const char* kDefinitionWrite = "Microsoft.Compute/galleries/images/write";
constexpr const char* kDefinitionDelete = "Microsoft.Compute/galleries/images/delete";

std::vector<std::string> ComputeGalleryApiVersions() {
  return {"2022-03-03", "2022-08-03", "2023-07-03", "2024-03-03"};
}

Status CheckType(const ResourceId& id, const char* type) {
  if (id.kind() == ResourceId::Kind::kResource && id.IsType(type)) return Status::Ok();
  return InvalidArgumentError("expected a " + std::string(type) + " ID, got " + id.ToString());
}

// ---- galleries ----------------------------------------------------------------

struct GalleryBody {
  std::optional<Region> location;
  std::optional<Json> tags;
  std::optional<std::string> description;
};

StatusOr<GalleryBody> ParseGalleryBody(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
  ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
  // identifier (uniqueName) and provisioningState are read-only.
  RETURN_IF_ERROR(props.AllowOnly({"description", "identifier", "provisioningState"}));
  GalleryBody out;
  ASSIGN_OR_RETURN(out.location, top.Location());
  ASSIGN_OR_RETURN(out.tags, top.Tags());
  ASSIGN_OR_RETURN(out.description, props.String("description"));
  return out;
}

Status CheckGalleryId(const ResourceId& id) {
  RETURN_IF_ERROR(CheckType(id, gallery::kGalleryType));
  RETURN_IF_ERROR(ValidateResourceGroupName(id.resource_group()));
  return gallery::ValidateGalleryName(id.name());
}

Json ToJson(const meta::Resource& r) { return r.ToJson(); }

// Lists `type` under `scope`: a subscription (everywhere), a group (which
// must exist) or a parent resource (`get_parent` checks it exists).
StatusOr<std::vector<meta::Resource>> ListIn(meta::Transaction& txn, const ResourceId& scope,
                                             const std::string& type) {
  if (scope.kind() == ResourceId::Kind::kSubscription) return txn.ListByType(scope, type);
  if (scope.kind() == ResourceId::Kind::kResourceGroup) {
    RETURN_IF_ERROR(meta::GetGroup(txn, scope).status());
    return txn.ListChildren(scope, type);
  }
  return InvalidArgumentError("resources of type " + type +
                              " are listed at a subscription or a "
                              "resource group, not under " +
                              scope.ToString());
}

class GalleryProvider final : public Provider {
 public:
  std::string_view Type() const override { return gallery::kGalleryType; }
  std::vector<std::string> ApiVersions() const override { return ComputeGalleryApiVersions(); }

  // Creates the gallery (201) or updates its description and tags (200);
  // members the body leaves out keep their values.
  StatusOr<Response> Put(Services& services, const Request& request) override {
    return Write(services, request, /*patch=*/false);
  }
  StatusOr<Response> Patch(Services& services, const Request& request) override {
    return Write(services, request, /*patch=*/true);
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckGalleryId(request.id), request.id.ToString()));
    return GetOne(
        services, request, kGalleryRead,
        [&](meta::Transaction& txn) { return gallery::GetGallery(txn, request.id); }, ToJson);
  }

  StatusOr<Response> List(Services& services, const Request& request) override {
    return ListAll(
        services, request, kGalleryRead,
        [&](meta::Transaction& txn) { return ListIn(txn, request.id, gallery::kGalleryType); },
        ToJson);
  }

  // 200, or 204 when there was no such gallery; 409 while it holds
  // definitions.
  StatusOr<Response> Delete(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckGalleryId(request.id), request.id.ToString()));
    return DeleteOne(
        services, request, kGalleryDelete,
        [&](meta::Transaction& txn) { return meta::GetGroup(txn, request.id.Parent()).status(); },
        [&](meta::Transaction& txn) { return gallery::DeleteGallery(txn, request.id); });
  }

 private:
  StatusOr<Response> Write(Services& services, const Request& request, bool patch) {
    const ResourceId& id = request.id;
    std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckGalleryId(id), target));
    ASSIGN_OR_RETURN(GalleryBody body, ParseGalleryBody(request.body));
    Response out;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kGalleryWrite, id));
      RETURN_IF_ERROR(meta::GetGroup(txn, id.Parent()).status());
      ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, id));
      if (patch && !current.has_value()) return gallery::GetGallery(txn, id).status();
      RETURN_IF_ERROR(CheckPreconditions(request, current ? &*current : nullptr));
      gallery::GallerySpec spec{id.Parent(), current ? current->id.name() : id.name(),
                                body.location, body.description, body.tags};
      ASSIGN_OR_RETURN(meta::Resource r, gallery::CreateOrUpdateGallery(txn, spec));
      out = ResourceResponse(current ? 200 : 201, r.ToJson(), r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return out;
  }
};

// ---- image definitions --------------------------------------------------------------

Status CheckDefinitionId(const ResourceId& id) {
  RETURN_IF_ERROR(CheckType(id, gallery::kImageDefinitionType));
  RETURN_IF_ERROR(ValidateResourceGroupName(id.resource_group()));
  RETURN_IF_ERROR(gallery::ValidateGalleryName(id.Parent().name()));
  return gallery::ValidateImageDefinitionName(id.name());
}

// A value parsed by a gallery:: function whose message names `path`: keep
// the message, attach the path as the target.
template <typename T>
StatusOr<T> AtPath(StatusOr<T> v, const std::string& path) {
  if (!v.ok()) {
    return ArmStatus(v.status().code(), "InvalidRequestContent", v.status().message(), path);
  }
  return v;
}

struct DefinitionBody {
  std::optional<Region> location;
  std::optional<Json> tags;
  std::optional<std::string> description;
  std::optional<int64_t> end_of_life_us;
  // Identity; nullopt when the body leaves it out.
  std::optional<std::string> publisher, offer, sku, os_type, os_state, hyper_v_generation;
};

StatusOr<DefinitionBody> ParseDefinitionBody(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
  ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
  RETURN_IF_ERROR(props.AllowOnly({"identifier", "osType", "osState", "hyperVGeneration",
                                   "description", "endOfLifeDate", "provisioningState"}));
  ASSIGN_OR_RETURN(BodyObject ident, props.Object("identifier"));
  RETURN_IF_ERROR(ident.AllowOnly({"publisher", "offer", "sku"}));
  DefinitionBody out;
  ASSIGN_OR_RETURN(out.location, top.Location());
  ASSIGN_OR_RETURN(out.tags, top.Tags());
  ASSIGN_OR_RETURN(out.description, props.String("description"));
  for (auto [field, slot] : {std::pair{"publisher", &out.publisher}, std::pair{"offer", &out.offer},
                             std::pair{"sku", &out.sku}}) {
    ASSIGN_OR_RETURN(*slot, ident.String(field));
    if (slot->has_value()) {
      Status valid = gallery::ValidateIdentifierPart(field, **slot);
      if (!valid.ok()) return BodyError(ident.PathOf(field), valid.message());
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> os_type, props.String("osType"));
  if (os_type) {
    ASSIGN_OR_RETURN(out.os_type, AtPath(gallery::ParseOsType(props.PathOf("osType"), *os_type),
                                         props.PathOf("osType")));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> os_state, props.String("osState"));
  if (os_state) {
    ASSIGN_OR_RETURN(out.os_state, AtPath(gallery::ParseOsState(props.PathOf("osState"), *os_state),
                                          props.PathOf("osState")));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> gen, props.String("hyperVGeneration"));
  if (gen) {
    ASSIGN_OR_RETURN(out.hyper_v_generation,
                     AtPath(gallery::ParseHyperVGeneration(props.PathOf("hyperVGeneration"), *gen),
                            props.PathOf("hyperVGeneration")));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> eol, props.String("endOfLifeDate"));
  if (eol) {
    ASSIGN_OR_RETURN(out.end_of_life_us,
                     AtPath(gallery::ParseDateTime(props.PathOf("endOfLifeDate"), *eol),
                            props.PathOf("endOfLifeDate")));
  }
  return out;
}

std::string Str(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

class ImageDefinitionProvider final : public Provider {
 public:
  std::string_view Type() const override { return gallery::kImageDefinitionType; }
  std::vector<std::string> ApiVersions() const override { return ComputeGalleryApiVersions(); }

  // Creates the definition (201) or updates description, end of life and
  // tags (200). The identity (identifier, osType, osState, hyperVGeneration)
  // of an existing definition cannot change: 409 naming the property.
  StatusOr<Response> Put(Services& services, const Request& request) override {
    return Write(services, request, /*patch=*/false);
  }
  // As PUT, on an existing definition; identity members may be left out.
  StatusOr<Response> Patch(Services& services, const Request& request) override {
    return Write(services, request, /*patch=*/true);
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckDefinitionId(request.id), request.id.ToString()));
    return GetOne(
        services, request, kDefinitionRead,
        [&](meta::Transaction& txn) { return gallery::GetDefinition(txn, request.id); }, ToJson);
  }

  // The definitions of the gallery `request.id`, by name.
  StatusOr<Response> List(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckGalleryId(request.id), request.id.ToString()));
    return ListAll(
        services, request, kDefinitionRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          RETURN_IF_ERROR(gallery::GetGallery(txn, request.id).status());
          return txn.ListChildren(request.id, gallery::kImageDefinitionType);
        },
        ToJson);
  }

  StatusOr<Response> Delete(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckDefinitionId(request.id), request.id.ToString()));
    return DeleteOne(
        services, request, kDefinitionDelete,
        [&](meta::Transaction& txn) {
          return gallery::GetGallery(txn, request.id.Parent()).status();
        },
        [&](meta::Transaction& txn) -> Status {
          RETURN_IF_ERROR(batch::CheckImageNotInUse(txn, request.id, ForceDelete(request)));
          return gallery::DeleteDefinition(txn, request.id);
        });
  }

 private:
  StatusOr<Response> Write(Services& services, const Request& request, bool patch) {
    const ResourceId& id = request.id;
    std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckDefinitionId(id), target));
    ASSIGN_OR_RETURN(DefinitionBody body, ParseDefinitionBody(request.body));
    Response out;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kDefinitionWrite, id));
      RETURN_IF_ERROR(gallery::GetGallery(txn, id.Parent()).status());
      ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, id));
      if (patch && !current.has_value()) return gallery::GetDefinition(txn, id).status();
      RETURN_IF_ERROR(CheckPreconditions(request, current ? &*current : nullptr));
      gallery::DefinitionSpec spec(id.Parent(), current ? current->id.name() : id.name());
      // A PATCH keeps the identity it leaves out; a PUT must give it.
      const Json none = Json::MakeObject();
      const Json& old = current ? current->properties : none;
      const Json* old_ident = old.Find("identifier");
      const Json& oi = old_ident != nullptr ? *old_ident : none;
      auto pick = [&](const std::optional<std::string>& given, const std::string& kept,
                      const char* path, const char* fallback) -> StatusOr<std::string> {
        if (given.has_value()) return *given;
        if (patch) return kept;
        if (fallback != nullptr) return std::string(fallback);
        return BodyError(path, "is required");
      };
      ASSIGN_OR_RETURN(spec.publisher, pick(body.publisher, Str(oi, "publisher"),
                                            "properties.identifier.publisher", nullptr));
      ASSIGN_OR_RETURN(spec.offer,
                       pick(body.offer, Str(oi, "offer"), "properties.identifier.offer", nullptr));
      ASSIGN_OR_RETURN(spec.sku,
                       pick(body.sku, Str(oi, "sku"), "properties.identifier.sku", nullptr));
      ASSIGN_OR_RETURN(spec.os_type,
                       pick(body.os_type, Str(old, "osType"), "properties.osType", nullptr));
      ASSIGN_OR_RETURN(spec.os_state, pick(body.os_state, Str(old, "osState"), "properties.osState",
                                           "Generalized"));
      ASSIGN_OR_RETURN(spec.hyper_v_generation,
                       pick(body.hyper_v_generation, Str(old, "hyperVGeneration"),
                            "properties.hyperVGeneration", "V1"));
      spec.location = body.location;
      spec.description = body.description;
      spec.end_of_life_us = body.end_of_life_us;
      spec.tags = body.tags;
      ASSIGN_OR_RETURN(meta::Resource r, gallery::CreateOrUpdateDefinition(txn, spec));
      out = ResourceResponse(current ? 200 : 201, r.ToJson(), r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return out;
  }
};

}  // namespace

std::unique_ptr<Provider> NewGalleryProvider() { return std::make_unique<GalleryProvider>(); }
std::unique_ptr<Provider> NewImageDefinitionProvider() {
  return std::make_unique<ImageDefinitionProvider>();
}

}  // namespace imagesmith::api
