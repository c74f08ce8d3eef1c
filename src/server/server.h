// HttpServer: the HTTP/1.1 server under `imagesmith serve`, on POSIX sockets.
//
// A few worker threads each run an epoll loop; all of them watch the listening
// socket (EPOLLEXCLUSIVE), accept connections and then own them: read, parse
// (http.h), call the RequestHandler, write. Connections are kept alive and
// pipelined requests are answered in order. Requests are handled on the
// worker thread, so a handler that blocks holds up that worker's other
// connections; there are several workers for that reason.
//
// Limits and timeouts protect against slow or hostile clients: a request
// head or body that does not arrive within `request_timeout_ms` gets 408 and
// the connection is closed; an idle keep-alive connection is closed after
// `idle_timeout_ms`; a client that does not read its response within
// `write_timeout_ms` is dropped; at most `max_connections` are open.
//
// TLS (OpenSSL) when a certificate and key are given: TLS 1.2 or newer.
//
// Shutdown: stop accepting, let every request being handled finish and its
// response be written (with Connection: close), close idle connections, wait
// up to `drain_timeout_ms` for clients in the middle of sending a request,
// then join the workers.
//
// Thread-safety: Start, address and Shutdown may be called from any thread;
// the handler is called from the worker threads concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/statusor.h"
#include "server/http.h"
#include "server/metrics.h"

namespace imagesmith::server {

struct RequestInfo {
  std::string_view scheme;  // "http" or "https"
  std::string_view remote;  // "127.0.0.1:40312"
};

// What the server calls for each request. Implementations must be
// thread-safe and must not throw (the server answers 500 if one does).
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual HttpResponse Handle(const HttpRequest& request, const RequestInfo& info) = 0;
  // A request the server refuses before it is complete: malformed (400),
  // too large (413, 414, 431), too slow (408), unsupported (501, 505).
  virtual HttpResponse Reject(int http_status, const std::string& message,
                              const RequestInfo& info) = 0;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:8443";  // HOST:PORT; port 0 picks a free one
  int threads = 4;
  HttpLimits limits;
  int request_timeout_ms = 30000;
  int idle_timeout_ms = 60000;
  int write_timeout_ms = 30000;
  int drain_timeout_ms = 10000;
  int max_connections = 10000;
  std::string tls_cert_file;  // PEM; both or neither
  std::string tls_key_file;
};

class HttpServer {
 public:
  // Binds, listens and starts the workers. InvalidArgument for a bad listen
  // address; Unavailable (with the errno text) when the address cannot be
  // bound; InvalidArgument naming the file when the certificate or key cannot
  // be loaded. `handler` and `metrics` are borrowed and must outlive the server.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const ServerOptions& options,
                                                     RequestHandler& handler, Metrics& metrics);

  virtual ~HttpServer() = default;
  // The bound address, "127.0.0.1:41234" (the real port when 0 was asked).
  virtual std::string address() const = 0;
  virtual bool tls() const = 0;
  // Graceful stop as described above; returns when every worker has exited.
  // Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace imagesmith::server
