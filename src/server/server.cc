#include "server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace imagesmith::server {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

std::string AddressText(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "?";
}

constexpr size_t kReadChunk = 64 * 1024;
// Stop reading from a client while this much of its responses is unsent.
constexpr size_t kMaxPendingOutput = 4 * 1024 * 1024;
constexpr int64_t kLingerMs = 2000;
// How much of a file body is read into a connection's output at a time.
constexpr size_t kFileChunk = 256 * 1024;

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string remote;
  std::string in;
  std::string out;
  size_t out_off = 0;
  // A file body being sent (a download): `out` is refilled from it a chunk
  // at a time; later pipelined requests wait until it is done.
  std::shared_ptr<const FileBody> stream;
  uint64_t stream_pos = 0;  // bytes of `stream` already moved into `out`
  int64_t last_activity_ms = 0;
  int64_t request_start_ms = 0;  // first byte of the request being received; 0: none
  int64_t write_progress_ms = 0;
  bool close_after_write = false;
  bool sent_continue = false;
  bool tls_write_wants_read = false;
  bool peer_eof = false;
  // After an answer that closes the connection: our side is shut down and
  // what the client still sends is read and dropped until it closes (or
  // kLingerMs pass), so it is not reset before it has read the answer.
  bool lingering = false;
  bool linger_needed = false;  // unread input may follow (after an error answer)
  int64_t linger_deadline_ms = 0;
  bool added = false;
  uint32_t registered = 0;  // the epoll events asked for
};

class ServerImpl;

struct Worker {
  int epfd = -1;
  int wake_fd = -1;
  std::thread thread;
  std::unordered_map<int, std::unique_ptr<Conn>> conns;
};

class ServerImpl : public HttpServer {
 public:
  ServerImpl(const ServerOptions& options, RequestHandler& handler, Metrics& metrics)
      : options_(options), handler_(handler), metrics_(metrics) {}

  ~ServerImpl() override {
    Shutdown();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (ssl_ctx_ != nullptr) SSL_CTX_free(ssl_ctx_);
  }

  Status Init();
  std::string address() const override { return address_; }
  bool tls() const override { return ssl_ctx_ != nullptr; }

  void Shutdown() override {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    stopping_.store(true);
    for (auto& w : workers_) {
      uint64_t one = 1;
      ssize_t ignored = ::write(w->wake_fd, &one, sizeof(one));
      (void)ignored;
    }
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
      ::close(w->epfd);
      ::close(w->wake_fd);
    }
  }

 private:
  void Run(Worker& w);
  void Accept(Worker& w);
  void OnEvent(Worker& w, Conn& c, uint32_t events);
  // False when the connection was closed (and freed).
  bool ReadAndProcess(Worker& w, Conn& c);
  void Process(Conn& c);
  bool Flush(Worker& w, Conn& c);
  void UpdateInterest(Worker& w, Conn& c);
  void Close(Worker& w, Conn& c);
  void Sweep(Worker& w, int64_t now);

  ServerOptions options_;
  RequestHandler& handler_;
  Metrics& metrics_;
  int listen_fd_ = -1;
  SSL_CTX* ssl_ctx_ = nullptr;
  std::string address_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_connections_{0};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;  // guarded by shutdown_mu_
};

