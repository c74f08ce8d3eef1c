// The ARM front end against a small provider of a test-only type
// (Test.Widgets/widgets): what the handler itself owes every request, whatever
// the provider (token, api-version, body, paging, ETag and async headers).
#include "server/handler.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "api/arm_error.h"

namespace imagesmith::server {
namespace {

const char kToken[] = "test-token-0123456789abcdef0123456789";
const char kBase[] = "/subscriptions/s/resourceGroups/g/providers/Test.Widgets/widgets";

class Widgets : public api::Provider {
 public:
  std::string_view Type() const override { return "Test.Widgets/widgets"; }
  std::vector<std::string> ApiVersions() const override { return {"2024-01-01", "2025-02-02"}; }

  StatusOr<api::Response> Put(api::Services&, const api::Request& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_caller = r.caller.principal.name;
    auto it = items_.find(r.id.name());
    if (r.if_match && (it == items_.end() || *r.if_match != Etag(it->second))) {
      return api::ArmStatus(StatusCode::kAborted, "PreconditionFailed", "If-Match differs");
    }
    bool created = it == items_.end();
    Item& item = items_[r.id.name()];
    ++item.generation;
    item.id = r.id.ToString();
    api::Response out;
    out.http_status = created ? 201 : 200;
    out.body = Body(item);
    out.etag = Etag(item);
    const Json* props = r.body.is_object() ? r.body.Find("properties") : nullptr;
    if (props != nullptr && props->is_object() && props->Find("async") != nullptr) {
      out.operation_id = "op-" + r.id.name();
      out.http_status = 202;
    }
    return out;
  }
  StatusOr<api::Response> Get(api::Services&, const api::Request& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = items_.find(r.id.name());
    if (it == items_.end()) return NotFoundError("no widget " + r.id.ToString());
    api::Response out;
    out.body = Body(it->second);
    out.etag = Etag(it->second);
    return out;
  }
  StatusOr<api::Response> Delete(api::Services&, const api::Request& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    api::Response out;
    out.http_status = items_.erase(r.id.name()) ? 200 : 204;
    return out;
  }
  StatusOr<api::Response> List(api::Services&, const api::Request&) override {
    std::lock_guard<std::mutex> lock(mu_);
    api::Response out;
    out.body = Json::MakeObject();
    Json value = Json::MakeArray();
    // Deliberately not in ID order: the server pages in a stable order anyway.
    for (auto it = items_.rbegin(); it != items_.rend(); ++it) value.Append(Body(it->second));
    out.body.Set("value", std::move(value));
    return out;
  }

  std::string last_caller;

 private:
  struct Item {
    std::string id;
    int generation = 0;
  };
  static std::string Etag(const Item& i) { return "\"" + std::to_string(i.generation) + "\""; }
  static Json Body(const Item& i) {
    Json b = Json::MakeObject();
    b.Set("id", Json::String(i.id));
    b.Set("location", Json::String("eastus"));
    return b;
  }
  std::mutex mu_;
  std::map<std::string, Item> items_;
};

class HandlerTest : public ::testing::Test {
 protected:
  HandlerTest() {
    char path[] = "/tmp/handler_test_log.XXXXXX";
    log_fd_ = ::mkstemp(path);
    log_path_ = path;
    log_ = std::make_unique<AccessLog>(log_fd_);
    auto widgets = std::make_unique<Widgets>();
    widgets_ = widgets.get();
    registry_.Add(std::move(widgets));
    HandlerOptions options;
    options.verify_token = [this](api::Services&,
                                  std::string_view token) -> StatusOr<auth::Principal> {
      ++verifications_;
      if (token != kToken) {
        return api::ArmStatus(StatusCode::kUnauthenticated, "InvalidAuthenticationToken",
                              "The access token is invalid.");
      }
      auth::Principal p;
      p.name = "tester";
      p.object_id = "00000000-0000-0000-0000-000000000001";
      return p;
    };
    options.operation_status = [](const std::string&, const std::string& id) -> StatusOr<Json> {
      if (id != "op-slow") return NotFoundError("no operation " + id);
      Json s = Json::MakeObject();
      s.Set("id", Json::String(id));
      s.Set("status", Json::String("InProgress"));
      return s;
    };
    options.max_page_size = 1000;
    pool_ =
        std::make_unique<ServicesPool>(services_, std::vector<std::unique_ptr<meta::MetaStore>>());
    handler_ = std::make_unique<ArmHandler>(registry_, *pool_, metrics_, *log_, options);
  }
  ~HandlerTest() override {
    ::close(log_fd_);
    ::unlink(log_path_.c_str());
  }

