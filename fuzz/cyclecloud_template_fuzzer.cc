// Fuzzes CycleCloud cluster templates: the file layout, values, the
// expression language and cluster assembly (parameters, defaults, Extends,
// deferred references). Any input must give a cluster or an error with a
// message, never a crash, a hang or unbounded memory; an assembled cluster's
// JSON must read back to the same JSON.
//
// The input is split at the first NUL byte: before it, a template; after it,
// a parameter file (JSON or .properties).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cyclecloud/cluster.h"
#include "cyclecloud/template_file.h"

using namespace imagesmith;
using namespace imagesmith::cyclecloud;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view text = input.substr(0, nul);
  std::string_view params_text = nul == std::string_view::npos ? "" : input.substr(nul + 1);
  StatusOr<TemplateFile> file = ParseTemplateFile(text, "f.txt");
  if (!file.ok()) {
    if (file.status().message().empty()) std::abort();
    return 0;
  }
  ParameterValues params;
  if (!params_text.empty()) {
    StatusOr<ParameterValues> p = ParseParameterFile(params_text, "p.properties");
    if (!p.ok()) {
      if (p.status().message().empty()) std::abort();
      return 0;
    }
    params = std::move(*p);
  }
  for (const Section& s : file->sections) {
    if (s.type != "cluster") continue;
    StatusOr<ClusterSpec> spec = AssembleCluster(*file, params, s.name);
    if (!spec.ok()) {
      if (spec.status().message().empty()) std::abort();
      continue;
    }
    std::string json = spec->ToJson().Dump(-1);
    StatusOr<ClusterSpec> back = ClusterSpec::FromJson(spec->ToJson());
    if (!back.ok() || back->ToJson().Dump(-1) != json) std::abort();
  }
  return 0;
}
