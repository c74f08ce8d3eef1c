// ETags and ARM's conditional requests. A resource's ETag is its generation
// (meta::Resource::generation), quoted: "\"7\"". If-Match / If-None-Match
// compare against it; "*" matches any existing resource.
#pragma once

#include <string>

#include "api/provider.h"
#include "meta/meta_store.h"

namespace imagesmith::api {

// "\"<generation>\"".
std::string EtagOf(const meta::Resource& r);

// Checks the request's If-Match / If-None-Match against `current` (nullptr
// when the resource does not exist). OK when the request may go on;
// otherwise Aborted with the ARM code PreconditionFailed, saying which header
// did not match and the resource's current ETag.
Status CheckPreconditions(const Request& request, const meta::Resource* current);

}  // namespace imagesmith::api