  HttpResponse Call(const std::string& method, const std::string& target,
                    const std::string& body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {},
                    ArmHandler* handler = nullptr) {
    std::string text = method + " " + target + " HTTP/1.1\r\nHost: example:1\r\n";
    headers.emplace_back("authorization", std::string("Bearer ") + kToken);
    for (const auto& [n, v] : headers) {
      if (!v.empty()) text += n + ": " + v + "\r\n";
    }
    text += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    HttpRequest request;
    size_t consumed;
    ParseError error;
    EXPECT_EQ(ParseRequest(text, HttpLimits(), &request, &consumed, &error), ParseState::kDone)
        << error.message;
    // A header given with an empty value means "leave it out".
    std::erase_if(request.headers, [&](const auto& h) {
      for (const auto& [n, v] : headers) {
        if (n == h.first && v.empty()) return true;
      }
      return false;
    });
    return (handler != nullptr ? handler : handler_.get())
        ->Handle(request, RequestInfo{"http", "127.0.0.1:1"});
  }
  static std::string Header(const HttpResponse& r, const std::string& name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return "";
  }
  static std::string Code(const HttpResponse& r) {
    auto body = ParseJson(r.body);
    if (!body.ok() || !body->is_object() || body->Find("error") == nullptr) return "";
    return body->Find("error")->Find("code")->string_value();
  }
  static std::string Message(const HttpResponse& r) {
    return ParseJson(r.body)->Find("error")->Find("message")->string_value();
  }

