// Fuzzes the store's structured-object decoders (doc/store.md): directory
// listings and image manifests read from untrusted object files. Beyond "does
// not crash": anything accepted must be canonical, i.e. re-encode to exactly
// the input, since an image may have only one digest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imagesmith::store;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto dir = DecodeDirectory(in);
  if (dir.ok() && EncodeDirectory(*dir) != in) abort();
  auto manifest = DecodeManifest(in);
  if (manifest.ok()) {
    if (EncodeManifest(*manifest) != in) abort();
    (void)ManifestChildren(*manifest);
  }
  return 0;
}
