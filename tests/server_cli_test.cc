// imagesmith serve end to end: the real binary on port 0, driven over HTTP
// with raw sockets (server/test_client.h) and curl (TLS).
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <thread>

#include "base/json.h"
#include "e2e_util.h"
#include "serve_util.h"
#include "server/test_client.h"

namespace imagesmith::e2e {
namespace {

using server::testing::ClientResponse;
using server::testing::Request;
using server::testing::TestConnection;

std::string Auth(const std::string& home) { return "Authorization: Bearer " + OwnerToken(home); }

std::string ErrorCode(const ClientResponse& r) {
  auto body = ParseJson(r.body);
  if (!body.ok() || !body->is_object()) return "";
  const Json* e = body->Find("error");
  if (e == nullptr) return "";
  if (e->is_string()) return e->string_value();
  const Json* code = e->Find("code");
  return code != nullptr && code->is_string() ? code->string_value() : "";
}

TEST(Serve, PrintsItsAddressAndAnswersHealthz) {
  std::string home = MakeTempDir();
  ServeProcess serve(home);
  ASSERT_TRUE(serve.ok()) << serve.ready_line() << serve.Stderr();
  auto ready = ParseJson(serve.ready_line());
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->Find("url")->string_value(), "http://" + serve.address());
  EXPECT_FALSE(ready->Find("tls")->bool_value());
  auto r = Request(serve.address(), "GET", "/healthz");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"status":"ok"})");
}

TEST(Serve, RefusesMissingForgedAndMalformedTokens) {
  std::string home = MakeTempDir();
  ServeProcess serve(home);
  ASSERT_TRUE(serve.ok()) << serve.Stderr();
  std::string path = "/subscriptions/00000000-0000-0000-0000-000000000000";
  for (const std::vector<std::string>& headers : {std::vector<std::string>{},
                                                  {"Authorization: Bearer forged.token.value"},
                                                  {"Authorization: Basic b3duZXI6cHc="},
                                                  {"Authorization: Bearer "}}) {
    auto r = Request(serve.address(), "GET", path + "?api-version=2021-04-01", "", headers);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401) << r->body;
    std::string code = ErrorCode(*r);
    EXPECT_TRUE(code == "AuthenticationFailed" || code == "InvalidAuthenticationToken") << code;
  }
  auto ok = Request(serve.address(), "GET", path + "?api-version=2021-04-01", "", {Auth(home)});
  ASSERT_TRUE(ok.ok());
  EXPECT_NE(ok->status, 401) << ok->body;
}

TEST(Serve, BadInputGetsArmErrors) {
  std::string home = MakeTempDir();
  ServeProcess serve(home, {"--max-body-mib", "1"});
  ASSERT_TRUE(serve.ok()) << serve.Stderr();
  std::string g = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/";
  auto dotdot = Request(serve.address(), "GET", g + "..?api-version=2024-03-03", "", {Auth(home)});
  EXPECT_EQ(dotdot->status, 400);
  EXPECT_EQ(ErrorCode(*dotdot), "InvalidResourceName");
  auto slash =
      Request(serve.address(), "GET", g + "a%2Fb?api-version=2024-03-03", "", {Auth(home)});
  EXPECT_EQ(slash->status, 400);
  EXPECT_EQ(ErrorCode(*slash), "InvalidResourceName");
  auto control =
      Request(serve.address(), "GET", g + "a%01?api-version=2024-03-03", "", {Auth(home)});
  EXPECT_EQ(control->status, 400);
  auto unknown = Request(serve.address(), "GET", "/nothing", "", {Auth(home)});
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(ErrorCode(*unknown), "NotFound");
  auto method =
      Request(serve.address(), "POST", "/subscriptions/s/resourceGroups/g", "{}", {Auth(home)});
  EXPECT_EQ(method->status, 405);
  auto big = Request(serve.address(), "PUT", g + "big?api-version=2024-03-03",
                     std::string(2 * 1024 * 1024, ' '), {Auth(home)});
  ASSERT_TRUE(big.ok()) << big.status().message();
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(ErrorCode(*big), "RequestEntityTooLarge");
  auto te = Request(serve.address(), "PUT", g + "x?api-version=2024-03-03", "",
                    {Auth(home), "Transfer-Encoding: chunked"});
  EXPECT_EQ(te->status, 501);
}