Status ServerImpl::Init() {
  // HOST:PORT, [V6]:PORT.
  const std::string& listen = options_.listen;
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return InvalidArgumentError("--listen: '" + listen + "' is not HOST:PORT");
  }
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  for (char c : port) {
    if (c < '0' || c > '9') return InvalidArgumentError("--listen: bad port '" + port + "'");
  }
  if (port.size() > 5 || std::stoi(port) > 65535) {
    return InvalidArgumentError("--listen: port " + port + " is out of range");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int gai = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) {
    return InvalidArgumentError("--listen: cannot resolve '" + host + "': " + gai_strerror(gai));
  }
  int err = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) {
      listen_fd_ = fd;
      break;
    }
    err = errno;
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (listen_fd_ < 0) {
    return UnavailableError("cannot listen on " + listen + ": " + std::strerror(err));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  address_ = AddressText(reinterpret_cast<sockaddr*>(&bound));

  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return InvalidArgumentError("TLS needs both --tls-cert and --tls-key");
    }
    ssl_ctx_ = SSL_CTX_new(TLS_server_method());
    if (ssl_ctx_ == nullptr) return InternalError("SSL_CTX_new: " + OpenSslError());
    SSL_CTX_set_min_proto_version(ssl_ctx_, TLS1_2_VERSION);
    SSL_CTX_set_mode(ssl_ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx_, options_.tls_cert_file.c_str()) != 1) {
      return InvalidArgumentError("--tls-cert " + options_.tls_cert_file +
                                  ": cannot load the certificate: " + OpenSslError());
    }
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx_, options_.tls_key_file.c_str(), SSL_FILETYPE_PEM) !=
        1) {
      return InvalidArgumentError("--tls-key " + options_.tls_key_file +
                                  ": cannot load the private key: " + OpenSslError());
    }
    if (SSL_CTX_check_private_key(ssl_ctx_) != 1) {
      return InvalidArgumentError("--tls-key " + options_.tls_key_file +
                                  " does not match the certificate " + options_.tls_cert_file);
    }
  }

  int threads = options_.threads < 1 ? 1 : options_.threads;
  for (int i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>();
    w->epfd = ::epoll_create1(EPOLL_CLOEXEC);
    w->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->wake_fd < 0) return ErrnoError("epoll/eventfd", errno);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.fd = listen_fd_;
    if (::epoll_ctl(w->epfd, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      return ErrnoError("epoll_ctl", errno);
    }
    epoll_event wake{};
    wake.events = EPOLLIN;
    wake.data.fd = w->wake_fd;
    ::epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &wake);
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) {
    Worker* raw = w.get();
    w->thread = std::thread([this, raw] { Run(*raw); });
  }
  return Status::Ok();
}

void ServerImpl::Run(Worker& w) {
  epoll_event events[64];
  int64_t last_sweep = NowMs();
  int64_t drain_deadline = 0;
  bool draining = false;
  while (true) {
    int n = ::epoll_wait(w.epfd, events, 64, draining ? 50 : 1000);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        if (!draining) Accept(w);
        continue;
      }
      if (fd == w.wake_fd) {
        uint64_t v;
        ssize_t ignored = ::read(w.wake_fd, &v, sizeof(v));
        (void)ignored;
        continue;
      }
      auto it = w.conns.find(fd);
      if (it == w.conns.end()) continue;
      OnEvent(w, *it->second, events[i].events);
    }
    int64_t now = NowMs();
    if (stopping_.load() && !draining) {
      draining = true;
      drain_deadline = now + options_.drain_timeout_ms;
      ::epoll_ctl(w.epfd, EPOLL_CTL_DEL, listen_fd_, nullptr);
    }
    if (draining || now - last_sweep >= 1000) {
      Sweep(w, now);
      last_sweep = now;
    }
    if (draining && (w.conns.empty() || now >= drain_deadline)) break;
  }
  while (!w.conns.empty()) Close(w, *w.conns.begin()->second);
}

void ServerImpl::Accept(Worker& w) {
  while (true) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN (another worker took it) or a transient error
    if (open_connections_.load() >= options_.max_connections) {
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->remote = AddressText(reinterpret_cast<sockaddr*>(&addr));
    c->last_activity_ms = NowMs();
    if (ssl_ctx_ != nullptr) {
      c->ssl = SSL_new(ssl_ctx_);
      if (c->ssl == nullptr) {
        ::close(fd);
        continue;
      }
      SSL_set_fd(c->ssl, fd);
      SSL_set_accept_state(c->ssl);
    }
    Conn& ref = *c;
    w.conns.emplace(fd, std::move(c));
    open_connections_.fetch_add(1);
    metrics_.ConnectionOpened();
    UpdateInterest(w, ref);
  }
}

void ServerImpl::OnEvent(Worker& w, Conn& c, uint32_t events) {
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) || c.tls_write_wants_read) {
    if (!ReadAndProcess(w, c)) return;
  }
  if (!Flush(w, c)) return;
  // A file body ended: answer the requests that were pipelined behind it.
  while (c.stream == nullptr && !c.in.empty() && !c.close_after_write &&
         c.out_off >= c.out.size()) {
    size_t before = c.in.size();
    Process(c);
    if (!Flush(w, c)) return;
    if (c.in.size() == before) break;  // the rest is an incomplete request
  }
  if (c.close_after_write && c.out_off >= c.out.size() && c.stream == nullptr) {
    if (c.lingering) return;
    if (c.ssl != nullptr || c.peer_eof || !c.linger_needed) {
      Close(w, c);
      return;
    }
    ::shutdown(c.fd, SHUT_WR);
    c.lingering = true;
    c.linger_deadline_ms = NowMs() + kLingerMs;
  }
  UpdateInterest(w, c);
}

