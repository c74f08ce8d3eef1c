// The server on real sockets: keep-alive, pipelining, limits, timeouts and
// graceful shutdown, with a handler that echoes what it got.
#include "server/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <thread>

#include "server/test_client.h"

namespace imagesmith::server {
namespace {

using testing::ClientResponse;
using testing::TestConnection;

class EchoHandler : public RequestHandler {
 public:
  HttpResponse Handle(const HttpRequest& request, const RequestInfo&) override {
    HttpResponse r;
    if (request.target == "/slow") {
      slow_started.set_value();
      release.get_future().wait();
    }
    if (request.target == "/file" || request.target == "/file-range") {
      // A file body: the server streams it from the descriptor.
      int fd = ::open(file_path.c_str(), O_RDONLY | O_CLOEXEC);
      uint64_t first = request.target == "/file" ? 0 : 300000;
      uint64_t length = request.target == "/file" ? file_size : 1000;
      r.content_type = "application/octet-stream";
      r.file_body = std::make_shared<FileBody>(fd, first, length);
      ++handled;
      return r;
    }
    r.body = request.method + " " + request.target + " " + std::to_string(request.body.size());
    ++handled;
    return r;
  }
  HttpResponse Reject(int status, const std::string& message, const RequestInfo&) override {
    HttpResponse r;
    r.status = status;
    r.body = message;
    r.close = true;
    return r;
  }
  std::string file_path;
  uint64_t file_size = 0;
  std::atomic<int> handled{0};
  std::promise<void> slow_started;
  std::promise<void> release;
};

class ServerTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = {}) {
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    auto s = HttpServer::Start(options, handler_, metrics_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
  }
  std::string Get(const std::string& target) {
    return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  EchoHandler handler_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ServerTest, KeepAliveAndPipelining) {
  Start();
  auto c = TestConnection::Connect(server_->address());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->Send(Get("/one")).ok());
  auto r1 = c->Read();
  ASSERT_TRUE(r1.ok()) << r1.status().message();
  EXPECT_EQ(r1->body, "GET /one 0");
  // Two pipelined requests in one write, answered in order on the same connection.
  ASSERT_TRUE(
      c->Send(Get("/two") + "PUT /three HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").ok());
  EXPECT_EQ(c->Read()->body, "GET /two 0");
  EXPECT_EQ(c->Read()->body, "PUT /three 3");
  EXPECT_EQ(handler_.handled.load(), 3);
}

TEST_F(ServerTest, FileBodiesAreStreamedInOrderWithPipelinedRequests) {
  // 1 MiB + 7 bytes: several chunks, and more than a socket buffer holds.
  char tmpl[] = "/tmp/imagesmith-server-file-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::string data(1048576 + 7, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7 + i / 4096) & 0xff);
  std::ofstream(tmpl, std::ios::binary) << data;
  handler_.file_path = tmpl;
  handler_.file_size = data.size();
  Start();
  auto c = TestConnection::Connect(server_->address());
  ASSERT_TRUE(c.ok());
  // The file, a range of it, HEAD of it and a small answer, pipelined in one write.
  ASSERT_TRUE(c->Send(Get("/file") + Get("/file-range") + "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n" +
                      Get("/after"))
                  .ok());
  auto whole = c->Read();
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  EXPECT_EQ(whole->Header("content-length"), std::to_string(data.size()));
  EXPECT_TRUE(whole->body == data) << "the streamed body differs from the file";
  auto part = c->Read();
  ASSERT_TRUE(part.ok());
  EXPECT_TRUE(part->body == data.substr(300000, 1000));
  auto head = c->Read(10000, /*head_request=*/true);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->Header("content-length"), std::to_string(data.size()));
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(c->Read()->body, "GET /after 0");
  std::remove(tmpl);
}

TEST_F(ServerTest, ConnectionCloseIsHonoured) {
  Start();
  auto c = TestConnection::Connect(server_->address());
  ASSERT_TRUE(c->Send("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok());
  auto r = c->Read();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c->ClosedByPeer());
}

TEST_F(ServerTest, OversizedBodyIs413AndTheConnectionCloses) {
  ServerOptions options;
  options.limits.max_body_bytes = 1024;
  Start(options);
  auto c = TestConnection::Connect(server_->address());
  ASSERT_TRUE(c->Send("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                      std::string(5000, 'x'))
                  .ok());
  auto r = c->Read();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c->ClosedByPeer());
  EXPECT_EQ(handler_.handled.load(), 0);
}

TEST_F(ServerTest, ExpectContinueGetsAnInterimAnswer) {
  Start();
  auto c = TestConnection::Connect(server_->address());
  ASSERT_TRUE(
      c->Send("PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
          .ok());
  // The interim 100 arrives before the body is sent; Read skips it after the body.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(c->Send("body").ok());
  auto r = c->Read();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "PUT /e 4");
}

TEST_F(ServerTest, SlowClientGets408) {
  ServerOptions options;
  options.request_timeout_ms = 300;
  Start(options);
  auto c = TestConnection::Connect(server_->address());
  ASSERT_TRUE(c->Send("GET /slowloris HTTP/1.1\r\nHost: x\r\n").ok());
  auto r = c->Read(5000);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c->ClosedByPeer());
}

TEST_F(ServerTest, IdleKeepAliveConnectionsAreClosed) {
  ServerOptions options;
  options.idle_timeout_ms = 200;
  Start(options);
  auto c = TestConnection::Connect(server_->address());
  ASSERT_TRUE(c->Send(Get("/a")).ok());
  ASSERT_TRUE(c->Read().ok());
  EXPECT_TRUE(c->ClosedByPeer(4000));
}

TEST_F(ServerTest, MalformedRequestIs400) {
  Start();
  auto c = TestConnection::Connect(server_->address());
  ASSERT_TRUE(c->Send("BROKEN\r\n\r\n").ok());
  auto r = c->Read();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c->ClosedByPeer());
}

TEST_F(ServerTest, ShutdownFinishesTheRequestInFlight) {
  Start();
  auto c = TestConnection::Connect(server_->address());
  auto idle = TestConnection::Connect(server_->address());
  ASSERT_TRUE(c->Send(Get("/slow")).ok());
  handler_.slow_started.get_future().wait();
  std::thread stopper([&] { server_->Shutdown(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // New connections are no longer served.
  auto late = TestConnection::Connect(server_->address());
  if (late.ok()) {
    (void)late->Send(Get("/late"));
    EXPECT_FALSE(late->Read(500).ok());
  }
  handler_.release.set_value();
  auto r = c->Read();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /slow 0");
  EXPECT_EQ(r->Header("connection"), "close");
  // Idle connections are closed (once their worker is free: the idle one may
  // share the worker that was busy with /slow).
  EXPECT_TRUE(idle->ClosedByPeer());
  stopper.join();
  EXPECT_EQ(handler_.handled.load(), 1);
}

TEST_F(ServerTest, BadListenAddressesAreErrors) {
  ServerOptions options;
  options.listen = "127.0.0.1";
  EXPECT_FALSE(HttpServer::Start(options, handler_, metrics_).ok());
  options.listen = "127.0.0.1:99999";
  EXPECT_FALSE(HttpServer::Start(options, handler_, metrics_).ok());
  options.listen = "127.0.0.1:0";
  options.tls_cert_file = "/nonexistent/cert.pem";
  options.tls_key_file = "/nonexistent/key.pem";
  auto s = HttpServer::Start(options, handler_, metrics_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/nonexistent/cert.pem"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith::server
