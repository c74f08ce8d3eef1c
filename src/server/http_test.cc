#include "server/http.h"

#include <gtest/gtest.h>

namespace imagesmith::server {
namespace {

struct Parsed {
  ParseState state;
  HttpRequest request;
  size_t consumed = 0;
  ParseError error;
};

Parsed Parse(std::string_view text, HttpLimits limits = {}) {
  Parsed p;
  p.state = ParseRequest(text, limits, &p.request, &p.consumed, &p.error);
  return p;
}

TEST(HttpParse, ParsesGetWithQueryAndHeaders) {
  Parsed p = Parse(
      "GET /subscriptions/s1/resourceGroups/g%20x?api-version=2024-01-01&a=b+c HTTP/1.1\r\n"
      "Host: h\r\nX-Thing:  v1  \r\n\r\n");
  ASSERT_EQ(p.state, ParseState::kDone) << p.error.message;
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.segments,
            (std::vector<std::string>{"subscriptions", "s1", "resourceGroups", "g x"}));
  ASSERT_NE(p.request.Query("API-VERSION"), nullptr);
  EXPECT_EQ(*p.request.Query("api-version"), "2024-01-01");
  EXPECT_EQ(*p.request.Query("a"), "b c");
  EXPECT_EQ(*p.request.Header("x-thing"), "v1");
  EXPECT_TRUE(p.request.keep_alive);
}

TEST(HttpParse, IncompleteHeadNeedsMoreBytes) {
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nHost: h\r\n").state, ParseState::kIncomplete);
  EXPECT_EQ(Parse("GET / HT").state, ParseState::kIncomplete);
}

TEST(HttpParse, BodyByContentLengthAndPipelining) {
  std::string two =
      "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  Parsed first = Parse(two);
  ASSERT_EQ(first.state, ParseState::kDone);
  EXPECT_EQ(first.request.body, "hello");
  Parsed second = Parse(std::string_view(two).substr(first.consumed));
  ASSERT_EQ(second.state, ParseState::kDone);
  EXPECT_EQ(second.request.segments, std::vector<std::string>{"b"});
}

TEST(HttpParse, PartialBodyIsHeadDoneWithExpectContinue) {
  Parsed p =
      Parse("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\nabc");
  EXPECT_EQ(p.state, ParseState::kHeadDone);
  EXPECT_TRUE(p.request.expects_continue);
}

TEST(HttpParse, BodyOverLimitIs413BeforeTheBodyArrives) {
  HttpLimits limits;
  limits.max_body_bytes = 100;
  Parsed p = Parse("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", limits);
  ASSERT_EQ(p.state, ParseState::kError);
  EXPECT_EQ(p.error.http_status, 413);
  EXPECT_NE(p.error.message.find("101"), std::string::npos);
}

TEST(HttpParse, LimitsOnRequestLineAndHead) {
  HttpLimits limits;
  limits.max_request_line = 64;
  limits.max_header_bytes = 256;
  limits.max_headers = 3;
  EXPECT_EQ(Parse("GET /" + std::string(100, 'a'), limits).error.http_status, 414);
  EXPECT_EQ(
      Parse("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(300, 'a'), limits).error.http_status,
      431);
  EXPECT_EQ(
      Parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits).error.http_status,
      431);
}

TEST(HttpParse, RejectsMalformedRequests) {
  struct Case {
    std::string text;
    int status;
  };
  std::vector<Case> cases = {
      {"GET / HTTP/1.1\r\n\r\n", 400},              // no Host
      {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},  // double space
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"GET / FTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET relative HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET /a?x=%2 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nNo colon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"PUT / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417},
  };
  for (const Case& c : cases) {
    Parsed p = Parse(c.text);
    EXPECT_EQ(p.state, ParseState::kError) << c.text;
    EXPECT_EQ(p.error.http_status, c.status) << c.text << ": " << p.error.message;
    EXPECT_FALSE(p.error.message.empty());
  }
}

TEST(HttpParse, ConnectionHandling) {
  EXPECT_FALSE(Parse("GET / HTTP/1.0\r\n\r\n").request.keep_alive);
  EXPECT_TRUE(Parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").request.keep_alive);
  EXPECT_FALSE(
      Parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: x, Close\r\n\r\n").request.keep_alive);
}

TEST(HttpParse, EncodedSlashStaysInsideItsSegment) {
  Parsed p = Parse("GET /a/..%2Fb/ HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.state, ParseState::kDone);
  EXPECT_EQ(p.request.segments, (std::vector<std::string>{"a", "../b", ""}));
}

TEST(HttpSerialize, WritesLengthAndConnection) {
  HttpResponse r;
  r.status = 404;
  r.body = "{}";
  r.headers.emplace_back("ETag", "\"3\"");
  std::string out;
  SerializeResponse(r, false, false, &out);
  EXPECT_EQ(out.rfind("HTTP/1.1 404 Not Found\r\nETag: \"3\"\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Content-Length: 2\r\n"), std::string::npos);
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - 6), "\r\n\r\n{}");
  std::string no_content;
  r.status = 204;
  SerializeResponse(r, true, false, &no_content);
  EXPECT_EQ(no_content.find("Content-Length"), std::string::npos);
  EXPECT_EQ(no_content.substr(no_content.size() - 4), "\r\n\r\n");
}

}  // namespace
}  // namespace imagesmith::server
