// Fuzzes ARM deployment templates: the expression evaluator and everything
// around it (parameters, defaultValue, variables and their cycles, keys that
// are expressions, resources[]). Any input must give diagnostics, never a
// crash, a hang or unbounded memory; every diagnostic has a message, and a
// template that loads must normalise to JSON that parses again.
//
// The input is split at the first NUL byte: before it, a deployment template
// (or, if it does not parse as JSON, a single expression placed into a small
// deployment template); after it, a parameters file.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/env.h"
#include "template/arm_expression.h"
#include "template/deployment.h"

namespace {

std::string WrapExpression(std::string_view expr) {
  std::string quoted;
  imagesmith::AppendJsonString(quoted, expr);
  return R"({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
 "parameters": {"p": {"type": "string", "defaultValue": "eastus"},
                "a": {"type": "array", "defaultValue": ["eastus", "westus"]},
                "o": {"type": "object", "defaultValue": {"k": [1, 2, {"x": "y"}]}}},
 "variables": {"v": )" +
         quoted + R"(, "w": "[concat(variables('v'), parameters('p'))]"},
 "resources": [{"type": "Microsoft.VirtualMachineImages/imageTemplates", "apiVersion": "2022-07-01",
   "name": "t", "location": "[parameters('p')]",
   "properties": {"source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12",
                             "sku": "12", "version": "latest"},
                  "customize": [{"type": "Shell", "inline": ["[string(variables('w'))]"]}],
                  "distribute": [{"type": "VHD", "runOutputName": "[variables('v')]"}]}}]})";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view doc = input.substr(0, nul);
  std::string params = nul == std::string_view::npos ? "" : std::string(input.substr(nul + 1));

  // The evaluator alone, with parameters and variables that loop back.
  {
    imagesmith::tmpl::arm::ExpressionEnv env;
    env.parameter = [](const std::string& n) -> imagesmith::StatusOr<imagesmith::Json> {
      if (n == "a") return imagesmith::Json::String("[[x");
      return imagesmith::NotFoundError("no parameter " + n);
    };
    env.budget = 1 << 20;
    (void)imagesmith::tmpl::arm::EvaluateString(doc, env);
  }

  std::string text(doc);
  if (!imagesmith::ParseJson(text).ok()) text = WrapExpression(doc);
  imagesmith::Env& env = *imagesmith::Env::Default();
  imagesmith::tmpl::DeploymentInputs in;
  std::string params_path;
  if (!params.empty()) {
    // The parameters file goes through the same reader a user's does.
    char name[] = "/tmp/arm_fuzz_params_XXXXXX";
    int fd = mkstemp(name);
    if (fd >= 0) {
      (void)!write(fd, params.data(), params.size());
      close(fd);
      params_path = name;
      in.parameters.push_back("@" + params_path);
    }
  }
  in.parameters.push_back("p=westus2");
  imagesmith::tmpl::LoadResult r =
      imagesmith::tmpl::LoadTemplatesFromText(env, text, "fuzz.json", in);
  if (!params_path.empty()) unlink(params_path.c_str());
  for (const auto& d : r.diagnostics) {
    if (d.message.empty()) std::abort();
    (void)d.Format("fuzz.json");
  }
  if (r.ok() != (r.error_count() == 0)) std::abort();
  for (const auto& t : r.templates) {
    std::string once = t.value.ToJson().Dump(2);
    if (!imagesmith::tmpl::ParseTemplate(once).ok()) std::abort();
  }
  return 0;
}
