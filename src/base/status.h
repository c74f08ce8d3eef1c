// Status: the result of an operation that can fail on input, disk, network,
// database or a child process. Errors are values: a code plus a message that
// carries the context a user needs (file, JSON path, resource ID, errno text).
//
// Status is a small copyable value type; it is safe to pass between threads.
#pragma once

#include <string>
#include <string_view>

namespace imagesmith {

// The codes follow absl::StatusCode / gRPC so they map cleanly onto HTTP
// statuses and CLI exit codes (see ExitCodeFor / HttpStatusFor).
enum class StatusCode {
  kOk = 0,
  kCancelled,
  kUnknown,
  kInvalidArgument,
  kDeadlineExceeded,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kResourceExhausted,
  kFailedPrecondition,
  kAborted,
  kOutOfRange,
  kUnimplemented,
  kInternal,
  kUnavailable,
  kDataLoss,
  kUnauthenticated,
};

// Returns the canonical CamelCase name ("NotFound", "InvalidArgument", ...).
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  // A status with `code` and `message`. A kOk code ignores the message.
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NotFound: <message>", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>". OK stays OK.
  Status WithContext(std::string_view prefix) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status FailedPreconditionError(std::string message);
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status OutOfRangeError(std::string message);
Status UnavailableError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
Status DeadlineExceededError(std::string message);
Status CancelledError(std::string message);
Status DataLossError(std::string message);
Status AbortedError(std::string message);

// A status built from errno: "<what>: <strerror(err)>". ENOENT maps to
// NotFound, EACCES/EPERM to PermissionDenied, ENOSPC to ResourceExhausted,
// EEXIST to AlreadyExists; everything else to Internal.
Status ErrnoError(std::string_view what, int err);

// The one place codes map onto the outside world.
// CLI exit codes: 0 OK; 1 the input was understood and is wrong or the
// operation failed; 2 usage errors are reported by the CLI itself; 3 NotFound;
// 4 AlreadyExists/FailedPrecondition (conflict); 5 PermissionDenied or
// Unauthenticated; 6 DeadlineExceeded/Cancelled; 70 Internal/DataLoss/Unknown.
int ExitCodeFor(StatusCode code);
// HTTP status codes as Azure Resource Manager uses them.
int HttpStatusFor(StatusCode code);

}  // namespace imagesmith

#define IMAGESMITH_CONCAT_INNER(a, b) a##b
#define IMAGESMITH_CONCAT(a, b) IMAGESMITH_CONCAT_INNER(a, b)

// Returns from the current function if `expr` yields a non-OK Status.
#define RETURN_IF_ERROR(expr)                                \
  do {                                                       \
    ::imagesmith::Status imagesmith_status_ = (expr);        \
    if (!imagesmith_status_.ok()) return imagesmith_status_; \
  } while (0)
