// A small blocking HTTP/1.1 client for the server's tests (unit and
// end-to-end): raw requests on one TCP connection, so tests can send exactly
// the bytes they mean (partial heads, pipelining, oversized bodies) and see
// whether the server keeps or closes the connection. Not for production use.
// Thread-compatible.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/statusor.h"

namespace imagesmith::server::testing {

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-cased names
  std::string body;
  // The first header named `lower_name`, or "".
  std::string Header(const std::string& lower_name) const;
};

class TestConnection {
 public:
  // Connects to "HOST:PORT" (IPv4).
  static StatusOr<TestConnection> Connect(const std::string& address);
  TestConnection(TestConnection&& other) noexcept;
  TestConnection& operator=(TestConnection&&) = delete;
  ~TestConnection();

  Status Send(const std::string& bytes);
  // Reads one response (Content-Length framed). DeadlineExceeded after
  // `timeout_ms`; Unavailable when the server closed first.
  StatusOr<ClientResponse> Read(int timeout_ms = 10000, bool head_request = false);
  // True when the server closes the connection within `timeout_ms` (EOF or reset).
  bool ClosedByPeer(int timeout_ms = 3000);

 private:
  explicit TestConnection(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buffered_;
};

// One request on a new connection: METHOD TARGET with `headers` (each
// "Name: value") and `body`; adds Host, Content-Length and Connection: close.
StatusOr<ClientResponse> Request(const std::string& address, const std::string& method,
                                 const std::string& target, const std::string& body = "",
                                 const std::vector<std::string>& headers = {});

}  // namespace imagesmith::server::testing
