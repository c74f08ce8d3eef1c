// Helpers shared by the disk tests: temporary directories, building images
// in memory and reading a whole disk back.
#pragma once

#include <stdlib.h>

#include <random>
#include <string>

#include "base/env.h"
#include "disk/disk.h"
#include "disk/file.h"
#include "disk/raw.h"

namespace imagesmith::disk::testing {

// A fresh directory under $TMPDIR, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string templ = std::string(base != nullptr ? base : "/tmp") + "/disk_test.XXXXXX";
    path_ = mkdtemp(templ.data()) != nullptr ? templ : "";
  }
  ~TempDir() { (void)Env::Default()->RemoveAll(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes.
inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

// A raw disk in memory of `size` bytes: zeros with a few patterns written.
inline std::string PatternDisk(size_t size, uint32_t seed) {
  std::string d(size, '\0');
  std::string r = RandomBytes(size / 8, seed);
  d.replace(size / 16, r.size() / 2, r.substr(0, r.size() / 2));
  d.replace(size / 2 + 3, 1000, std::string(1000, 'x'));
  d.replace(size - 4096, 4096, r.substr(0, 4096));
  return d;
}

inline std::unique_ptr<DiskReader> RawInMemory(std::string data) {
  return std::move(OpenRaw(std::make_unique<MemFile>(std::move(data)))).value();
}

// Reads the whole virtual disk through `reader`.
inline StatusOr<std::string> ReadAll(DiskReader& reader) {
  std::string out(reader.virtual_size(), '\0');
  const size_t chunk = 1 << 20;
  for (size_t off = 0; off < out.size(); off += chunk) {
    size_t n = std::min(chunk, out.size() - off);
    RETURN_IF_ERROR(reader.Read(off, n, out.data() + off));
  }
  return out;
}

// Runs a command; returns its result (the test asserts on it).
inline ProcessResult RunCommand(std::vector<std::string> argv) {
  ProcessOptions o;
  o.argv = std::move(argv);
  o.timeout = std::chrono::seconds(120);
  auto r = Env::Default()->RunProcess(o);
  if (!r.ok()) {
    ProcessResult p;
    p.stderr_data = r.status().ToString();
    return p;
  }
  return *r;
}

}  // namespace imagesmith::disk::testing
