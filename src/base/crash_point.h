// CrashPoint: named places where a test may kill the process, to prove that
// an operation interrupted there leaves nothing half-done on disk.
//
// CrashPoint(name) does nothing unless the environment variable
// IMAGESMITH_CRASH_AT names this point: "NAME" kills the process the first
// time the point is reached, "NAME#N" the N-th time (N >= 1). The process is
// killed with SIGKILL, so no destructor, atexit handler or buffered write
// runs, exactly like a power cut as far as the process is concerned (the
// kernel's page cache still survives). The variable is read once per process.
//
// Thread-safe. Cheap when the variable is unset (one relaxed load).
#pragma once

#include <string_view>

namespace imagesmith {

void CrashPoint(std::string_view name);

}  // namespace imagesmith
