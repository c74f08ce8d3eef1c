#include "builder/fetch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace imagesmith::build {
namespace {

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-fetch-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(env_->CreateDirs(dir_ + "/template/files").ok());
    ASSERT_TRUE(env_->WriteFileAtomic(dir_ + "/template/files/a.sh", "echo hi\n").ok());
    ASSERT_TRUE(env_->WriteFileAtomic(dir_ + "/secret", "outside\n").ok());
  }
  void TearDown() override { ASSERT_TRUE(env_->RemoveAll(dir_).ok()); }
  Env* env_ = Env::Default();
  std::string dir_;
};

TEST_F(FetchTest, RelativePathResolvesAgainstTheTemplateAndIsHashed) {
  auto got =
      FetchInput(*env_, dir_ + "/template", "files/a.sh", Sha256Of("echo hi\n"), dir_ + "/out");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->digest, Sha256Of("echo hi\n"));
  EXPECT_EQ(got->bytes, 8u);
  EXPECT_EQ(*env_->ReadFile(dir_ + "/out", 100), "echo hi\n");
}

TEST_F(FetchTest, ChecksumMismatchShowsBothDigestsAndLeavesNothing) {
  Sha256Digest wrong = Sha256Of("something else");
  auto got = FetchInput(*env_, dir_ + "/template", "files/a.sh", wrong, dir_ + "/out");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("expected " + wrong.ToHex()), std::string::npos);
  EXPECT_NE(got.status().message().find("got " + Sha256Of("echo hi\n").ToHex()), std::string::npos);
  EXPECT_FALSE(env_->FileExists(dir_ + "/out"));
}

TEST_F(FetchTest, RelativePathMayNotEscapeTheTemplateDirectory) {
  auto got = FetchInput(*env_, dir_ + "/template", "../secret", std::nullopt, dir_ + "/out");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(got.status().message().find("outside the template's directory"), std::string::npos);
  ASSERT_EQ(::symlink((dir_ + "/secret").c_str(), (dir_ + "/template/files/link").c_str()), 0);
  auto via_link = FetchInput(*env_, dir_ + "/template", "files/link", std::nullopt, dir_ + "/o2");
  EXPECT_EQ(via_link.status().code(), StatusCode::kPermissionDenied);
}

TEST_F(FetchTest, FileUriAndMissingFile) {
  auto got = FetchInput(*env_, dir_, "file://" + dir_ + "/secret", std::nullopt, dir_ + "/out");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto missing = FetchInput(*env_, dir_ + "/template", "files/nope.sh", std::nullopt, dir_ + "/o");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// A one-request HTTP server on a loopback port chosen by the kernel.
class OneShotServer {
 public:
  OneShotServer(std::string status_line, std::string body) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 1);
    thread_ = std::thread([this, status_line, body] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      (void)::read(c, buf, sizeof buf);
      std::string resp = status_line + "\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
      (void)::write(c, resp.data(), resp.size());
      ::close(c);
    });
  }
  ~OneShotServer() {
    thread_.join();
    ::close(fd_);
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  int fd_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(FetchTest, DownloadsOverHttpWithLibcurl) {
  OneShotServer server("HTTP/1.1 200 OK", "#!/bin/sh\necho downloaded\n");
  auto got = FetchInput(*env_, dir_, server.Url("/s.sh"), Sha256Of("#!/bin/sh\necho downloaded\n"),
                        dir_ + "/out");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*env_->ReadFile(dir_ + "/out", 100), "#!/bin/sh\necho downloaded\n");
}

TEST_F(FetchTest, HttpErrorNamesTheStatus) {
  OneShotServer server("HTTP/1.1 404 Not Found", "no");
  auto got = FetchInput(*env_, dir_, server.Url("/missing.sh"), std::nullopt, dir_ + "/out");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find("HTTP 404"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith::build
