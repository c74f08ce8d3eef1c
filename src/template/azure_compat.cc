#include "template/azure_compat.h"

#include "base/strings.h"

namespace imagesmith::tmpl {
namespace {

bool IsUrl(const std::string& uri) {
  return StartsWithIgnoreCase(uri, "https://") || StartsWithIgnoreCase(uri, "http://");
}

void Warn(std::vector<Diagnostic>& out, SourcePos pos, std::string path, std::string message) {
  out.push_back({Severity::kWarning, pos, std::move(path), "Azure: " + std::move(message), ""});
}

void CheckSteps(const std::vector<Step>& steps, const std::string& list_path, Env& env,
                const std::string& dir, std::vector<Diagnostic>& out) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    std::string path = list_path + "[" + std::to_string(i) + "]";
    auto local_uri = [&](const std::string& uri, const char* field) {
      if (uri.empty() || IsUrl(uri)) return;
      Warn(out, step.pos, path + "." + field,
           QuoteForMessage(uri) +
               " is a local path; Azure downloads it from a URL (https://, e.g. an Azure "
               "Storage blob with a SAS token or a public repository)");
    };
    if (const auto* s = std::get_if<ShellStep>(&step.spec)) local_uri(s->script_uri, "scriptUri");
    if (const auto* s = std::get_if<PowerShellStep>(&step.spec)) {
      local_uri(s->script_uri, "scriptUri");
    }
    if (const auto* f = std::get_if<FileStep>(&step.spec)) {
      local_uri(f->source_uri, "sourceUri");
      if (!IsUrl(f->source_uri)) {
        std::string file = f->source_uri;
        if (StartsWithIgnoreCase(file, "file://")) file = file.substr(7);
        if (!file.empty() && file[0] != '/') file = dir + "/" + file;
        // Env has no stat; a read capped at the limit says whether it is over.
        auto data = env.ReadFile(file, kAzureFileCustomizerLimit);
        if (!data.ok() && data.status().code() == StatusCode::kResourceExhausted) {
          Warn(out, step.pos, path + ".sourceUri",
               "the file is over 20 MB; Azure's File customizer is only suitable for files "
               "under 20 MB (download larger files in a Shell or PowerShell step)");
        }
      }
      const std::string& dest = f->destination;
      if (!dest.empty() && dest[0] == '/' && !StartsWith(dest, "/tmp/")) {
        Warn(out, step.pos, path + ".destination",
             QuoteForMessage(dest) +
                 ": on Linux the only path Azure Image Builder can write to is /tmp; copy the "
                 "file into place with a Shell step");
      }
    }
  }
}

bool Before(const std::string& api, const char* version) {
  return !api.empty() && api.substr(0, 10) < version;
}

}  // namespace

std::vector<Diagnostic> AzureCompatibility(const ImageTemplate& t, Env& env,
                                           const std::string& template_dir) {
  std::vector<Diagnostic> out;
  CheckSteps(t.customize, "properties.customize", env, template_dir, out);
  CheckSteps(t.validate.in_vm_validations, "properties.validate.inVMValidations", env, template_dir,
             out);
  for (size_t i = 0; i < t.distribute.size(); ++i) {
    const Distribution& d = t.distribute[i];
    const auto* vhd = std::get_if<VhdTarget>(&d.target);
    if (vhd == nullptr || vhd->uri.empty() || StartsWithIgnoreCase(vhd->uri, "https://")) continue;
    Warn(out, d.pos, "properties.distribute[" + std::to_string(i) + "].uri",
         QuoteForMessage(vhd->uri) +
             ": Azure writes VHDs to an Azure Storage page blob "
             "(https://ACCOUNT.blob.core.windows.net/CONTAINER/NAME.vhd)");
  }
  // Properties the template's API version does not have (per the
  // specification's versions); Azure ignores or refuses them.
  const std::string& api = t.api_version;
  if (t.error_handling_given && Before(api, "2023-07-01")) {
    Warn(out, {}, "properties.errorHandling",
         "errorHandling came with API version 2023-07-01; this template uses " + api);
  }
  if (t.auto_run && Before(api, "2024-02-01")) {
    Warn(out, {}, "properties.autoRun",
         "autoRun is not in API version 2023-07-01 or older; this template uses " + api);
  }
  if (!t.managed_resource_tags.empty() && Before(api, "2024-02-01")) {
    Warn(
        out, {}, "properties.managedResourceTags",
        "managedResourceTags is not in API version 2023-07-01 or older; this template uses " + api);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> HostPathReferences(const ImageTemplate& t) {
  std::vector<std::pair<std::string, std::string>> out;
  auto steps = [&](const std::vector<Step>& list, const std::string& list_path) {
    for (size_t i = 0; i < list.size(); ++i) {
      std::string path = list_path + "[" + std::to_string(i) + "]";
      auto add = [&](const std::string& uri, const char* field) {
        if (!uri.empty() && !IsUrl(uri)) out.emplace_back(path + "." + field, uri);
      };
      if (const auto* s = std::get_if<ShellStep>(&list[i].spec)) add(s->script_uri, "scriptUri");
      if (const auto* s = std::get_if<PowerShellStep>(&list[i].spec)) {
        add(s->script_uri, "scriptUri");
      }
      if (const auto* f = std::get_if<FileStep>(&list[i].spec)) add(f->source_uri, "sourceUri");
    }
  };
  steps(t.customize, "properties.customize");
  steps(t.validate.in_vm_validations, "properties.validate.inVMValidations");
  for (size_t i = 0; i < t.distribute.size(); ++i) {
    const auto* vhd = std::get_if<VhdTarget>(&t.distribute[i].target);
    if (vhd == nullptr || vhd->uri.empty() || StartsWithIgnoreCase(vhd->uri, "https://")) continue;
    out.emplace_back("properties.distribute[" + std::to_string(i) + "].uri", vhd->uri);
  }
  return out;
}

}  // namespace imagesmith::tmpl