bool ServerImpl::ReadAndProcess(Worker& w, Conn& c) {
  char buf[kReadChunk];
  while (c.out.size() - c.out_off < kMaxPendingOutput) {
    ssize_t got;
    if (c.ssl != nullptr) {
      ERR_clear_error();
      int r = SSL_read(c.ssl, buf, sizeof(buf));
      if (r > 0) {
        got = r;
      } else {
        int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ) break;
        if (e == SSL_ERROR_WANT_WRITE) {
          // Handshake output is pending; EPOLLOUT resumes it.
          c.tls_write_wants_read = false;
          break;
        }
        ERR_clear_error();
        Close(w, c);  // the peer closed, or a TLS error
        return false;
      }
    } else {
      got = ::recv(c.fd, buf, sizeof(buf), 0);
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        Close(w, c);
        return false;
      }
      if (got == 0) {
        // The client closed its side. Finish what was asked, then close.
        c.peer_eof = true;
        if (c.out_off >= c.out.size() && c.stream == nullptr) {
          Close(w, c);
          return false;
        }
        c.close_after_write = true;
        c.in.clear();
        break;
      }
    }
    c.last_activity_ms = NowMs();
    if (c.close_after_write) continue;  // discard what follows an error
    if (c.in.empty()) c.request_start_ms = c.last_activity_ms;
    c.in.append(buf, static_cast<size_t>(got));
    Process(c);
  }
  return true;
}

void ServerImpl::Process(Conn& c) {
  RequestInfo info{ssl_ctx_ != nullptr ? "https" : "http", c.remote};
  while (!c.close_after_write && !c.in.empty() && c.stream == nullptr) {
    HttpRequest request;
    size_t consumed = 0;
    ParseError error;
    ParseState state = ParseRequest(c.in, options_.limits, &request, &consumed, &error);
    if (state == ParseState::kIncomplete) return;
    if (state == ParseState::kHeadDone) {
      if (request.expects_continue && !c.sent_continue) {
        c.out += "HTTP/1.1 100 Continue\r\n\r\n";
        c.sent_continue = true;
      }
      return;
    }
    if (state == ParseState::kError) {
      HttpResponse r = handler_.Reject(error.http_status, error.message, info);
      SerializeResponse(r, false, false, &c.out);
      c.close_after_write = true;
      c.linger_needed = true;
      c.in.clear();
      return;
    }
    c.in.erase(0, consumed);
    c.sent_continue = false;
    c.request_start_ms = c.in.empty() ? 0 : NowMs();
    HttpResponse response;
    try {
      response = handler_.Handle(request, info);
    } catch (...) {
      response = handler_.Reject(500, "the request handler failed unexpectedly", info);
    }
    bool keep = request.keep_alive && !response.close && !stopping_.load();
    SerializeResponse(response, keep, request.method == "HEAD", &c.out);
    if (!keep) c.close_after_write = true;
    if (response.file_body && request.method != "HEAD" && response.file_body->length > 0 &&
        response.status != 204 && response.status != 304) {
      c.stream = response.file_body;
      c.stream_pos = 0;
    }
  }
  if (c.in.empty()) c.request_start_ms = 0;
}

bool ServerImpl::Flush(Worker& w, Conn& c) {
  c.tls_write_wants_read = false;
  for (;;) {
    if (c.out_off >= c.out.size()) {
      if (c.stream == nullptr) break;
      // The next chunk of the file body.
      const FileBody& f = *c.stream;
      size_t want = static_cast<size_t>(std::min<uint64_t>(kFileChunk, f.length - c.stream_pos));
      c.out.resize(want);
      c.out_off = 0;
      ssize_t got = ::pread(f.fd, c.out.data(), want, static_cast<off_t>(f.offset + c.stream_pos));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        // The file shrank or cannot be read: the promised Content-Length
        // cannot be kept, so the client must see the connection end.
        c.out.clear();
        Close(w, c);
        return false;
      }
      c.out.resize(static_cast<size_t>(got));
      c.stream_pos += static_cast<uint64_t>(got);
      if (c.stream_pos >= f.length) c.stream.reset();
    }
    const char* p = c.out.data() + c.out_off;
    size_t left = c.out.size() - c.out_off;
    ssize_t sent;
    if (c.ssl != nullptr) {
      ERR_clear_error();
      int r = SSL_write(c.ssl, p, static_cast<int>(std::min<size_t>(left, 1 << 30)));
      if (r > 0) {
        sent = r;
      } else {
        int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) break;
        if (e == SSL_ERROR_WANT_READ) {
          c.tls_write_wants_read = true;
          break;
        }
        ERR_clear_error();
        Close(w, c);
        return false;
      }
    } else {
      sent = ::send(c.fd, p, left, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        Close(w, c);
        return false;
      }
    }
    c.out_off += static_cast<size_t>(sent);
    c.write_progress_ms = NowMs();
  }
  if (c.out_off >= c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  } else if (c.out_off > (1 << 20)) {
    c.out.erase(0, c.out_off);
    c.out_off = 0;
  }
  return true;
}

