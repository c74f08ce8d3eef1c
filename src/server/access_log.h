// The access log: one JSON object per line for every request the server
// answers, written with a single write(2) so lines from different threads
// never interleave. Fields (doc/server.md):
//   {"time": "2026-11-29T17:00:00.123Z", "requestId": "...", "remote": "127.0.0.1:5123",
//    "method": "GET", "route": "/subscriptions/{subscriptionId}/...", "path": "/subscriptions/...",
//    "status": 200, "durationMs": 0.42, "bytesIn": 0, "bytesOut": 512,
//    "principal": "<object id>", "error": "ResourceNotFound"}
// Never the Authorization header, a query string, a request body or a secret.
//
// Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace imagesmith::server {

struct AccessLogEntry {
  std::string_view request_id;
  std::string_view remote;
  std::string_view method;
  std::string_view route;  // the route template
  std::string_view path;   // the path without the query
  int status = 0;
  double duration_ms = 0;
  size_t bytes_in = 0;
  size_t bytes_out = 0;
  std::string_view principal;   // object ID or name; "" when unauthenticated
  std::string_view error_code;  // the ARM error code of an error response
};

class AccessLog {
 public:
  // Writes to `fd` (not owned; stderr is 2). fd < 0 disables the log.
  explicit AccessLog(int fd) : fd_(fd) {}
  void Write(const AccessLogEntry& entry);

 private:
  int fd_;
};

}  // namespace imagesmith::server
