// Galleries through `imagesmith serve`: the resource providers behind HTTP,
// end to end with the real binary.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "base/env.h"
#include "base/json.h"
#include "e2e_util.h"
#include "serve_util.h"
#include "server/test_client.h"

namespace imagesmith::e2e {
namespace {

using server::testing::ClientResponse;
using server::testing::Request;

class ServeGalleryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = MakeTempDir();
    serve_ = std::make_unique<ServeProcess>(home_, std::vector<std::string>{"--access-log", "off"});
    ASSERT_TRUE(serve_->ok()) << serve_->Stderr();
    auto sub = RunCli({"account", "show"}, "", {{"IMAGESMITH_HOME", home_}});
    ASSERT_EQ(sub.exit_code, 0) << sub.err;
    sub_ = ParseJson(sub.out)->Find("id")->string_value();
    auth_ = "Authorization: Bearer " + OwnerToken(home_);
  }
  ClientResponse Call(const std::string& method, const std::string& path,
                      const std::string& body = "", std::vector<std::string> headers = {}) {
    headers.push_back(auth_);
    headers.push_back("Content-Type: application/json");
    auto r = Request(serve_->address(), method, path, body, headers);
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.status().message();
    return r.ok() ? *r : ClientResponse();
  }
  std::string Group() const { return "/subscriptions/" + sub_ + "/resourceGroups/rg"; }
  std::string Gallery() const { return Group() + "/providers/Microsoft.Compute/galleries/gal"; }
  static std::string Code(const ClientResponse& r) {
    auto b = ParseJson(r.body);
    if (!b.ok() || !b->is_object() || b->Find("error") == nullptr) return "";
    return b->Find("error")->Find("code")->string_value();
  }

  std::string home_, sub_, auth_;
  std::unique_ptr<ServeProcess> serve_;
};

const char kGalleryVersion[] = "?api-version=2024-03-03";

TEST_F(ServeGalleryTest, PutGetListDeleteAGallery) {
  ASSERT_EQ(Call("PUT", Group() + "?api-version=2021-04-01", R"({"location": "eastus"})").status,
            201);
  ClientResponse created =
      Call("PUT", Gallery() + kGalleryVersion,
           R"({"location": "eastus", "properties": {"description": "made over HTTP"}})");
  ASSERT_EQ(created.status, 201) << created.body;
  std::string etag = created.Header("etag");
  EXPECT_FALSE(etag.empty());
  ClientResponse got = Call("GET", Gallery() + kGalleryVersion);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.Header("etag"), etag);
  auto body = ParseJson(got.body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->Find("name")->string_value(), "gal");
  EXPECT_EQ(body->Find("properties")->Find("description")->string_value(), "made over HTTP");

  // Conditional requests.
  EXPECT_EQ(Call("PUT", Gallery() + kGalleryVersion, "{}", {"If-None-Match: *"}).status, 412);
  EXPECT_EQ(Call("DELETE", Gallery() + kGalleryVersion, "", {"If-Match: \"999\""}).status, 412);

  // Lists at group and subscription scope.
  for (const std::string& scope : {Group(), "/subscriptions/" + sub_}) {
    ClientResponse list =
        Call("GET", scope + "/providers/Microsoft.Compute/galleries" + kGalleryVersion);
    ASSERT_EQ(list.status, 200) << list.body;
    auto items = ParseJson(list.body)->Find("value")->array_items();
    ASSERT_EQ(items.size(), 1u) << list.body;
    EXPECT_EQ(items[0].Find("name")->string_value(), "gal");
  }
  ClientResponse wrong = Call("GET", Gallery() + "?api-version=2015-01-01");
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(Code(wrong), "InvalidApiVersionParameter");
  ClientResponse bad_json = Call("PUT", Gallery() + kGalleryVersion, "{\"location\": }");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(Code(bad_json), "InvalidRequestContent");

  ClientResponse deleted = Call("DELETE", Gallery() + kGalleryVersion, "", {"If-Match: " + etag});
  EXPECT_EQ(deleted.status, 200) << deleted.body;
  ClientResponse gone = Call("GET", Gallery() + kGalleryVersion);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(Code(gone), "ResourceNotFound");
  EXPECT_EQ(Call("DELETE", Gallery() + kGalleryVersion).status, 204);
}

