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
    "InvalidRange",
    "InvalidRequestContent",
    "InvalidResourceType",
    "InvalidResourceName",
    "InvalidTemplate",
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
    // Batch (doc/batch.md).
    "PoolExists",
    "JobExists",
    "TaskExists",
    "PoolNotResizing",
    "PoolNotSteady",
    "OperationCanceled",
    "ServiceUnavailable",
    "GatewayTimeout",
    "InternalServerError",
    "InvalidResourceGroupLocation",
    "SubscriptionNotFound",
    // Service Fabric node types and their rollouts (doc/servicefabric.md).
    "CannotDeleteResource",
    "InvalidAction",
    "NoRollingUpgradeInProgress",
    "AlreadyUpToDate",
    "RollingUpgradeFaulted",
    "TargetImageDeleted",
    "MaxUnhealthyInstancePercentExceeded",
    "MaxUnhealthyUpgradedInstancePercentExceeded",
    "NodesNotReady",
    "NodeCreateFailed",
    "NodeDeleteFailed",
    "NodeDriverUnavailable",
    "ImageNotAvailable",
    "RestartFailed",
    "ReimageFailed",
    "OperationFailed",
    // CycleCloud clusters (doc/cyclecloud.md).
    "NodeLimitExceeded",
    "NodeNotFound",
    "MissingParameters",
    "NotSupported",
};

struct Prefix {
  std::string code;    // "" when the message has no ARM code prefix
  std::string target;  // from "Code|target: "
  size_t length = 0;   // of the prefix including ": "
};

// "SomeArmCode: rest" or "SomeArmCode|target: rest" when SomeArmCode is a
// known code.
Prefix ArmCodePrefix(const std::string& message) {
  size_t colon = message.find(": ");
  if (colon == std::string::npos) return {};
  std::string_view prefix(message.data(), colon);
  std::string_view target;
  if (size_t bar = prefix.find('|'); bar != std::string_view::npos) {
    target = prefix.substr(bar + 1);
    prefix = prefix.substr(0, bar);
  }
  for (std::string_view code : kExplicitCodes) {
    if (prefix == code) return {std::string(prefix), std::string(target), colon + 2};
  }
  return {};
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
  Prefix prefix = ArmCodePrefix(status.message());
  if (!prefix.code.empty()) {
    e.code = prefix.code;
    e.message = status.message().substr(prefix.length);
    if (e.target.empty()) e.target = prefix.target;
  }
  return e;
}

Status ArmStatus(StatusCode code, const std::string& arm_code, const std::string& message,
                 const std::string& target) {
  if (target.empty()) return Status(code, arm_code + ": " + message);
  return Status(code, arm_code + "|" + target + ": " + message);
}

Status WithTarget(const Status& status, const std::string& target) {
  if (status.ok() || target.empty() || !ArmCodePrefix(status.message()).code.empty()) {
    return status;
  }
  return ArmStatus(status.code(), ForCode(status.code()).code, status.message(), target);
}

}  // namespace imagesmith::api
