// ArmError: an error in Azure Resource Manager's shape,
//   {"error": {"code": "...", "message": "...", "target": "...", "details": [...]}}
// with the HTTP status ARM gives it. This is the one place a Status becomes an
// ARM error code; the REST server writes it as the body, the CLI prints the
// message. Copyable value type.
#pragma once

#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace imagesmith::api {

struct ArmError {
  int http_status = 500;
  std::string code;     // "ResourceNotFound", "InvalidRequestContent", ...
  std::string message;  // what is wrong and what to do next
  std::string target;   // the field (JSON path) or resource ID, "" when none
  std::vector<ArmError> details;

  // {"error": {...}}; "target" and "details" only when present.
  Json ToJson() const;
};

// The ARM code and HTTP status for a Status from a provider:
//   InvalidArgument, OutOfRange    400 InvalidRequestContent
//   Unauthenticated                401 AuthenticationFailed
//   PermissionDenied               403 AuthorizationFailed
//   NotFound                       404 ResourceNotFound
//   AlreadyExists, FailedPrecondition 409 Conflict
//   Aborted                        412 PreconditionFailed (an ETag or generation check failed)
//   ResourceExhausted              413 RequestEntityTooLarge
//   Cancelled                      409 OperationCanceled
//   Unimplemented                  405 MethodNotAllowed
//   Unavailable                    503 ServiceUnavailable
//   DeadlineExceeded               504 GatewayTimeout
//   anything else                  500 InternalServerError
// A message that starts with "<ArmCode>: " or "<ArmCode>|<target>: ", where
// ArmCode is one of the codes listed in arm_error.cc (written by ArmStatus
// and WithTarget, such as "InvalidApiVersionParameter: ..."), keeps that code
// (and target) and loses the prefix. `target`, when not empty, is the
// error's target; otherwise the one in the prefix is.
ArmError ToArmError(const Status& status, const std::string& target = "");

// A Status carrying an explicit ARM code: the message becomes
// "<arm_code>: <message>" (or "<arm_code>|<target>: <message>" when `target`,
// a JSON path or resource ID, is given), which ToArmError recognises.
Status ArmStatus(StatusCode code, const std::string& arm_code, const std::string& message,
                 const std::string& target = "");

// `status` with `target` (a JSON path or resource ID) attached for
// ToArmError, keeping its code and message; OK and statuses that already
// carry an ARM code prefix are returned unchanged. Front ends that print
// only the message (the CLI) print ToArmError(status).message.
Status WithTarget(const Status& status, const std::string& target);

}  // namespace imagesmith::api
