// Fuzzes the template parser: any input must produce diagnostics or a model
// without crashing, and a model's normalised JSON must parse again to the
// same JSON (the normalised form is a fixed point).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "template/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  imagesmith::tmpl::ParseResult r = imagesmith::tmpl::ParseTemplate(text);
  for (const auto& d : r.diagnostics) {
    if (d.message.empty()) std::abort();
    (void)d.Format("fuzz.json");
  }
  if (r.ok()) {
    std::string once = r.value->ToJson().Dump(2);
    imagesmith::tmpl::ParseResult again = imagesmith::tmpl::ParseTemplate(once);
    if (!again.ok()) std::abort();
    if (again.value->ToJson().Dump(2) != once) std::abort();
  }
  return 0;
}
