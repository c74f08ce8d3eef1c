// Where imagesmith keeps its state: $IMAGESMITH_HOME, or
// $XDG_DATA_HOME/imagesmith, or ~/.local/share/imagesmith (DESIGN.md).
#pragma once

#include <string>

#include "base/statusor.h"

namespace imagesmith {

// The data directory's path (not created). Fails only when neither
// IMAGESMITH_HOME, XDG_DATA_HOME nor HOME is set.
StatusOr<std::string> DataDirPath();

}  // namespace imagesmith
