// Helpers for end-to-end tests: run the real imagesmith binary and look at
// what a user would see (exit status, stdout, stderr).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/env.h"

namespace imagesmith::e2e {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `imagesmith ARGS...` in `cwd` (empty: the current directory).
// `env` adds to (or overrides) the inherited environment.
CliResult RunCli(const std::vector<std::string>& args, const std::string& cwd = "",
                 const std::map<std::string, std::string>& env = {});

// The repository root and a fresh temporary directory removed at exit.
std::string SourceDir();
std::string MakeTempDir();

// A file's content, or "" if it cannot be read.
std::string ReadOrEmpty(const std::string& path);

// A fresh data directory whose catalog of base images is shared by every test
// in the run ($IMAGESMITH_TEST_CACHE, made fresh per run by setup.sh; a
// process-wide temporary directory otherwise), so the Debian base is built
// once. Returns the environment that points imagesmith at it.
std::map<std::string, std::string> DataDirWithSharedCatalog(std::string* home);

// Pids of the processes (other than this one) whose command line, with its
// arguments joined by spaces, satisfies `match`.
std::vector<int> PidsWhere(const std::function<bool(const std::string&)>& match);
// Pids of the processes whose command line contains `marker`.
std::vector<int> PidsWith(const std::string& marker);

// Every *.json file in `dir`, sorted, as bare names.
std::vector<std::string> JsonFilesIn(const std::string& dir);

}  // namespace imagesmith::e2e
