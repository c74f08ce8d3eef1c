// Azure VM sizes -> sandbox limits. The table holds the vCPU count and memory
// Azure documents for each size; doc/sandbox.md shows the same table.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/strings.h"
#include "sandbox/sandbox.h"

namespace imagesmith::sandbox {
namespace {

struct SizeRow {
  const char* name;
  int vcpus;
  double memory_gib;
};

// Keep in sync with the table in doc/sandbox.md.
constexpr SizeRow kSizes[] = {
    // A-series v2 (entry level)
    {"Standard_A1_v2", 1, 2},
    {"Standard_A2_v2", 2, 4},
    {"Standard_A4_v2", 4, 8},
    {"Standard_A8_v2", 8, 16},
    {"Standard_A2m_v2", 2, 16},
    {"Standard_A4m_v2", 4, 32},
    // B-series (burstable)
    {"Standard_B1ls", 1, 0.5},
    {"Standard_B1s", 1, 1},
    {"Standard_B1ms", 1, 2},
    {"Standard_B2s", 2, 4},
    {"Standard_B2ms", 2, 8},
    {"Standard_B4ms", 4, 16},
    {"Standard_B8ms", 8, 32},
    // D-series v2 and DS-series v2
    {"Standard_D1_v2", 1, 3.5},
    {"Standard_D2_v2", 2, 7},
    {"Standard_D3_v2", 4, 14},
    {"Standard_D4_v2", 8, 28},
    {"Standard_D5_v2", 16, 56},
    {"Standard_DS1_v2", 1, 3.5},
    {"Standard_DS2_v2", 2, 7},
    {"Standard_DS3_v2", 4, 14},
    {"Standard_DS4_v2", 8, 28},
    {"Standard_DS5_v2", 16, 56},
    // D v3
    {"Standard_D2_v3", 2, 8},
    {"Standard_D4_v3", 4, 16},
    {"Standard_D8_v3", 8, 32},
    {"Standard_D2s_v3", 2, 8},
    {"Standard_D4s_v3", 4, 16},
    {"Standard_D8s_v3", 8, 32},
    {"Standard_D16s_v3", 16, 64},
    // D v4
    {"Standard_D2_v4", 2, 8},
    {"Standard_D4_v4", 4, 16},
    {"Standard_D2s_v4", 2, 8},
    {"Standard_D4s_v4", 4, 16},
    {"Standard_D2d_v4", 2, 8},
    {"Standard_D4d_v4", 4, 16},
    {"Standard_D2ds_v4", 2, 8},
    {"Standard_D4ds_v4", 4, 16},
    {"Standard_D8ds_v4", 8, 32},
    // D v5
    {"Standard_D2_v5", 2, 8},
    {"Standard_D4_v5", 4, 16},
    {"Standard_D2s_v5", 2, 8},
    {"Standard_D4s_v5", 4, 16},
    {"Standard_D8s_v5", 8, 32},
    {"Standard_D16s_v5", 16, 64},
    {"Standard_D2ds_v5", 2, 8},
    {"Standard_D4ds_v5", 4, 16},
    {"Standard_D2as_v5", 2, 8},
    {"Standard_D4as_v5", 4, 16},
    // E (memory optimised)
    {"Standard_E2s_v3", 2, 16},
    {"Standard_E4s_v3", 4, 32},
    {"Standard_E2s_v5", 2, 16},
    {"Standard_E4s_v5", 4, 32},
    // F (compute optimised)
    {"Standard_F1s", 1, 2},
    {"Standard_F2s", 2, 4},
    {"Standard_F4s", 4, 8},
    {"Standard_F2s_v2", 2, 4},
    {"Standard_F4s_v2", 4, 8},
    {"Standard_F8s_v2", 8, 16},
    {"Standard_F16s_v2", 16, 32},
};

constexpr const char* kDefaultGen1 = "Standard_D1_v2";
constexpr const char* kDefaultGen2 = "Standard_D2ds_v4";

const SizeRow* Find(std::string_view name) {
  for (const SizeRow& row : kSizes) {
    if (EqualsIgnoreCase(row.name, name)) return &row;
  }
  return nullptr;
}

std::string FormatBytes(int64_t bytes) {
  char buf[64];
  double gib = static_cast<double>(bytes) / (1024.0 * 1024 * 1024);
  if (gib >= 1) {
    (void)std::snprintf(buf, sizeof buf, "%.1f GiB", gib);
  } else {
    (void)std::snprintf(buf, sizeof buf, "%lld MiB", static_cast<long long>(bytes >> 20));
  }
  return buf;
}

void AddNote(std::string& note, const std::string& more) {
  if (!note.empty()) note += "; ";
  note += more;
}

}  // namespace

HostResources DetectHost() {
  HostResources host;
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) host.memory_bytes = static_cast<int64_t>(pages) * page_size;
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  host.cpus = cpus > 0 ? static_cast<int>(cpus) : 0;
  return host;
}

std::vector<std::string> KnownVmSizes() {
  std::vector<std::string> names;
  for (const SizeRow& row : kSizes) names.emplace_back(row.name);
  std::sort(names.begin(), names.end());
  return names;
}

VmSizeLimits LimitsForVmSize(std::string_view vm_size, bool gen2, const HostResources& host) {
  VmSizeLimits out;
  const char* default_name = gen2 ? kDefaultGen2 : kDefaultGen1;
  const SizeRow* row = nullptr;
  std::string_view trimmed = TrimWhitespace(vm_size);
  if (trimmed.empty()) {
    row = Find(default_name);
  } else {
    row = Find(trimmed);
    if (row == nullptr) {
      out.known = false;
      row = Find(default_name);
      std::string note = "vmSize " + QuoteForMessage(trimmed) +
                         " is not in imagesmith's size table; using the default for " +
                         (gen2 ? "hyperVGeneration V2, " : "hyperVGeneration V1, ") + default_name;
      std::string closest = ClosestMatch(trimmed, KnownVmSizes());
      if (!closest.empty()) note += " (did you mean " + closest + "?)";
      AddNote(out.note, note);
    }
  }
  out.vm_size = row->name;
  out.limits.cpus = row->vcpus;
  out.limits.memory_bytes = static_cast<int64_t>(std::llround(row->memory_gib * 1024.0)) << 20;

  if (host.cpus > 0 && out.limits.cpus > host.cpus) {
    AddNote(out.note, std::string(row->name) + " has " + std::to_string(row->vcpus) +
                          " vCPUs; capped to this host's " + std::to_string(host.cpus));
    out.limits.cpus = host.cpus;
  }
  if (host.memory_bytes > 0 && out.limits.memory_bytes > host.memory_bytes) {
    AddNote(out.note, std::string(row->name) + " has " + FormatBytes(out.limits.memory_bytes) +
                          " of memory; capped to this host's " + FormatBytes(host.memory_bytes));
    out.limits.memory_bytes = host.memory_bytes;
  }
  return out;
}

VmSizeLimits LimitsForVmSize(std::string_view vm_size, bool gen2) {
  return LimitsForVmSize(vm_size, gen2, DetectHost());
}

}  // namespace imagesmith::sandbox
