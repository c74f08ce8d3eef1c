#include "base/data_dir.h"

#include <cstdlib>

namespace imagesmith {

StatusOr<std::string> DataDirPath() {
  if (const char* home = std::getenv("IMAGESMITH_HOME"); home != nullptr && *home != '\0') {
    return std::string(home);
  }
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg == '/') {
    return std::string(xdg) + "/imagesmith";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    return std::string(home) + "/.local/share/imagesmith";
  }
  return FailedPreconditionError(
      "cannot find a data directory: set IMAGESMITH_HOME (or HOME) to a writable directory");
}

std::string VmAccelCacheFile(const std::string& data_dir) {
  return data_dir + "/cache/vm-accel.json";
}

}  // namespace imagesmith