TEST(Serve, SigtermLetsTheRequestInFlightFinish) {
  std::string home = MakeTempDir();
  ServeProcess serve(home);
  ASSERT_TRUE(serve.ok()) << serve.Stderr();
  auto c = TestConnection::Connect(serve.address());
  ASSERT_TRUE(c.ok());
  std::string body = R"({"location": "eastus"})";
  std::string head =
      "PUT /subscriptions/s/resourceGroups/inflight?api-version=2021-04-01 "
      "HTTP/1.1\r\nHost: x\r\n" +
      Auth(home) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  // Half of the request, then SIGTERM, then the rest: the answer still comes.
  ASSERT_TRUE(c->Send(head + body.substr(0, 5)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  serve.Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(serve.Wait(10), -1) << "exited with a request in flight";
  ASSERT_TRUE(c->Send(body.substr(5)).ok());
  auto r = c->Read();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_NE(r->status, 0);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_EQ(serve.Wait(), 0) << serve.Stderr();
  EXPECT_NE(serve.Stderr().find("stopped"), std::string::npos);
  // Nothing listens any more.
  EXPECT_FALSE(TestConnection::Connect(serve.address()).ok());
}

TEST(Serve, ServesHttpsWithACertificateFromOpensslReq) {
  std::string home = MakeTempDir();
  std::string cert = home + "/cert.pem", key = home + "/key.pem";
  std::string gen =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(std::system(gen.c_str()), 0);
  ServeProcess serve(home, {"--tls-cert", cert, "--tls-key", key});
  ASSERT_TRUE(serve.ok()) << serve.Stderr();
  EXPECT_NE(serve.ready_line().find("\"url\":\"https://"), std::string::npos);
  std::string out = home + "/curl.out";
  std::string curl = "curl -sS --cacert " + cert + " -o " + out + " -w '%{http_code}' https://" +
                     serve.address() + "/healthz > " + home + "/code";
  ASSERT_EQ(std::system(curl.c_str()), 0);
  EXPECT_EQ(ReadOrEmpty(home + "/code"), "200");
  EXPECT_EQ(ReadOrEmpty(out), R"({"status":"ok"})");
  // Keep-alive over TLS: two requests on one connection (curl reuses it).
  std::string two = "curl -sS --cacert " + cert + " -H '" + Auth(home) + "' -o /dev/null -o " +
                    out + " -w '%{num_connects} ' https://" + serve.address() +
                    "/healthz https://" + serve.address() + "/metrics > " + home + "/conns";
  ASSERT_EQ(std::system(two.c_str()), 0);
  EXPECT_EQ(ReadOrEmpty(home + "/conns"), "1 0 ");
  // Plain HTTP to the TLS port gets no HTTP answer.
  auto plain = Request(serve.address(), "GET", "/healthz");
  EXPECT_TRUE(!plain.ok() || plain->status != 200);
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.Wait(), 0);
}

TEST(Serve, AccessLogIsJsonWithoutTokens) {
  std::string home = MakeTempDir();
  std::string log = home + "/access.log";
  ServeProcess serve(home, {"--access-log", log});
  ASSERT_TRUE(serve.ok()) << serve.Stderr();
  ASSERT_TRUE(Request(serve.address(), "GET", "/healthz").ok());
  ASSERT_TRUE(
      Request(serve.address(), "GET", "/subscriptions/s?api-version=2021-04-01", "", {Auth(home)})
          .ok());
  ASSERT_TRUE(Request(serve.address(), "POST", "/tenant/oauth2/v2.0/token",
                      "grant_type=client_credentials&client_id=a&client_secret=TOPSECRET",
                      {"Content-Type: application/x-www-form-urlencoded"})
                  .ok());
  serve.Signal(SIGTERM);
  ASSERT_EQ(serve.Wait(), 0);
  std::string text = ReadOrEmpty(log);
  EXPECT_EQ(text.find(OwnerToken(home)), std::string::npos);
  EXPECT_EQ(text.find("TOPSECRET"), std::string::npos);
  int lines = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    auto line = ParseJson(text.substr(pos, end - pos));
    ASSERT_TRUE(line.ok()) << text.substr(pos, end - pos);
    for (const char* field : {"time", "method", "route", "status", "durationMs", "principal"}) {
      EXPECT_NE(line->Find(field), nullptr) << field;
    }
    ++lines;
    pos = end + 1;
  }
  EXPECT_EQ(lines, 3);
}