  api::Registry registry_;
  api::Services services_;
  std::unique_ptr<ServicesPool> pool_;
  Metrics metrics_;
  int log_fd_ = -1;
  std::string log_path_;
  std::unique_ptr<AccessLog> log_;
  Widgets* widgets_ = nullptr;
  int verifications_ = 0;
  std::unique_ptr<ArmHandler> handler_;
};

TEST_F(HandlerTest, RequiresAValidBearerToken) {
  HttpResponse missing =
      Call("GET", std::string(kBase) + "/a?api-version=2024-01-01", "", {{"authorization", ""}});
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(Code(missing), "AuthenticationFailed");
  EXPECT_NE(Header(missing, "WWW-Authenticate").find("Bearer"), std::string::npos);
  HttpResponse forged = Call("GET", std::string(kBase) + "/a?api-version=2024-01-01", "",
                             {{"authorization", "Bearer forged"}});
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(Code(forged), "InvalidAuthenticationToken");
  HttpResponse basic = Call("GET", std::string(kBase) + "/a?api-version=2024-01-01", "",
                            {{"authorization", "Basic dXNlcjpwdw=="}});
  EXPECT_EQ(basic.status, 401);
}

TEST_F(HandlerTest, AVerifiedTokenIsTrustedForAFewSecondsOnItsThread) {
  Call("GET", std::string(kBase) + "/a?api-version=2024-01-01");
  Call("GET", std::string(kBase) + "/a?api-version=2024-01-01");
  EXPECT_EQ(verifications_, 1);
  // A bad token is never cached: each try is verified (and refused).
  Call("GET", std::string(kBase) + "/a?api-version=2024-01-01", "",
       {{"authorization", "Bearer forged"}});
  Call("GET", std::string(kBase) + "/a?api-version=2024-01-01", "",
       {{"authorization", "Bearer forged"}});
  EXPECT_EQ(verifications_, 3);
}

TEST_F(HandlerTest, PassesThePrincipalToTheProvider) {
  EXPECT_EQ(Call("PUT", std::string(kBase) + "/a?api-version=2024-01-01", "{}").status, 201);
  EXPECT_EQ(widgets_->last_caller, "tester");
}

TEST_F(HandlerTest, ChecksApiVersion) {
  HttpResponse missing = Call("GET", std::string(kBase) + "/a");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(Code(missing), "MissingApiVersionParameter");
  HttpResponse wrong = Call("GET", std::string(kBase) + "/a?api-version=1999-01-01");
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(Code(wrong), "InvalidApiVersionParameter");
  EXPECT_NE(Message(wrong).find("2024-01-01, 2025-02-02"), std::string::npos) << Message(wrong);
}

TEST_F(HandlerTest, UnknownTypeIsInvalidResourceType) {
  HttpResponse r =
      Call("GET", "/subscriptions/s/resourceGroups/g/providers/No.Such/things/x?api-version=1");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "InvalidResourceType");
  HttpResponse route = Call("GET", "/nothing/here");
  EXPECT_EQ(route.status, 404);
  EXPECT_EQ(Code(route), "NotFound");
}

TEST_F(HandlerTest, MalformedJsonNamesThePosition) {
  HttpResponse r = Call("PUT", std::string(kBase) + "/a?api-version=2024-01-01",
                        "{\n  \"location\": eastus\n}", {{"content-type", "application/json"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "InvalidRequestContent");
  EXPECT_NE(Message(r).find("line 2, column 15"), std::string::npos) << Message(r);
  HttpResponse xml = Call("PUT", std::string(kBase) + "/a?api-version=2024-01-01", "<a/>",
                          {{"content-type", "application/xml"}});
  EXPECT_EQ(xml.status, 400);
  EXPECT_EQ(Code(xml), "UnsupportedMediaType");
}

TEST_F(HandlerTest, EtagOutAndPreconditionsIn) {
  HttpResponse created = Call("PUT", std::string(kBase) + "/a?api-version=2024-01-01", "{}");
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(Header(created, "ETag"), "\"1\"");
  HttpResponse got = Call("GET", std::string(kBase) + "/a?api-version=2024-01-01");
  EXPECT_EQ(Header(got, "ETag"), "\"1\"");
  HttpResponse stale =
      Call("PUT", std::string(kBase) + "/a?api-version=2024-01-01", "{}", {{"if-match", "\"7\""}});
  EXPECT_EQ(stale.status, 412);
  EXPECT_EQ(Code(stale), "PreconditionFailed");
  HttpResponse fresh =
      Call("PUT", std::string(kBase) + "/a?api-version=2024-01-01", "{}", {{"if-match", "\"1\""}});
  EXPECT_EQ(fresh.status, 200);
  EXPECT_EQ(Header(fresh, "ETag"), "\"2\"");
}

TEST_F(HandlerTest, AsyncResponsesPointAtTheOperation) {
  HttpResponse r = Call("PUT", std::string(kBase) + "/slow?api-version=2024-01-01",
                        R"({"properties": {"async": true}})");
  EXPECT_EQ(r.status, 202);
  std::string async = Header(r, "Azure-AsyncOperation");
  EXPECT_EQ(async,
            "http://example:1/subscriptions/s/providers/Microsoft.VirtualMachineImages/locations/"
            "eastus/operations/op-slow?api-version=2024-01-01");
  EXPECT_NE(Header(r, "Location").find("/operationResults/op-slow"), std::string::npos);
  std::string path = async.substr(std::string("http://example:1").size());
  HttpResponse status = Call("GET", path);
  EXPECT_EQ(status.status, 200);
  EXPECT_EQ(ParseJson(status.body)->Find("status")->string_value(), "InProgress");
  std::string result = Header(r, "Location").substr(std::string("http://example:1").size());
  EXPECT_EQ(Call("GET", result).status, 202);
  EXPECT_EQ(Call("GET",
                 "/subscriptions/s/providers/Microsoft.VirtualMachineImages/locations/"
                 "eastus/operations/nope?api-version=2024-01-01")
                .status,
            404);
}

TEST_F(HandlerTest, PagesAreStableAcrossChanges) {
  for (int i = 0; i < 25; ++i) {
    char name[8];
    std::snprintf(name, sizeof(name), "w%02d", i);
    ASSERT_EQ(Call("PUT", std::string(kBase) + "/" + name + "?api-version=2024-01-01", "{}").status,
              201);
  }
  std::vector<std::string> seen;
  std::string next = std::string(kBase) + "?api-version=2024-01-01&$top=10";
  int pages = 0;
  while (!next.empty()) {
    HttpResponse r = Call("GET", next);
    ASSERT_EQ(r.status, 200) << r.body;
    Json body = *ParseJson(r.body);
    for (const Json& item : body.Find("value")->array_items()) {
      seen.push_back(item.Find("id")->string_value());
    }
    const Json* link = body.Find("nextLink");
    next =
        link == nullptr ? "" : link->string_value().substr(std::string("http://example:1").size());
    if (++pages == 1) {
      // Deleting an item already returned moves nothing on later pages.
      ASSERT_EQ(Call("DELETE", std::string(kBase) + "/w03?api-version=2024-01-01").status, 200);
    }
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 25u);
  for (int i = 0; i < 25; ++i) {
    char name[8];
    std::snprintf(name, sizeof(name), "w%02d", i);
    EXPECT_EQ(seen[i], std::string(kBase) + "/" + name);
  }
  HttpResponse bad_top = Call("GET", std::string(kBase) + "?api-version=2024-01-01&$top=0");
  EXPECT_EQ(bad_top.status, 400);
  HttpResponse bad_token =
      Call("GET", std::string(kBase) + "?api-version=2024-01-01&$skipToken=%25");
  EXPECT_EQ(bad_token.status, 400);
}

TEST_F(HandlerTest, AccessLogHasNoTokenAndMetricsUseTemplates) {
  Call("PUT", std::string(kBase) + "/logged?api-version=2024-01-01", "{}");
  Call("GET", std::string(kBase) + "/missing?api-version=2024-01-01");
  std::string log;
  char buf[4096];
  ssize_t n;
  ::lseek(log_fd_, 0, SEEK_SET);
  while ((n = ::read(log_fd_, buf, sizeof(buf))) > 0) log.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(log.find(kToken), std::string::npos);
  size_t lines = 0;
  for (size_t pos = 0; (pos = log.find('\n', pos)) != std::string::npos; ++pos) ++lines;
  EXPECT_EQ(lines, 2u);
  auto first = ParseJson(log.substr(0, log.find('\n')));
  ASSERT_TRUE(first.ok()) << log;
  EXPECT_EQ(first->Find("status")->AsInt64(), 201);
  EXPECT_EQ(first->Find("principal")->string_value(), "00000000-0000-0000-0000-000000000001");
  EXPECT_EQ(first->Find("route")->string_value(),
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
            "Test.Widgets/widgets/{name}");
  std::string metrics = metrics_.Render();
  EXPECT_NE(metrics.find("imagesmith_http_requests_total{method=\"GET\",route=\"/subscriptions/"
                         "{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
                         "Test.Widgets/widgets/{name}\",code=\"404\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("missing"), std::string::npos);
}

TEST_F(HandlerTest, TheConsoleIsServedOnlyWhenAskedGzippedWhenAccepted) {
  // The fixture's handler does not serve it.
  EXPECT_EQ(Call("GET", "/").status, 404);
  HandlerOptions options;
  options.verify_token = [](api::Services&, std::string_view) -> StatusOr<auth::Principal> {
    return auth::Principal{};
  };
  options.serve_console = true;
  ArmHandler console(registry_, *pool_, metrics_, *log_, options);
  HttpResponse page = Call("GET", "/", "", {{"authorization", ""}}, &console);
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("console/app.js"), std::string::npos);
  EXPECT_EQ(Header(page, "Content-Encoding"), "");
  EXPECT_NE(Header(page, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  HttpResponse js =
      Call("GET", "/console/app.js", "",
           {{"authorization", ""}, {"accept-encoding", "gzip, deflate, br"}}, &console);
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Header(js, "Content-Encoding"), "gzip");
  ASSERT_GE(js.body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(js.body[0]), 0x1f);  // the gzip magic
  EXPECT_EQ(static_cast<unsigned char>(js.body[1]), 0x8b);
  EXPECT_EQ(Header(js, "Vary"), "Accept-Encoding");
  HttpResponse none = Call("GET", "/console/secret.txt", "", {{"authorization", ""}}, &console);
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(Code(none), "NotFound");
  EXPECT_EQ(Call("POST", "/", "", {{"authorization", ""}}, &console).status, 405);
  // ARM paths still go to the providers.
  EXPECT_EQ(Call("GET", std::string(kBase) + "?api-version=2024-01-01", "", {}, &console).status,
            200);
}

TEST_F(HandlerTest, DownloadsAFileWholeOrByRangeWithTheTokenInTheHeaderOrTheQuery) {
  char tmpl[] = "/tmp/handler_test_download.XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  const std::string data = "0123456789abcdefghijklmnopqrstuvwxyz";
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::close(fd);
  HandlerOptions options;
  options.verify_token = [](api::Services&, std::string_view token) -> StatusOr<auth::Principal> {
    if (token != kToken) {
      return api::ArmStatus(StatusCode::kUnauthenticated, "InvalidAuthenticationToken",
                            "The access token is invalid.");
    }
    auth::Principal p;
    p.name = "tester";
    return p;
  };
  std::string path = tmpl;
  options.download =
      [&](api::Services&, const api::Caller&, const ResourceId& id,
          const std::map<std::string, std::string>& params) -> StatusOr<DownloadTarget> {
    if (id.name() == "secret") {
      return api::ArmStatus(StatusCode::kPermissionDenied, "AuthorizationFailed", "no");
    }
    EXPECT_EQ(params.count("access_token"), 0u);
    return DownloadTarget{path, "w1 \"disk\".raw"};
  };
  ArmHandler h(registry_, *pool_, metrics_, *log_, options);
  const std::string url = std::string(kBase) + "/w1/download?api-version=2024-01-01";
  auto read = [](const HttpResponse& r) {
    std::string out(r.file_body->length, '\0');
    EXPECT_EQ(
        ::pread(r.file_body->fd, out.data(), out.size(), static_cast<off_t>(r.file_body->offset)),
        static_cast<ssize_t>(out.size()));
    return out;
  };
  HttpResponse whole = Call("GET", url, "", {}, &h);
  ASSERT_EQ(whole.status, 200) << whole.body;
  ASSERT_NE(whole.file_body, nullptr);
  EXPECT_EQ(read(whole), data);
  EXPECT_EQ(whole.content_type, "application/octet-stream");
  EXPECT_EQ(Header(whole, "Accept-Ranges"), "bytes");
  EXPECT_EQ(Header(whole, "Content-Disposition"), "attachment; filename=\"w1__disk_.raw\"");
  std::string wire;
  SerializeResponse(whole, true, false, &wire);
  EXPECT_NE(wire.find("Content-Length: 36\r\n"), std::string::npos) << wire;

  HttpResponse part = Call("GET", url, "", {{"range", "bytes=10-19"}}, &h);
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(Header(part, "Content-Range"), "bytes 10-19/36");
  EXPECT_EQ(read(part), "abcdefghij");
  EXPECT_EQ(read(Call("GET", url, "", {{"range", "bytes=-4"}}, &h)), "wxyz");
  EXPECT_EQ(read(Call("GET", url, "", {{"range", "bytes=30-"}}, &h)), "uvwxyz");
  EXPECT_EQ(read(Call("GET", url, "", {{"range", "bytes=30-99"}}, &h)), "uvwxyz");
  // Several ranges: the whole file (RFC 9110 lets a server ignore Range).
  EXPECT_EQ(Call("GET", url, "", {{"range", "bytes=0-1,4-5"}}, &h).status, 200);
  HttpResponse outside = Call("GET", url, "", {{"range", "bytes=36-"}}, &h);
  EXPECT_EQ(outside.status, 416);
  EXPECT_EQ(Header(outside, "Content-Range"), "bytes */36");
  EXPECT_EQ(outside.file_body, nullptr);

  // A link carries the token in the query (RFC 6750); only downloads take it.
  HttpResponse linked =
      Call("GET", url + "&access_token=" + kToken, "", {{"authorization", ""}}, &h);
  EXPECT_EQ(linked.status, 200) << linked.body;
  EXPECT_EQ(Call("GET", url + "&access_token=wrong", "", {{"authorization", ""}}, &h).status, 401);
  EXPECT_EQ(Call("GET", std::string(kBase) + "/w1?api-version=2024-01-01&access_token=" + kToken,
                 "", {{"authorization", ""}}, &h)
                .status,
            401);
  EXPECT_EQ(Call("GET", url, "", {{"authorization", ""}}, &h).status, 401);
  // What the resolver refuses, a missing api-version, a method other than GET/HEAD.
  HttpResponse denied =
      Call("GET", std::string(kBase) + "/secret/download?api-version=2024-01-01", "", {}, &h);
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(Code(denied), "AuthorizationFailed");
  EXPECT_EQ(Call("GET", std::string(kBase) + "/w1/download", "", {}, &h).status, 400);
  EXPECT_EQ(Call("POST", url, "", {}, &h).status, 405);
  // Without a resolver (a server built without the gallery layer): 404.
  EXPECT_EQ(Call("GET", url).status, 404);
  ::unlink(tmpl);
}

}  // namespace
}  // namespace imagesmith::server