// 50 clients PUT 50 different versions of one definition at the same time:
// each is created exactly once and nobody sees a database-busy error.
TEST_F(ServeGalleryTest, FiftyParallelVersionPutsEachCreatedOnce) {
  std::string disk = home_ + "/disk.raw";
  {
    std::ofstream f(disk, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = static_cast<char>('a' + i % 26);
    for (int i = 0; i < 4; ++i) f << block;
  }
  ASSERT_EQ(Call("PUT", Group() + "?api-version=2021-04-01", R"({"location": "eastus"})").status,
            201);
  ASSERT_EQ(Call("PUT", Gallery() + kGalleryVersion, R"({"location": "eastus"})").status, 201);
  std::string definition = Gallery() + "/images/deb";
  ClientResponse def = Call("PUT", definition + kGalleryVersion,
                            R"({"location": "eastus", "properties": {"identifier": {"publisher":
                            "Contoso", "offer": "Debian", "sku": "12"}, "osType": "Linux",
                            "hyperVGeneration": "V2"}})");
  ASSERT_EQ(def.status, 201) << def.body;
  std::string image = Group() + "/providers/Microsoft.Compute/images/img";
  ClientResponse img = Call("PUT", image + "?api-version=2024-03-01",
                            R"({"location": "eastus", "properties": {"hyperVGeneration": "V2",
                            "storageProfile": {"osDisk": {"osType": "Linux", "blobUri": "file://)" +
                                disk + R"("}}}})");
  ASSERT_EQ(img.status, 201) << img.body;

  constexpr int kClients = 50;
  std::vector<ClientResponse> results(kClients);
  std::vector<std::thread> threads;
  std::string body = R"({"location": "eastus", "properties": {"publishingProfile":
      {"targetRegions": [{"name": "eastus"}]}, "storageProfile": {"source": {"id": ")" +
                     image + R"("}}}})";
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto r = Request(serve_->address(), "PUT",
                       definition + "/versions/1.0." + std::to_string(i) + kGalleryVersion, body,
                       {auth_, "Content-Type: application/json", "If-None-Match: *"});
      if (r.ok()) results[i] = *r;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_TRUE(results[i].status == 200 || results[i].status == 201 || results[i].status == 202)
        << "1.0." << i << ": " << results[i].status << " " << results[i].body;
    EXPECT_EQ(results[i].body.find("busy"), std::string::npos) << results[i].body;
    EXPECT_EQ(results[i].body.find("locked"), std::string::npos) << results[i].body;
  }
  // Every version once, read back through paging (20 a page).
  std::set<std::string> names;
  std::string next = definition + "/versions" + kGalleryVersion + "&$top=20";
  int pages = 0;
  while (!next.empty() && pages < 10) {
    ClientResponse page = Call("GET", next);
    ASSERT_EQ(page.status, 200) << page.body;
    auto b = ParseJson(page.body);
    for (const Json& v : b->Find("value")->array_items()) {
      EXPECT_TRUE(names.insert(v.Find("name")->string_value()).second)
          << "listed twice: " << v.Find("name")->string_value();
    }
    const Json* link = b->Find("nextLink");
    next = link == nullptr
               ? ""
               : link->string_value().substr(link->string_value().find("/subscriptions/"));
    ++pages;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names.size(), static_cast<size_t>(kClients));
  // Exactly once: creating any of them again is refused.
  ClientResponse again =
      Call("PUT", definition + "/versions/1.0.7" + kGalleryVersion, body, {"If-None-Match: *"});
  EXPECT_EQ(again.status, 412) << again.body;
}

}  // namespace
}  // namespace imagesmith::e2e

