// Fuzzes the VHD (fixed and dynamic) reader: the input is an image file held
// in memory; it is opened, read across, inspected and checked.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "disk/disk.h"
#include "disk/file.h"
#include "disk/fuzz_exercise.h"
#include "disk/vhd.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imagesmith::disk;
  auto file = std::make_unique<MemFile>(std::string(reinterpret_cast<const char*>(data), size));
  auto reader = OpenVhd(std::move(file));
  if (reader.ok()) ExerciseReader(**reader);
  return 0;
}
