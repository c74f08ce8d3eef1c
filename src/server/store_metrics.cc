#include "server/store_metrics.h"

#include <dirent.h>
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>

namespace imagesmith::server {
namespace {

struct RegionUsage {
  uint64_t bytes = 0;
  uint64_t objects = 0;
};

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  return names;
}

std::map<std::string, RegionUsage> Walk(const std::string& store) {
  std::map<std::string, RegionUsage> usage;
  for (const std::string& region : ListDir(store)) {
    std::string objects = store + "/" + region + "/objects";
    struct stat st;
    if (::stat(objects.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    RegionUsage& u = usage[region];
    for (const std::string& prefix : ListDir(objects)) {
      std::string dir = objects + "/" + prefix;
      for (const std::string& name : ListDir(dir)) {
        if (::lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
          u.bytes += static_cast<uint64_t>(st.st_size);
          ++u.objects;
        }
      }
    }
  }
  return usage;
}

struct State {
  std::mutex mu;
  std::chrono::steady_clock::time_point at;  // guarded by mu
  bool valid = false;                        // guarded by mu
  std::map<std::string, RegionUsage> usage;  // guarded by mu
};

}  // namespace

Metrics::Collector StoreCollector(std::string data_dir, int refresh_seconds) {
  auto state = std::make_shared<State>();
  return [state, store = data_dir + "/store", refresh_seconds](std::string* out) {
    std::lock_guard<std::mutex> lock(state->mu);
    auto now = std::chrono::steady_clock::now();
    if (!state->valid || now - state->at > std::chrono::seconds(refresh_seconds)) {
      state->usage = Walk(store);
      state->at = now;
      state->valid = true;
    }
    *out += "# HELP imagesmith_store_bytes Bytes of object files in a region's store root.\n";
    *out += "# TYPE imagesmith_store_bytes gauge\n";
    for (const auto& [region, u] : state->usage) {
      *out += "imagesmith_store_bytes{region=\"" + PromEscape(region) + "\"} " +
              std::to_string(u.bytes) + "\n";
    }
    *out += "# HELP imagesmith_store_objects Object files in a region's store root.\n";
    *out += "# TYPE imagesmith_store_objects gauge\n";
    for (const auto& [region, u] : state->usage) {
      *out += "imagesmith_store_objects{region=\"" + PromEscape(region) + "\"} " +
              std::to_string(u.objects) + "\n";
    }
  };
}

}  // namespace imagesmith::server
