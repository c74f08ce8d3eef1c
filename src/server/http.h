// HTTP/1.1 messages on the wire: the request parser and the response writer
// of `imagesmith serve` (RFC 9112). Pure functions on byte buffers, no
// sockets, so the parser can be fuzzed and unit-tested on its own.
//
// What is accepted: a request line "METHOD SP origin-form SP HTTP/1.x", header
// fields terminated by CRLF, and a body given by Content-Length. Not accepted,
// each with its own status: Transfer-Encoding (501, send Content-Length),
// a request line longer than Limits::max_request_line (414), header
// fields past Limits::max_header_bytes or Limits::max_headers (431), a body
// past Limits::max_body_bytes (413), and everything malformed (400).
//
// Thread-compatible: no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imagesmith::server {

struct HttpLimits {
  size_t max_request_line = 8 * 1024;
  size_t max_header_bytes = 32 * 1024;  // the whole head: request line and fields
  size_t max_headers = 100;
  size_t max_body_bytes = 4 * 1024 * 1024;
};

struct HttpRequest {
  std::string method;  // "GET", case-sensitive as RFC 9110 says
  std::string target;  // the request-target as sent: "/a/b?x=1"
  // The path split at '/' with each segment percent-decoded; a leading '/'
  // gives no empty first segment ("/a/b" -> {"a", "b"}). A segment may
  // contain a decoded '/' or control character; the router refuses those.
  std::vector<std::string> segments;
  // Query parameters, percent-decoded ('+' is a space), in order.
  std::vector<std::pair<std::string, std::string>> query;
  // Header fields with lower-cased names and values trimmed of spaces.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int minor_version = 1;          // HTTP/1.0 or HTTP/1.1
  bool keep_alive = true;         // after this request, per version and Connection
  bool expects_continue = false;  // Expect: 100-continue

  // The first header named `lower_name`, or nullptr.
  const std::string* Header(std::string_view lower_name) const;
  // The first query parameter named `name` ignoring case (ARM treats
  // "api-version" and "API-Version" alike), or nullptr.
  const std::string* Query(std::string_view name) const;
};

enum class ParseState {
  kIncomplete,  // more bytes are needed; nothing was consumed
  kHeadDone,    // the head is complete and valid but the body is not here yet
  kDone,        // one whole request; `consumed` bytes belong to it
  kError,       // the bytes are not an acceptable request; see ParseError
};

struct ParseError {
  int http_status = 400;  // 400, 413, 414, 431, 501, 505
  std::string message;    // what is wrong, with the offending field
};

// Parses one request from the start of `buffer`. On kDone fills `out` and
// `*consumed` (the bytes to drop before the next pipelined request). On
// kHeadDone fills `out` without the body (so a caller can answer
// Expect: 100-continue). On kError fills `error`; the connection must then be
// closed after the error response, since the message boundary is lost.
ParseState ParseRequest(std::string_view buffer, const HttpLimits& limits, HttpRequest* out,
                        size_t* consumed, ParseError* error);

// Percent-decodes `in` ('+' as space when `plus_is_space`). False on a bad
// escape ("%zz", a lone "%").
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// `in` with every byte that is not part of well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF) replaced by '?', so
// client bytes echoed in messages cannot make a JSON body invalid.
std::string SanitizeUtf8(std::string_view in);
// True when `in` is well-formed UTF-8.
bool IsValidUtf8(std::string_view in);

// A response body read from an open file instead of held in memory (a
// download): `length` bytes from `offset`. Owns `fd` and closes it.
// Not copyable; responses share it through a shared_ptr.
struct FileBody {
  FileBody(int fd_in, uint64_t offset_in, uint64_t length_in)
      : fd(fd_in), offset(offset_in), length(length_in) {}
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
  ~FileBody();
  const int fd;
  const uint64_t offset;
  const uint64_t length;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // besides the ones below
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  // When set, the body is these bytes of a file (and `body` is ignored):
  // the server writes them as the client reads, a chunk at a time.
  std::shared_ptr<const FileBody> file_body;
  bool close = false;  // close the connection after sending
};

// The reason phrase for a status code ("Not Found").
std::string_view ReasonPhrase(int status);

// Appends the status line, `response.headers`, Content-Type (when there is a
// body), Content-Length, Date and Connection, then the body (none for HEAD;
// not a file_body, which the caller streams after it).
void SerializeResponse(const HttpResponse& response, bool keep_alive, bool head_request,
                       std::string* out);

}  // namespace imagesmith::server
