// Fuzzes the template parser: any input must produce diagnostics or a model
// without crashing, and a model's normalised JSON must parse again to the
// same JSON (the normalised form is a fixed point).
//
// Structure-aware: under libFuzzer, half of the mutations go through
// MutateJsonStructure, which changes the type of a property (a string where
// the schema has an array, an object where it has a number ...) or adds a
// known property, so type assumptions in the parser are exercised directly
// rather than only after a lucky byte flip keeps the JSON valid.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "json_mutator.h"
#include "template/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  imagesmith::tmpl::ParseResult r = imagesmith::tmpl::ParseTemplate(text);
  for (const auto& d : r.diagnostics) {
    if (d.message.empty()) std::abort();
    (void)d.Format("fuzz.json");
  }
  if (r.ok()) {
    std::string once = r.value->ToJson().Dump(2);
    imagesmith::tmpl::ParseResult again = imagesmith::tmpl::ParseTemplate(once);
    if (!again.ok()) std::abort();
    if (again.value->ToJson().Dump(2) != once) std::abort();
  }
  return 0;
}

#ifdef IMAGESMITH_LIBFUZZER
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  // Property names of the template schema (any level) and values that sit
  // on the edges of what the validator expects.
  static const std::vector<std::string> kNames = {"type",
                                                  "apiVersion",
                                                  "location",
                                                  "tags",
                                                  "identity",
                                                  "properties",
                                                  "name",
                                                  "userAssignedIdentities",
                                                  "buildTimeoutInMinutes",
                                                  "customize",
                                                  "errorHandling",
                                                  "distribute",
                                                  "optimize",
                                                  "source",
                                                  "stagingResourceGroup",
                                                  "validate",
                                                  "vmProfile",
                                                  "autoRun",
                                                  "managedResourceTags",
                                                  "publisher",
                                                  "offer",
                                                  "sku",
                                                  "version",
                                                  "planInfo",
                                                  "imageId",
                                                  "imageVersionId",
                                                  "inline",
                                                  "scriptUri",
                                                  "sha256Checksum",
                                                  "runElevated",
                                                  "runAsSystem",
                                                  "validExitCodes",
                                                  "sourceUri",
                                                  "destination",
                                                  "restartCommand",
                                                  "restartCheckCommand",
                                                  "restartTimeout",
                                                  "searchCriteria",
                                                  "filters",
                                                  "updateLimit",
                                                  "runOutputName",
                                                  "artifactTags",
                                                  "galleryImageId",
                                                  "replicationRegions",
                                                  "targetRegions",
                                                  "replicaCount",
                                                  "storageAccountType",
                                                  "excludeFromLatest",
                                                  "versioning",
                                                  "scheme",
                                                  "major",
                                                  "uri",
                                                  "vmBoot",
                                                  "state",
                                                  "inVMValidations",
                                                  "sourceValidationOnly",
                                                  "continueDistributeOnFailure",
                                                  "vmSize",
                                                  "osDiskSizeGB",
                                                  "vnetConfig",
                                                  "subnetId",
                                                  "onCustomizerError",
                                                  "onValidationError",
                                                  "parameters",
                                                  "variables",
                                                  "resources",
                                                  "$schema",
                                                  "api-version",
                                                  "defaultValue",
                                                  "value"};
  static const std::vector<std::string> kStrings = {
      "notaregion",
      "eastus",
      "East US",
      "[parameters('replicationRegions')]",
      "[concat('a', variables('b'))]",
      "",
      "<subscriptionID>",
      "latest",
      "SharedImage",
      "PlatformImage",
      "VHD",
      "ManagedImage",
      "SharedImageVersion",
      "Shell",
      "File",
      "ISO",
      "2019-05-01-preview",
      "2022-07-01",
      "2024-02-01",
      "2025-10-01",
      "UserAssigned",
      "/subscriptions/{subscription-id}/resourceGroups/rg/providers/Microsoft.Compute/images/i",
      "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
      "Microsoft.Compute/galleries/g/images/d/versions/1.0.0",
      "Microsoft.VirtualMachineImages/imageTemplates",
      "Microsoft.VirtualMachineImages",
      "$_.BrowseOnly",
      "include:$_.Title -like '*Security*'",
      "60",
      "true"};
  if (seed % 2 == 0) {
    std::string in(reinterpret_cast<const char*>(data), size);
    std::string out = imagesmith::fuzz::MutateJsonStructure(in, seed / 2, kNames, kStrings);
    if (!out.empty() && out.size() <= max_size) {
      std::memcpy(data, out.data(), out.size());
      return out.size();
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}
#endif
