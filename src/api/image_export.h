// Finding the stored image behind a managed image or a gallery image version
// (including a definition's `latest`) so a front end can export it as a disk
// file (`image export`, `sig image-version export`). Reading it needs read
// on the resource, as a GET does.
#pragma once

#include <optional>
#include <string>

#include "api/services.h"
#include "base/resource_id.h"
#include "base/statusor.h"
#include "gallery/publish.h"

namespace imagesmith::api {

// The image in the store behind `id`, in `region` when given, else in the
// resource's home region (for `latest`: its definition's). NotFound says how
// to create what is missing; PermissionDenied (AuthorizationFailed) when the
// caller may not read it; InvalidArgument naming `region` when it is not a
// region name.
StatusOr<gallery::SourceImage> ResolveExportImage(Services& services, const Caller& caller,
                                                  const ResourceId& id,
                                                  const std::optional<std::string>& region);

}  // namespace imagesmith::api
