// Helpers shared by the catalog tests.
#pragma once

#include <stdlib.h>

#include <string>

#include "base/env.h"

namespace imagesmith::catalog::testing {

// A fresh directory under $TMPDIR (default /tmp), removed with its contents
// when the object goes away.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string templ = std::string(base != nullptr ? base : "/tmp") + "/catalog_test.XXXXXX";
    path_ = mkdtemp(templ.data()) != nullptr ? templ : "";
  }
  ~TempDir() {
    if (!path_.empty()) (void)Env::Default()->RemoveAll(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `data` to `path`, creating parent directories.
inline void Put(const std::string& path, const std::string& data) {
  Env* env = Env::Default();
  (void)env->CreateDirs(Dirname(path));
  (void)env->WriteFileAtomic(path, data);
}

}  // namespace imagesmith::catalog::testing
