#include "base/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace imagesmith {
namespace {

struct Target {
  bool armed = false;
  std::string name;
  long nth = 1;
  std::atomic<long> hits{0};
};

// Parsed once: the environment of a running process does not change under us
// in any way tests rely on.
Target& GetTarget() {
  static Target* target = [] {
    auto* t = new Target;
    const char* value = std::getenv("IMAGESMITH_CRASH_AT");
    if (value == nullptr || *value == '\0') return t;
    std::string spec(value);
    size_t hash = spec.rfind('#');
    if (hash != std::string::npos) {
      char* end = nullptr;
      long n = std::strtol(spec.c_str() + hash + 1, &end, 10);
      if (end != nullptr && *end == '\0' && n >= 1) {
        t->nth = n;
        spec.resize(hash);
      }
    }
    t->name = spec;
    t->armed = true;
    return t;
  }();
  return *target;
}

}  // namespace

void CrashPoint(std::string_view name) {
  Target& t = GetTarget();
  if (!t.armed || name != t.name) return;
  if (t.hits.fetch_add(1) + 1 == t.nth) {
    raise(SIGKILL);
    _exit(137);  // not reached
  }
}

}  // namespace imagesmith
