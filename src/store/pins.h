// Pin files: how a process tells gc, in other processes too, what it needs
// (doc/store.md, "Pins"). A pin is <root>/pins/<pid>.<start>.<n>.pin; its
// mtime when created is the pin's start, and it lists image references.
// Internal to store/.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "base/statusor.h"
#include "store/store.h"

namespace imagesmith::store {

// A file-system timestamp, as (seconds, nanoseconds).
struct FsTime {
  int64_t sec = 0;
  int64_t nsec = 0;
  friend auto operator<=>(const FsTime&, const FsTime&) = default;
};

struct PinFile {
  std::string path;
  int pid = 0;
  uint64_t start_ticks = 0;
  FsTime created;
  std::vector<ImageRef> refs;
};

// Creates a pin file under `pins_dir`; `out` gets its path and start time.
Status CreatePinFile(const std::string& pins_dir, PinFile* out);
// Rewrites the pin file with `pin.refs` (atomically).
Status WritePinFile(const PinFile& pin);
// Every pin file under `pins_dir`. Pins of dead processes are removed and
// not returned. A pin that cannot be parsed counts as live with its file's
// mtime as its start (it is being written).
StatusOr<std::vector<PinFile>> ReadLivePins(const std::string& pins_dir);

}  // namespace imagesmith::store
