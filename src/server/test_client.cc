#include "server/test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace imagesmith::server::testing {

std::string ClientResponse::Header(const std::string& lower_name) const {
  for (const auto& [n, v] : headers) {
    if (n == lower_name) return v;
  }
  return "";
}

StatusOr<TestConnection> TestConnection::Connect(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return InvalidArgumentError("bad address " + address);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    return InvalidArgumentError("bad address " + address);
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoError("connect " + address, e);
  }
  return TestConnection(fd);
}

TestConnection::TestConnection(TestConnection&& other) noexcept
    : fd_(other.fd_), buffered_(std::move(other.buffered_)) {
  other.fd_ = -1;
}

TestConnection::~TestConnection() {
  if (fd_ >= 0) ::close(fd_);
}

Status TestConnection::Send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("send", errno);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

StatusOr<ClientResponse> TestConnection::Read(int timeout_ms, bool head_request) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  ClientResponse r;
  size_t head_end = std::string::npos;
  size_t need = std::string::npos;
  while (true) {
    if (head_end == std::string::npos) {
      head_end = buffered_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string head = buffered_.substr(0, head_end);
        size_t eol = head.find("\r\n");
        std::string status_line = head.substr(0, eol);
        if (status_line.size() < 12) return InternalError("bad status line: " + status_line);
        r.status = std::stoi(status_line.substr(9, 3));
        size_t pos = eol == std::string::npos ? head.size() : eol + 2;
        size_t length = 0;
        while (pos < head.size()) {
          size_t e = head.find("\r\n", pos);
          if (e == std::string::npos) e = head.size();
          std::string line = head.substr(pos, e - pos);
          size_t c = line.find(':');
          std::string name = line.substr(0, c);
          for (char& ch : name)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          std::string value = c == std::string::npos ? "" : line.substr(c + 1);
          while (!value.empty() && value.front() == ' ') value.erase(0, 1);
          if (name == "content-length") length = std::stoul(value);
          r.headers.emplace_back(name, value);
          pos = e + 2;
        }
        if (r.status == 100) {  // interim response: drop it and read on
          buffered_.erase(0, head_end + 4);
          head_end = std::string::npos;
          r = ClientResponse();
          continue;
        }
        need = head_end + 4 + (head_request || r.status == 204 ? 0 : length);
      }
    }
    if (need != std::string::npos && buffered_.size() >= need) {
      r.body = buffered_.substr(head_end + 4, need - head_end - 4);
      buffered_.erase(0, need);
      return r;
    }
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) return DeadlineExceededError("no complete response in time");
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return UnavailableError("the server closed the connection");
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

bool TestConnection::ClosedByPeer(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return false;
}

StatusOr<ClientResponse> Request(const std::string& address, const std::string& method,
                                 const std::string& target, const std::string& body,
                                 const std::vector<std::string>& headers) {
  ASSIGN_OR_RETURN(TestConnection c, TestConnection::Connect(address));
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + address + "\r\n";
  for (const std::string& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "PUT" || method == "POST" || method == "PATCH") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "Connection: close\r\n\r\n" + body;
  RETURN_IF_ERROR(c.Send(req));
  return c.Read(30000, method == "HEAD");
}

}  // namespace imagesmith::server::testing
