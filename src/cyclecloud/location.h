// Where something is in a template or parameter file, for messages:
// "slurm.txt:12:7" (1-based line and column, columns counted in bytes).
#pragma once

#include <string>

#include "base/status.h"

namespace imagesmith::cyclecloud {

struct Location {
  std::string file;
  int line = 1;
  int column = 1;

  std::string ToString() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
  }
};

// InvalidArgument "FILE:LINE:COL: message".
inline Status ErrorAt(const Location& at, const std::string& message) {
  return InvalidArgumentError(at.ToString() + ": " + message);
}

}  // namespace imagesmith::cyclecloud
