// cyclecloud_parse_check FILE...: reads each CycleCloud template, assembles
// every [cluster] section in it with no parameter file, and prints one line
// per file (-P NAME=VALUE before a file gives it a parameter) ("ok FILE: N clusters, M nodes" or "FAIL FILE:LINE:COL: ..."),
// then the counts. Exit 0 when every file parsed. Used to measure the parser
// against templates kept outside the repository (doc/cyclecloud.md).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cyclecloud/cluster.h"
#include "cyclecloud/template_file.h"

using namespace imagesmith;
using namespace imagesmith::cyclecloud;

int main(int argc, char** argv) {
  int ok = 0, failed = 0;
  // -P NAME=VALUE (VALUE @FILE reads the file) applies to the next file
  // only, as CycleCloud's import_cluster -P.
  ParameterValues given;
  for (int i = 1; i < argc; ++i) {
    std::string path = argv[i];
    if (path == "-P" && i + 1 < argc) {
      std::string nv = argv[++i];
      size_t eq = nv.find('=');
      std::string value = eq == std::string::npos ? "" : nv.substr(eq + 1);
      if (!value.empty() && value[0] == '@') {
        std::ifstream f(value.substr(1), std::ios::binary);
        std::stringstream c;
        c << f.rdbuf();
        value = c.str();
      }
      given.emplace_back(nv.substr(0, eq), ParameterValue{Value::String(value), Location{"-P", 1, 1}});
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::printf("FAIL %s: cannot open\n", path.c_str());
      ++failed;
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    StatusOr<TemplateFile> file = ParseTemplateFile(ss.str(), path);
    if (!file.ok()) {
      std::printf("FAIL %s\n", file.status().message().c_str());
      ++failed;
      continue;
    }
    int clusters = 0, nodes = 0;
    Status st = Status::Ok();
    for (const Section& s : file->sections) {
      if (s.type != "cluster") continue;
      StatusOr<ClusterSpec> spec = AssembleCluster(*file, given, s.name);
      if (!spec.ok()) {
        st = spec.status();
        break;
      }
      ++clusters;
      nodes += static_cast<int>(spec->nodes.size());
    }
    given.clear();
    if (!st.ok()) {
      std::printf("FAIL %s\n", st.message().c_str());
      ++failed;
      continue;
    }
    std::printf("ok %s: %d cluster%s, %d nodes/nodearrays\n", path.c_str(), clusters,
                clusters == 1 ? "" : "s", nodes);
    ++ok;
  }
  std::printf("%d files, %d parsed, %d failed\n", ok + failed, ok, failed);
  return failed == 0 ? 0 : 1;
}
