#include "e2e_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

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

std::vector<int> PidsWhere(const std::function<bool(const std::string&)>& match) {
  std::vector<int> pids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = readdir(d)) {
    if (!IsAsciiDigits(e->d_name)) continue;
    std::string cmd = ReadOrEmpty(std::string("/proc/") + e->d_name + "/cmdline");
    for (char& c : cmd) {
      if (c == '\0') c = ' ';
    }
    int pid = std::stoi(e->d_name);
    if (pid != getpid() && match(cmd)) pids.push_back(pid);
  }
  closedir(d);
  return pids;
}

std::vector<int> PidsWith(const std::string& marker) {
  return PidsWhere([&](const std::string& cmd) { return cmd.find(marker) != std::string::npos; });
}

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

std::string ReadOrEmpty(const std::string& path) {
  auto s = Env::Default()->ReadFile(path, 1 << 28);
  return s.ok() ? *s : "";
}

std::map<std::string, std::string> DataDirWithSharedCatalog(std::string* home) {
  *home = MakeTempDir();
  const char* shared = std::getenv("IMAGESMITH_TEST_CACHE");
  static const std::string* own = new std::string(MakeTempDir());
  std::string catalog = shared != nullptr && *shared != '\0' ? shared : *own;
  if (::symlink(catalog.c_str(), (*home + "/catalog").c_str()) != 0) std::abort();
  return {{"IMAGESMITH_HOME", *home}};
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
