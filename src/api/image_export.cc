#include "api/image_export.h"

#include "auth/authorize.h"
#include "gallery/resources.h"

namespace imagesmith::api {

StatusOr<gallery::SourceImage> ResolveExportImage(Services& services, const Caller& caller,
                                                  const ResourceId& id,
                                                  const std::optional<std::string>& region) {
  std::optional<gallery::SourceImage> image;
  Status read = services.meta->Read([&](meta::Transaction& txn) -> Status {
    const bool is_image = id.IsType("Microsoft.Compute/images");
    const bool latest = !is_image && id.name() == "latest";
    RETURN_IF_ERROR(auth::Authorize(txn, caller.principal,
                                    is_image ? "Microsoft.Compute/images/read"
                                             : "Microsoft.Compute/galleries/images/versions/read",
                                    id));
    // The home region: the resource's (for `latest`, its definition's).
    // (The gallery's getters say how to create what is missing.)
    ASSIGN_OR_RETURN(meta::Resource r, is_image ? gallery::GetManagedImage(txn, id)
                                       : latest ? gallery::GetDefinition(txn, id.Parent())
                                                : gallery::GetVersion(txn, id));
    ASSIGN_OR_RETURN(Region where, Region::Parse(region.value_or(r.location)));
    ASSIGN_OR_RETURN(gallery::SourceImage got, gallery::ResolveImageSource(txn, id, where));
    image = std::move(got);
    return Status::Ok();
  });
  RETURN_IF_ERROR(read);
  return std::move(*image);
}

}  // namespace imagesmith::api