namespace imagesmith::e2e {
namespace {

// A service principal with Reader, signed in through the token endpoint, can
// read through the server but not write (403 AuthorizationFailed naming the
// action); forged and garbage tokens are 401.
TEST_F(ServeGalleryTest, ReaderTokenFromTheTokenEndpointReadsButCannotWrite) {
  ASSERT_EQ(Call("PUT", Group() + "?api-version=2021-04-01", R"({"location": "eastus"})").status,
            201);
  ASSERT_EQ(Call("PUT", Gallery() + kGalleryVersion, R"({"location": "eastus"})").status, 201);
  CliResult sp = RunCli({"ad", "sp", "create-for-rbac", "--name", "reader", "--role", "Reader",
                         "--scopes", "/subscriptions/" + sub_},
                        "", {{"IMAGESMITH_HOME", home_}});
  ASSERT_EQ(sp.exit_code, 0) << sp.err;
  auto creds = ParseJson(sp.out);
  ASSERT_TRUE(creds.ok()) << sp.out;
  std::string tenant = creds->Find("tenant")->string_value();
  auto token =
      Request(serve_->address(), "POST", "/" + tenant + "/oauth2/v2.0/token",
              "grant_type=client_credentials&client_id=" + creds->Find("appId")->string_value() +
                  "&client_secret=" + creds->Find("password")->string_value() +
                  "&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
              {"Content-Type: application/x-www-form-urlencoded"});
  ASSERT_TRUE(token.ok());
  ASSERT_EQ(token->status, 200) << token->body;
  std::string bearer =
      "Authorization: Bearer " + ParseJson(token->body)->Find("access_token")->string_value();
  auto read = Request(serve_->address(), "GET", Gallery() + kGalleryVersion, "", {bearer});
  EXPECT_EQ(read->status, 200) << read->body;
  auto write = Request(serve_->address(), "PUT", Gallery() + kGalleryVersion,
                       R"({"location": "eastus", "tags": {"by": "reader"}})",
                       {bearer, "Content-Type: application/json"});
  EXPECT_EQ(write->status, 403) << write->body;
  EXPECT_EQ(Code(*write), "AuthorizationFailed");
  EXPECT_NE(write->body.find("Microsoft.Compute/galleries/write"), std::string::npos)
      << write->body;
  // A wrong secret gets Entra's invalid_client; a forged token 401.
  auto bad =
      Request(serve_->address(), "POST", "/" + tenant + "/oauth2/v2.0/token",
              "grant_type=client_credentials&client_id=" + creds->Find("appId")->string_value() +
                  "&client_secret=wrong&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
              {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(bad->status, 401) << bad->body;
  std::string forged = bearer.substr(0, bearer.size() - 4) + "AAAA";
  auto denied = Request(serve_->address(), "GET", Gallery() + kGalleryVersion, "", {forged});
  EXPECT_EQ(denied->status, 401) << denied->body;
}

TEST_F(ServeGalleryTest, DownloadsAnImagesAndAVersionsDiskByRangeForWhoMayReadThem) {
  const std::map<std::string, std::string> env = {{"IMAGESMITH_HOME", home_}};
  auto cli = [&](const std::vector<std::string>& args) {
    CliResult r = RunCli(args, "", env);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << args[1] << ": " << r.err;
    return r;
  };
  // An imported disk: its export in raw format gives back its bytes.
  std::string data(4 << 20, '\0');
  for (size_t i = 0; i < data.size(); i += 512) data[i] = static_cast<char>('a' + (i / 512) % 26);
  std::ofstream(home_ + "/in.raw", std::ios::binary) << data;
  cli({"group", "create", "-n", "rg", "-l", "eastus"});
  cli({"group", "create", "-n", "other", "-l", "eastus"});
  cli({"image", "create", "-g", "rg", "-n", "img", "--source", home_ + "/in.raw", "--os-type",
       "Linux"});
  cli({"sig", "create", "-g", "rg", "-r", "gal"});
  cli({"sig", "image-definition", "create", "-g", "rg", "-r", "gal", "-i", "deb", "--publisher",
       "P", "--offer", "O", "--sku", "S", "--os-type", "Linux"});
  cli({"sig", "image-version", "create", "-g", "rg", "-r", "gal", "-i", "deb", "-e", "1.0.0",
       "--managed-image", "img"});
  auto token_of = [&](const std::string& name, const std::string& scope) {
    auto sp = ParseJson(
        cli({"ad", "sp", "create-for-rbac", "--name", name, "--role", "Reader", "--scopes", scope})
            .out);
    EXPECT_TRUE(sp.ok());
    auto t = ParseJson(
        cli({"account", "get-access-token", "--service-principal", "-u",
             sp->Find("appId")->string_value(), "-p", sp->Find("password")->string_value()})
            .out);
    return t->Find("accessToken")->string_value();
  };
  const std::string reader = token_of("reader", Group());
  const std::string stranger =
      token_of("stranger", "/subscriptions/" + sub_ + "/resourceGroups/other");
  const std::string image = Group() + "/providers/Microsoft.Compute/images/img/download";
  const std::string version = Gallery() + "/images/deb/versions/1.0.0/download";
  auto get = [&](const std::string& target, const std::string& token,
                 std::vector<std::string> headers = {}) {
    if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
    auto r = Request(serve_->address(), "GET", target, "", headers);
    EXPECT_TRUE(r.ok()) << target;
    return r.ok() ? *r : ClientResponse();
  };

  ClientResponse raw = get(image + "?api-version=2024-03-01&format=raw", reader);
  ASSERT_EQ(raw.status, 200) << raw.body.substr(0, 300);
  EXPECT_EQ(raw.Header("content-length"), std::to_string(data.size()));
  EXPECT_EQ(raw.Header("content-type"), "application/octet-stream");
  EXPECT_EQ(raw.Header("content-disposition"), "attachment; filename=\"img.raw\"");
  EXPECT_EQ(raw.Header("accept-ranges"), "bytes");
  EXPECT_TRUE(raw.body == data) << "the downloaded disk differs from the imported one";
  ClientResponse part =
      get(image + "?api-version=2024-03-01&format=raw", reader, {"Range: bytes=4096-5119"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.Header("content-range"), "bytes 4096-5119/" + std::to_string(data.size()));
  EXPECT_TRUE(part.body == data.substr(4096, 1024));
  ClientResponse past = get(image + "?api-version=2024-03-01&format=raw", reader,
                            {"Range: bytes=" + std::to_string(data.size()) + "-"});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(Code(past), "InvalidRange");
  // A link: the token in the query, no header.
  ClientResponse linked =
      get(image + "?api-version=2024-03-01&format=raw&access_token=" + reader, "");
  EXPECT_EQ(linked.status, 200);
  EXPECT_TRUE(linked.body == data);
  // A fixed VHD (Azure's rules: whole MiB plus the 512-byte footer), and the
  // version's disk, which is the same image.
  ClientResponse vhd = get(image + "?api-version=2024-03-01", reader);
  EXPECT_EQ(vhd.status, 200);
  EXPECT_EQ(vhd.body.size(), data.size() + 512);
  EXPECT_EQ(vhd.body.substr(data.size(), 8), "conectix");
  ClientResponse ver = get(version + "?api-version=2024-03-03&format=raw", reader);
  EXPECT_EQ(ver.status, 200) << ver.body.substr(0, 300);
  EXPECT_TRUE(ver.body == data);
  EXPECT_EQ(ver.Header("content-disposition"), "attachment; filename=\"deb-1.0.0.raw\"");
  // Who may not read it, a bad format, no token.
  ClientResponse denied = get(image + "?api-version=2024-03-01&format=raw", stranger);
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(Code(denied), "AuthorizationFailed");
  ClientResponse bad = get(image + "?api-version=2024-03-01&format=zip", reader);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Code(bad), "InvalidParameter");
  EXPECT_EQ(get(image + "?api-version=2024-03-01&format=raw", "").status, 401);
  // Exported once per image, region and format, then kept.
  auto kept = Env::Default()->ListDir(home_ + "/downloads");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), 2u);  // raw and vhd; the version is the same stored image
}

}  // namespace
}  // namespace imagesmith::e2e
