// ExerciseReader: drives every public operation of a DiskReader over a whole
// (possibly hostile) image within fixed work limits. Used by the libFuzzer
// targets in fuzz/ and by their corpus regression tests; any crash, sanitizer
// report or unbounded allocation it provokes is a reader bug.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "disk/disk.h"

namespace imagesmith::disk {

inline void ExerciseReader(DiskReader& reader) {
  const uint64_t size = reader.virtual_size();
  constexpr uint64_t kMaxReadBytes = 8 << 20;
  constexpr int kMaxExtents = 20000;
  std::vector<char> buf(1 << 20);
  uint64_t read_total = 0;
  int extents = 0;
  for (uint64_t p = 0; p < size && extents < kMaxExtents; ++extents) {
    auto e = reader.BlockStatus(p, size - p);
    if (!e.ok() || e->length == 0 || e->offset != p) break;
    if (e->kind == ExtentKind::kData && read_total < kMaxReadBytes) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(e->length, buf.size()));
      if (!reader.Read(p, n, buf.data()).ok()) break;
      read_total += n;
    }
    p += e->length;
  }
  // Unaligned reads at both ends.
  if (size > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(size, 4097));
    (void)reader.Read(0, n, buf.data());
    (void)reader.Read(size - n, n, buf.data());
    (void)reader.Read(size / 2, static_cast<size_t>(std::min<uint64_t>(size - size / 2, 777)),
                      buf.data());
  }
  // Whole-image walks are linear in the virtual size; keep them to images a
  // fuzzer can afford.
  if (size <= (uint64_t{1} << 30)) {
    (void)reader.Info();
    (void)reader.Check();
  }
}

}  // namespace imagesmith::disk
