#include "template/parser.h"

#include <gtest/gtest.h>

namespace imagesmith::tmpl {
namespace {

constexpr const char* kSub = "11111111-2222-3333-4444-555555555555";

std::string WithProperties(const std::string& props, const std::string& api = "2022-07-01") {
  return std::string(R"({"type":"Microsoft.VirtualMachineImages/imageTemplates","apiVersion":")") +
         api + R"(","location":"East US","properties":{)" + props + "}}";
}

const char* kSource =
    R"("source":{"type":"PlatformImage","publisher":"Debian","offer":"debian-12","sku":"12","version":"LATEST"})";

TEST(ParserTest, FillsDefaultsAndNormalisesValues) {
  ParseResult r = ParseTemplate(WithProperties(std::string(kSource) +
                                               R"(,"buildTimeoutInMinutes":0,"customize":[
      {"type":"shell","inline":"echo hi"},
      {"type":"WindowsRestart"},
      {"type":"File","sourceUri":"a.txt","destination":"/tmp/a.txt",
       "sha256Checksum":"D4970E97DDE91ADC005FCB01FCD683E330CB5DFD74560EA4226E38DDC76A214C"}])"));
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : r.diagnostics[0].Format("t"));
  const ImageTemplate& t = *r.value;
  EXPECT_EQ(t.location.name(), "eastus");
  EXPECT_EQ(t.build_timeout_minutes, 240);
  ASSERT_EQ(t.customize.size(), 3u);
  EXPECT_EQ(t.customize[0].type(), StepType::kShell);
  EXPECT_EQ(std::get<ShellStep>(t.customize[0].spec).inline_commands,
            std::vector<std::string>{"echo hi"});
  const auto& restart = std::get<WindowsRestartStep>(t.customize[1].spec);
  EXPECT_EQ(restart.restart_timeout, std::chrono::minutes(5));
  EXPECT_EQ(restart.restart_command, WindowsRestartStep::kDefaultCommand);
  EXPECT_EQ(std::get<FileStep>(t.customize[2].spec).sha256->ToHex(),
            "d4970e97dde91adc005fcb01fcd683e330cb5dfd74560ea4226e38ddc76a214c");
  EXPECT_EQ(std::get<PlatformImageSource>(t.source).version, "latest");
  EXPECT_EQ(t.error_handling.on_customizer_error, ErrorAction::kCleanup);
}

TEST(ParserTest, SharedImageTargetSplitsExplicitVersionAndConvertsReplicationRegions) {
  std::string gallery = std::string("/subscriptions/") + kSub +
                        "/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d";
  ParseResult r = ParseTemplate(
      WithProperties(std::string(kSource) + R"(,"distribute":[
      {"type":"sharedImage","runOutputName":"a","galleryImageId":")" +
                         gallery +
                         R"(/versions/1.2.3","replicationRegions":["East US","westus2"]},
      {"type":"SharedImage","runOutputName":"b","galleryImageId":")" +
                         gallery + R"(","versioning":{"scheme":"latest","major":1}}])",
                     "2021-10-01"));
  ASSERT_TRUE(r.ok());
  // No deprecation warning: targetRegions only exists from 2022-07-01 on.
  ASSERT_EQ(r.warning_count(), 0);
  const auto& a = std::get<SharedImageTarget>(r.value->distribute[0].target);
  EXPECT_EQ(a.explicit_version, ImageVersion(1, 2, 3));
  EXPECT_TRUE(a.gallery_image_id.IsType("Microsoft.Compute/galleries/images"));
  ASSERT_EQ(a.target_regions.size(), 2u);
  EXPECT_EQ(a.target_regions[1].region.name(), "westus2");
  const auto& b = std::get<SharedImageTarget>(r.value->distribute[1].target);
  EXPECT_FALSE(b.explicit_version.has_value());
  ASSERT_TRUE(b.versioning.has_value());
  EXPECT_EQ(b.versioning->scheme, VersioningScheme::kLatest);
  EXPECT_EQ(b.versioning->major, 1u);
}

