#include "e2e_util.h"

#include <stdlib.h>

#include <cstdlib>

#include "base/strings.h"

namespace imagesmith::e2e {

CliResult RunCli(const std::vector<std::string>& args, const std::string& cwd,
                 const std::map<std::string, std::string>& env) {
  ProcessOptions o;
  o.argv = {IMAGESMITH_BINARY};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.working_dir = cwd;
  o.extra_env = env;
  // Longer than the shortest buildTimeoutInMinutes (6), which a test exercises.
  o.timeout = std::chrono::minutes(15);
  auto r = Env::Default()->RunProcess(o);
  CliResult out;
  if (!r.ok()) {
    out.err = r.status().ToString();
    return out;
  }
  out.exit_code = r->term_signal != 0 ? 128 + r->term_signal : r->exit_code;
  out.out = r->stdout_data;
  out.err = r->stderr_data;
  return out;
}

std::string SourceDir() { return IMAGESMITH_SOURCE_DIR; }

namespace {
std::vector<std::string>& TempDirs() {
  static auto* dirs = new std::vector<std::string>();
  return *dirs;
}
void RemoveTempDirs() {
  for (const std::string& d : TempDirs()) (void)Env::Default()->RemoveAll(d);
}
}  // namespace

std::string MakeTempDir() {
  char tmpl[] = "/tmp/imagesmith-e2e-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) std::abort();
  if (TempDirs().empty()) std::atexit(RemoveTempDirs);
  TempDirs().push_back(tmpl);
  return tmpl;
}

std::vector<std::string> JsonFilesIn(const std::string& dir) {
  std::vector<std::string> out;
  auto names = Env::Default()->ListDir(dir);
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    if (EndsWith(n, ".json")) out.push_back(n);
  }
  return out;
}

}  // namespace imagesmith::e2e
