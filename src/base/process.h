// Telling whether a process recorded earlier (in a file or a database row) is
// still the one running: a pid alone can be recycled, so it is kept with the
// process's start time, and both must match.
#pragma once

#include <cstdint>
#include <string>

namespace imagesmith {

// The process's start time in clock ticks since boot (field 22 of
// /proc/PID/stat), or 0 if `pid` does not exist. With the pid it names a
// process uniquely, so a recycled pid is not mistaken for a live holder.
uint64_t ProcessStartTicks(int pid);
// Whether the process `pid` that started at `start_ticks` still runs. A
// start_ticks of 0 (recorded by an older imagesmith) checks the pid only.
// An exited process not yet reaped by its parent (a zombie) does not run.
bool ProcessAlive(int pid, uint64_t start_ticks);
// "<pid>.<start ticks>" for this process.
std::string SelfTag();

// This process's pid as /proc shows it. Not getpid() inside a pid namespace
// whose /proc is the parent's (`internal put-tree` runs so): there getpid()
// is the namespace's pid (2), which in /proc and on the host is another
// process (kthreadd). SelfTag() uses it, so a tag means the same process
// to every process that reads /proc.
int SelfPidInProc();

}  // namespace imagesmith
