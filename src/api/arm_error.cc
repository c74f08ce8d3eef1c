#include "api/arm_error.h"

#include <string_view>

namespace imagesmith::api {
namespace {

struct Mapping {
  int http_status;
  const char* code;
};

Mapping ForCode(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return {400, "InvalidRequestContent"};
    case StatusCode::kUnauthenticated:
      return {401, "AuthenticationFailed"};
    case StatusCode::kPermissionDenied:
      return {403, "AuthorizationFailed"};
    case StatusCode::kNotFound:
      return {404, "ResourceNotFound"};
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return {409, "Conflict"};
    case StatusCode::kCancelled:
      return {409, "OperationCanceled"};
    case StatusCode::kAborted:
      return {412, "PreconditionFailed"};
    case StatusCode::kResourceExhausted:
      return {413, "RequestEntityTooLarge"};
    case StatusCode::kUnimplemented:
      return {405, "MethodNotAllowed"};
    case StatusCode::kUnavailable:
      return {503, "ServiceUnavailable"};
    case StatusCode::kDeadlineExceeded:
      return {504, "GatewayTimeout"};
    default:
      return {500, "InternalServerError"};
  }
}

// The ARM codes a provider may choose explicitly (ArmStatus). A list, so a
// message that happens to start with "Word: " is not taken for a code.
constexpr std::string_view kExplicitCodes[] = {
    "AuthenticationFailed",
    "AuthorizationFailed",
    "BadRequest",
    "Conflict",
    "InvalidApiVersionParameter",
    "InvalidParameter",
    "InvalidRequestContent",
    "InvalidResourceType",
    "InvalidResourceName",
    "MissingApiVersionParameter",
    "NoRegisteredProviderFound",
    "OperationNotAllowed",
    "PreconditionFailed",
    "RequestEntityTooLarge",
    "ResourceGroupNotFound",
    "ResourceNotFound",
    "UnsupportedMediaType",
    "MethodNotAllowed",
    "InvalidAuthenticationToken",
    "ExpiredAuthenticationToken",
    "PrincipalNotFound",
    "RoleAssignmentExists",
    "RoleAssignmentNotFound",
    "InvalidRoleAssignmentId",
    "RoleDefinitionDoesNotExist",
    "ImageTemplateRunInProgress",
    "AllocationFailed",
    "OperationCanceled",
    "ServiceUnavailable",
};

// "SomeArmCode: rest" -> "SomeArmCode" when the prefix is a known code.
std::string ArmCodePrefix(const std::string& message) {
  size_t colon = message.find(": ");
  if (colon == std::string::npos) return "";
  std::string_view prefix(message.data(), colon);
  for (std::string_view code : kExplicitCodes) {
    if (prefix == code) return std::string(prefix);
  }
  return "";
}

}  // namespace

Json ArmError::ToJson() const {
  Json e = Json::MakeObject();
  e.Set("code", Json::String(code));
  e.Set("message", Json::String(message));
  if (!target.empty()) e.Set("target", Json::String(target));
  if (!details.empty()) {
    Json d = Json::MakeArray();
    for (const ArmError& detail : details) d.Append(*detail.ToJson().Find("error"));
    e.Set("details", std::move(d));
  }
  Json out = Json::MakeObject();
  out.Set("error", std::move(e));
  return out;
}

ArmError ToArmError(const Status& status, const std::string& target) {
  Mapping m = ForCode(status.code());
  ArmError e;
  e.http_status = m.http_status;
  e.code = m.code;
  e.message = status.message();
  e.target = target;
  std::string explicit_code = ArmCodePrefix(status.message());
  if (!explicit_code.empty()) {
    e.code = explicit_code;
    e.message = status.message().substr(explicit_code.size() + 2);
  }
  return e;
}

Status ArmStatus(StatusCode code, const std::string& arm_code, const std::string& message) {
  return Status(code, arm_code + ": " + message);
}

}  // namespace imagesmith::api
