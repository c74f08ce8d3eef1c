// Where imagesmith keeps its state: $IMAGESMITH_HOME, or
// $XDG_DATA_HOME/imagesmith, or ~/.local/share/imagesmith (DESIGN.md).
#pragma once

#include <string>

#include "base/statusor.h"

namespace imagesmith {

// The data directory's path (not created). Fails only when neither
// IMAGESMITH_HOME, XDG_DATA_HOME nor HOME is set.
StatusOr<std::string> DataDirPath();

// The file in `data_dir` that keeps the KVM-or-TCG verdict (vm::ProbeAccel)
// for every VM imagesmith boots there: validation and fleet nodes alike.
std::string VmAccelCacheFile(const std::string& data_dir);

}  // namespace imagesmith