TEST(ParserTest, ReportsEveryProblemInOnePassSortedByPosition) {
  ParseResult r = ParseTemplate(
      "{\"type\":\"x\",\n\"apiVersion\":\"1999-01-01\",\n\"location\":\"mars\",\n"
      "\"properties\":{\"buildTimeoutInMinutes\":-1}}");
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.error_count(), 5);  // type, apiVersion, location, timeout, missing source
  for (size_t i = 1; i < r.diagnostics.size(); ++i) {
    EXPECT_LE(r.diagnostics[i - 1].pos.line, r.diagnostics[i].pos.line);
  }
  EXPECT_EQ(r.diagnostics[0].path, "type");
}

TEST(ParserTest, SyntaxErrorIsOneDiagnosticWithPosition) {
  ParseResult r = ParseTemplate("{\n  \"a\": [1,,2]\n}");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].pos, (SourcePos{2, 11}));
  EXPECT_EQ(r.diagnostics[0].Format("t.json"),
            "t.json:2:11: error: invalid JSON: expected a value (object, array, string, number, "
            "true, false or null), found ','");
}

TEST(ParserTest, IdentityKeepsTheOneUserAssignedIdentity) {
  std::string id =
      std::string("/subscriptions/") + kSub +
      "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ib";
  std::string text =
      std::string(
          R"({"type":"Microsoft.VirtualMachineImages/imageTemplates","apiVersion":"2022-07-01",
    "location":"eastus","identity":{"type":"UserAssigned","userAssignedIdentities":{")") +
      id + R"(":{}}},"properties":{)" + kSource + "}}";
  ParseResult r = ParseTemplate(text);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.value->identity.has_value());
  EXPECT_EQ(r.value->identity->name(), "ib");
}

// Regression: a single string where replicationRegions has an array made the
// validator abort with std::bad_variant_access (found by the structure-aware
// fuzzer; the quickstarts' "[parameters('replicationRegions')]" did it too).
TEST(ParserTest, ReplicationRegionsAsAStringIsReportedNotACrash) {
  for (const char* value : {"notaregion", "[parameters('replicationRegions')]", "westus2"}) {
    std::string gallery = std::string("/subscriptions/") + kSub +
                          "/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d";
    ParseResult r = ParseTemplate(WithProperties(
        std::string(kSource) + R"(,"distribute":[{"type":"SharedImage","runOutputName":"s",
        "galleryImageId":")" +
            gallery + R"(","replicationRegions":")" + value + "\"}]",
        "2022-02-14"));
    bool valid_region = std::string(value) == "westus2";
    EXPECT_EQ(r.ok(), valid_region) << value;
    ASSERT_FALSE(r.diagnostics.empty());
    for (const Diagnostic& d : r.diagnostics) {
      EXPECT_EQ(d.path, "properties.distribute[0].replicationRegions") << d.message;
    }
    if (valid_region) {
      ASSERT_EQ(std::get<SharedImageTarget>(r.value->distribute[0].target).target_regions.size(),
                1u);
    }
  }
}

TEST(ParserTest, RestExampleWrapperIsUnwrappedWithItsApiVersionAndName) {
  std::string body = std::string(R"({"location":"eastus","properties":{)") + kSource + "}}";
  ParseResult r = ParseTemplate(R"({"parameters":{"api-version":"2022-07-01",
      "imageTemplateName":"fromWrapper","parameters":)" +
                                body + "}}");
  ASSERT_TRUE(r.ok()) << r.diagnostics[0].Format("t");
  EXPECT_EQ(r.value->api_version, "2022-07-01");
  EXPECT_EQ(r.value->name, "fromWrapper");
  EXPECT_TRUE(r.diagnostics.empty());
}

TEST(ParserTest, MissingApiVersionUsesTheGivenDefault) {
  std::string body = std::string(R"({"location":"eastus","properties":{)") + kSource + "}}";
  ParseOptions opts;
  opts.default_api_version = "2023-07-01";
  ParseResult r = ParseTemplate(body, opts);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value->api_version, "2023-07-01");
  EXPECT_TRUE(r.diagnostics.empty());
}

}  // namespace
}  // namespace imagesmith::tmpl