void ServerImpl::UpdateInterest(Worker& w, Conn& c) {
  uint32_t want = 0;
  bool pending = c.out_off < c.out.size() || c.stream != nullptr;
  if (pending) want |= EPOLLOUT;
  if (c.lingering) {
    want |= EPOLLIN | EPOLLRDHUP;
  } else if (!c.close_after_write || c.tls_write_wants_read) {
    // Level-triggered: stop asking for input while the client does not read
    // its answers, or after an answer that closes the connection.
    // (While a file body is sent, nothing more is read: its requests wait.)
    if (!pending || (c.stream == nullptr && c.out.size() - c.out_off < kMaxPendingOutput) ||
        c.tls_write_wants_read) {
      want |= EPOLLIN | EPOLLRDHUP;
    }
  }
  if (c.added && c.registered == want) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.fd = c.fd;
  ::epoll_ctl(w.epfd, c.added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c.fd, &ev);
  c.added = true;
  c.registered = want;
}

void ServerImpl::Close(Worker& w, Conn& c) {
  int fd = c.fd;
  if (c.ssl != nullptr) {
    ERR_clear_error();
    SSL_shutdown(c.ssl);  // best effort close_notify
    SSL_free(c.ssl);
    ERR_clear_error();
  }
  ::epoll_ctl(w.epfd, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  open_connections_.fetch_sub(1);
  metrics_.ConnectionClosed();
  w.conns.erase(fd);  // frees `c`
}

void ServerImpl::Sweep(Worker& w, int64_t now) {
  std::vector<Conn*> to_close;
  bool stopping = stopping_.load();
  for (auto& [fd, conn] : w.conns) {
    Conn& c = *conn;
    bool pending = c.out_off < c.out.size() || c.stream != nullptr;
    if (pending) {
      if (now - c.write_progress_ms > options_.write_timeout_ms) to_close.push_back(&c);
      continue;
    }
    if (c.close_after_write) {
      if (!c.lingering || now >= c.linger_deadline_ms) to_close.push_back(&c);
      continue;
    }
    if (!c.in.empty()) {
      if (c.request_start_ms != 0 && now - c.request_start_ms > options_.request_timeout_ms) {
        RequestInfo info{ssl_ctx_ != nullptr ? "https" : "http", c.remote};
        HttpResponse r =
            handler_.Reject(408,
                            "the request was not received within " +
                                std::to_string(options_.request_timeout_ms / 1000) + " s",
                            info);
        SerializeResponse(r, false, false, &c.out);
        c.close_after_write = true;
        c.in.clear();
        c.write_progress_ms = now;
      }
      continue;
    }
    if (stopping || now - c.last_activity_ms > options_.idle_timeout_ms) to_close.push_back(&c);
  }
  for (Conn* c : to_close) Close(w, *c);
  // Flush the 408 answers queued above.
  std::vector<Conn*> flush;
  for (auto& [fd, conn] : w.conns) {
    if (conn->close_after_write && conn->out_off < conn->out.size()) flush.push_back(conn.get());
  }
  for (Conn* c : flush) {
    if (!Flush(w, *c)) continue;
    if (c->out_off >= c->out.size()) {
      Close(w, *c);
    } else {
      UpdateInterest(w, *c);
    }
  }
}

}  // namespace

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const ServerOptions& options,
                                                        RequestHandler& handler, Metrics& metrics) {
  auto server = std::make_unique<ServerImpl>(options, handler, metrics);
  RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace imagesmith::server
