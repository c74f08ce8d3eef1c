#include "server/http.h"

#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <ctime>

#include "base/strings.h"

namespace imagesmith::server {
namespace {

// RFC 9110 token characters (method and field names).
bool IsTchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ParseState Fail(ParseError* error, int status, std::string message) {
  error->http_status = status;
  error->message = std::move(message);
  return ParseState::kError;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits the origin-form target into decoded path segments and query
// parameters.
bool ParseTarget(std::string_view target, HttpRequest* out, std::string* why) {
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  size_t hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  if (path.empty() || path.front() != '/') {
    *why = "the request target must be an absolute path (origin-form), starting with '/'";
    return false;
  }
  path.remove_prefix(1);
  out->segments.clear();
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view raw = path.substr(0, slash);
    std::string decoded;
    if (!PercentDecode(raw, false, &decoded)) {
      *why = "bad percent-encoding in the path segment '" + std::string(raw) + "'";
      return false;
    }
    out->segments.push_back(std::move(decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (path.empty()) out->segments.emplace_back();  // trailing '/'
  }
  out->query.clear();
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string name, value;
      if (!PercentDecode(pair.substr(0, eq), true, &name) ||
          (eq != std::string_view::npos && !PercentDecode(pair.substr(eq + 1), true, &value))) {
        *why = "bad percent-encoding in the query parameter '" + std::string(pair) + "'";
        return false;
      }
      out->query.emplace_back(std::move(name), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return true;
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

const std::string* HttpRequest::Query(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

ParseState ParseRequest(std::string_view buffer, const HttpLimits& limits, HttpRequest* out,
                        size_t* consumed, ParseError* error) {
  // RFC 9112 2.2: ignore at least one empty line before a request.
  size_t start = 0;
  while (start + 1 < buffer.size() && buffer[start] == '\r' && buffer[start + 1] == '\n') {
    start += 2;
  }
  std::string_view rest = buffer.substr(start);
  size_t line_end = rest.find("\r\n");
  if (line_end == std::string_view::npos) {
    if (rest.size() > limits.max_request_line) {
      return Fail(
          error, 414,
          "the request line is longer than " + std::to_string(limits.max_request_line) + " bytes");
    }
    return ParseState::kIncomplete;
  }
  if (line_end > limits.max_request_line) {
    return Fail(
        error, 414,
        "the request line is longer than " + std::to_string(limits.max_request_line) + " bytes");
  }
  size_t head_end = rest.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (rest.size() > limits.max_header_bytes) {
      return Fail(
          error, 431,
          "the request head is larger than " + std::to_string(limits.max_header_bytes) + " bytes");
    }
    // Fail early on a bad request line rather than waiting for more bytes.
  } else if (head_end + 4 > limits.max_header_bytes) {
    return Fail(
        error, 431,
        "the request head is larger than " + std::to_string(limits.max_header_bytes) + " bytes");
  }

  // Request line: method SP target SP version.
  std::string_view line = rest.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(error, 400, "the request line must be 'METHOD TARGET HTTP/1.1'");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty()) return Fail(error, 400, "the request method is empty");
  for (char c : method) {
    if (!IsTchar(c)) return Fail(error, 400, "the request method has an invalid character");
  }
  if (target.empty()) return Fail(error, 400, "the request target is empty");
  for (char c : target) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return Fail(error, 400, "the request target has a control, space or non-ASCII byte");
    }
  }
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1.") {
    if (version.substr(0, 5) == "HTTP/") {
      return Fail(
          error, 505,
          "only HTTP/1.0 and HTTP/1.1 are supported, not " + std::string(version.substr(0, 16)));
    }
    return Fail(error, 400, "the request line must end with the version HTTP/1.1");
  }
  if (version[7] != '0' && version[7] != '1') {
    return Fail(error, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
  }
  if (head_end == std::string_view::npos) return ParseState::kIncomplete;

  HttpRequest req;
  req.method.assign(method);
  req.target.assign(target);
  req.minor_version = version[7] - '0';
  std::string why;
  if (!ParseTarget(target, &req, &why)) return Fail(error, 400, why);

  // Header fields.
  std::string_view fields = rest.substr(line_end + 2, head_end - line_end);
  size_t count = 0;
  bool have_length = false;
  uint64_t content_length = 0;
  bool close = req.minor_version == 0;
  while (!fields.empty()) {
    size_t eol = fields.find("\r\n");
    std::string_view field = fields.substr(0, eol);
    fields.remove_prefix(eol == std::string_view::npos ? fields.size() : eol + 2);
    if (field.empty()) continue;
    if (++count > limits.max_headers) {
      return Fail(error, 431, "more than " + std::to_string(limits.max_headers) + " header fields");
    }
    if (field.front() == ' ' || field.front() == '\t') {
      return Fail(error, 400, "obsolete line folding in header fields is not accepted");
    }
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Fail(error, 400, "a header field has no name or no ':'");
    }
    std::string name(field.substr(0, colon));
    for (char& c : name) {
      if (!IsTchar(c)) {
        return Fail(error, 400,
                    "the header field name '" + name.substr(0, 64) + "' has an invalid character");
      }
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string_view value = Trim(field.substr(colon + 1));
    for (char c : value) {
      unsigned char u = static_cast<unsigned char>(c);
      if ((u < 0x20 && u != '\t') || u == 0x7f) {
        return Fail(error, 400, "the header field '" + name + "' has a control character");
      }
    }
    if (name == "content-length") {
      if (value.empty() || value.size() > 18) {
        return Fail(error, 400, "Content-Length must be a decimal number of bytes");
      }
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') {
          return Fail(error, 400, "Content-Length must be a decimal number of bytes");
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (have_length && n != content_length) {
        return Fail(error, 400, "two different Content-Length header fields");
      }
      have_length = true;
      content_length = n;
    } else if (name == "transfer-encoding") {
      return Fail(error, 501,
                  "Transfer-Encoding is not supported; send the body with Content-Length");
    } else if (name == "connection") {
      // A comma-separated list of options.
      std::string_view v = value;
      while (!v.empty()) {
        size_t comma = v.find(',');
        std::string_view opt = Trim(v.substr(0, comma));
        if (EqualsIgnoreCase(opt, "close")) close = true;
        if (EqualsIgnoreCase(opt, "keep-alive")) close = false;
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    } else if (name == "expect") {
      if (!EqualsIgnoreCase(value, "100-continue")) {
        return Fail(error, 417, "only 'Expect: 100-continue' is supported");
      }
      req.expects_continue = true;
    }
    req.headers.emplace_back(std::move(name), std::string(value));
  }
  req.keep_alive = !close;
  if (req.minor_version == 1 && req.Header("host") == nullptr) {
    return Fail(error, 400, "an HTTP/1.1 request must have a Host header field");
  }
  if (content_length > limits.max_body_bytes) {
    return Fail(error, 413,
                "the request body of " + std::to_string(content_length) +
                    " bytes is larger than the limit of " + std::to_string(limits.max_body_bytes) +
                    " bytes");
  }
  size_t body_start = start + head_end + 4;
  if (buffer.size() - body_start < content_length) {
    *out = std::move(req);
    return ParseState::kHeadDone;
  }
  req.body.assign(buffer.substr(body_start, content_length));
  *consumed = body_start + content_length;
  *out = std::move(req);
  return ParseState::kDone;
}

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s`, or 0.
size_t Utf8SequenceLength(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

bool IsValidUtf8(std::string_view in) {
  while (!in.empty()) {
    size_t n = Utf8SequenceLength(in);
    if (n == 0) return false;
    in.remove_prefix(n);
  }
  return true;
}

std::string SanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  while (!in.empty()) {
    size_t n = Utf8SequenceLength(in);
    if (n == 0) {
      out.push_back('?');
      n = 1;
    } else {
      out.append(in.substr(0, n));
    }
    in.remove_prefix(n);
  }
  return out;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

namespace {

// "Sun, 29 Nov 2026 17:00:00 GMT", recomputed once a second per thread.
std::string_view HttpDate() {
  thread_local time_t cached_at = 0;
  thread_local char text[40] = {0};
  time_t now = ::time(nullptr);
  if (now != cached_at) {
    struct tm tm_utc;
    ::gmtime_r(&now, &tm_utc);
    ::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm_utc);
    cached_at = now;
  }
  return text;
}

}  // namespace

void SerializeResponse(const HttpResponse& response, bool keep_alive, bool head_request,
                       std::string* out) {
  out->append("HTTP/1.1 ");
  out->append(std::to_string(response.status));
  out->push_back(' ');
  out->append(ReasonPhrase(response.status));
  out->append("\r\n");
  for (const auto& [name, value] : response.headers) {
    out->append(name);
    out->append(": ");
    out->append(value);
    out->append("\r\n");
  }
  bool no_body = response.status == 204 || response.status == 304 || response.status < 200;
  const uint64_t length = response.file_body ? response.file_body->length : response.body.size();
  if (!no_body) {
    if (length > 0) {
      out->append("Content-Type: ");
      out->append(response.content_type);
      out->append("\r\n");
    }
    out->append("Content-Length: ");
    out->append(std::to_string(length));
    out->append("\r\n");
  }
  out->append("Date: ");
  out->append(HttpDate());
  out->append("\r\n");
  if (!keep_alive || response.close) out->append("Connection: close\r\n");
  out->append("\r\n");
  if (!head_request && !no_body && !response.file_body) out->append(response.body);
}

FileBody::~FileBody() {
  if (fd >= 0) ::close(fd);
}

}  // namespace imagesmith::server