TEST(Serve, MetricsCountRequestsByRouteAndCode) {
  std::string home = MakeTempDir();
  ServeProcess serve(home, {"--access-log", "off"});
  ASSERT_TRUE(serve.ok());
  ASSERT_TRUE(Request(serve.address(), "GET", "/healthz").ok());
  auto m = Request(serve.address(), "GET", "/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(m->body.find("imagesmith_http_requests_total{method=\"GET\",route=\"/healthz\","
                         "code=\"200\"} 1"),
            std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("imagesmith_http_request_duration_seconds_bucket{method=\"GET\","
                         "route=\"/healthz\",le=\"+Inf\"} 1"),
            std::string::npos);
  EXPECT_NE(m->body.find("# TYPE imagesmith_store_bytes gauge"), std::string::npos);
}

// Every path in the checked-in OpenAPI document answers: the route exists
// and a provider owns its type. Calls it with a wrong api-version, which only
// a route with a provider can refuse as InvalidApiVersionParameter.
TEST(Serve, EveryOpenApiPathAnswers) {
  std::string home = MakeTempDir();
  ServeProcess serve(home, {"--access-log", "off"});
  ASSERT_TRUE(serve.ok());
  auto served = Request(serve.address(), "GET", "/openapi.json");
  ASSERT_TRUE(served.ok());
  EXPECT_EQ(served->body, ReadOrEmpty(SourceDir() + "/src/server/openapi.json"));
  auto doc = ParseJson(served->body);
  ASSERT_TRUE(doc.ok());
  int checked = 0;
  for (const JsonMember& path : doc->Find("paths")->object_items()) {
    std::string p = path.key;
    for (std::string::size_type open; (open = p.find('{')) != std::string::npos;) {
      std::string name = p.substr(open + 1, p.find('}', open) - open - 1);
      std::string value = name == "galleryImageVersionName" ? "1.0.0" : "x" + name;
      if (name == "subscriptionId") value = "00000000-0000-0000-0000-000000000000";
      p.replace(open, name.size() + 2, value);
    }
    for (const JsonMember& op : path.value.object_items()) {
      std::string method = op.key;
      for (char& ch : method) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      bool arm = p.rfind("/subscriptions/", 0) == 0;
      std::string target = arm ? p + "?api-version=1900-01-01" : p;
      auto r = Request(serve.address(), method, target,
                       method == "GET" || method == "DELETE" ? "" : "{}",
                       {Auth(home), "Content-Type: application/json"});
      ASSERT_TRUE(r.ok()) << method << " " << target;
      std::string code = ErrorCode(*r);
      EXPECT_NE(code, "NotFound") << method << " " << target << ": " << r->body;
      EXPECT_NE(code, "InvalidResourceType") << method << " " << target << ": " << r->body;
      EXPECT_NE(r->status, 405) << method << " " << target << ": " << r->body;
      if (arm && target.find("/operations") == std::string::npos &&
          target.find("/operationResults") == std::string::npos) {
        EXPECT_EQ(code, "InvalidApiVersionParameter") << method << " " << target << ": " << r->body;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);
}

}  // namespace
}  // namespace imagesmith::e2e
