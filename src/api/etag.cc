#include "api/etag.h"

#include "api/arm_error.h"

namespace imagesmith::api {

std::string EtagOf(const meta::Resource& r) { return "\"" + std::to_string(r.generation) + "\""; }

Status CheckPreconditions(const Request& request, const meta::Resource* current) {
  const std::string id = request.id.ToString();
  if (request.if_match) {
    const std::string& want = *request.if_match;
    if (current == nullptr) {
      return ArmStatus(StatusCode::kAborted, "PreconditionFailed",
                       "If-Match " + want + " was given but " + id + " does not exist");
    }
    if (want != "*" && want != EtagOf(*current)) {
      return ArmStatus(StatusCode::kAborted, "PreconditionFailed",
                       "If-Match " + want + " does not match the current ETag " + EtagOf(*current) +
                           " of " + id + "; read the resource again and retry with its ETag");
    }
  }
  if (request.if_none_match && current != nullptr) {
    const std::string& want = *request.if_none_match;
    if (want == "*" || want == EtagOf(*current)) {
      return ArmStatus(StatusCode::kAborted, "PreconditionFailed",
                       "If-None-Match " + want + " was given and " + id +
                           " already exists with ETag " + EtagOf(*current));
    }
  }
  return Status::Ok();
}

}  // namespace imagesmith::api
