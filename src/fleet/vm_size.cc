// The VM size table and NodeRuntime's JSON form.
#include <algorithm>

#include "base/strings.h"
#include "fleet/node_driver.h"

namespace imagesmith::fleet {

namespace {

uint64_t GiB(double gib) { return static_cast<uint64_t>(gib * 1024); }

}  // namespace

const std::vector<VmSize>& KnownVmSizes() {
  // Azure's published vCPU and memory figures for the sizes Batch, Service
  // Fabric and CycleCloud examples use.
  static const std::vector<VmSize>* sizes = new std::vector<VmSize>{
      {"Standard_A1_v2", 1, GiB(2)},
      {"Standard_A2_v2", 2, GiB(4)},
      {"Standard_A4_v2", 4, GiB(8)},
      {"Standard_A8_v2", 8, GiB(16)},
      {"Standard_A2m_v2", 2, GiB(16)},
      {"Standard_B1s", 1, GiB(1)},
      {"Standard_B1ms", 1, GiB(2)},
      {"Standard_B2s", 2, GiB(4)},
      {"Standard_B2ms", 2, GiB(8)},
      {"Standard_B4ms", 4, GiB(16)},
      {"Standard_D1_v2", 1, GiB(3.5)},
      {"Standard_D2_v2", 2, GiB(7)},
      {"Standard_D3_v2", 4, GiB(14)},
      {"Standard_D4_v2", 8, GiB(28)},
      {"Standard_DS1_v2", 1, GiB(3.5)},
      {"Standard_DS2_v2", 2, GiB(7)},
      {"Standard_DS3_v2", 4, GiB(14)},
      {"Standard_DS4_v2", 8, GiB(28)},
      {"Standard_D2_v3", 2, GiB(8)},
      {"Standard_D4_v3", 4, GiB(16)},
      {"Standard_D8_v3", 8, GiB(32)},
      {"Standard_D2s_v3", 2, GiB(8)},
      {"Standard_D4s_v3", 4, GiB(16)},
      {"Standard_D8s_v3", 8, GiB(32)},
      {"Standard_D16s_v3", 16, GiB(64)},
      {"Standard_D2s_v4", 2, GiB(8)},
      {"Standard_D4s_v4", 4, GiB(16)},
      {"Standard_D2s_v5", 2, GiB(8)},
      {"Standard_D4s_v5", 4, GiB(16)},
      {"Standard_D2ds_v5", 2, GiB(8)},
      {"Standard_D2as_v5", 2, GiB(8)},
      {"Standard_E2s_v3", 2, GiB(16)},
      {"Standard_E4s_v3", 4, GiB(32)},
      {"Standard_F1s", 1, GiB(2)},
      {"Standard_F2s", 2, GiB(4)},
      {"Standard_F2s_v2", 2, GiB(4)},
      {"Standard_F4s_v2", 4, GiB(8)},
      {"Standard_F8s_v2", 8, GiB(16)},
      {"Standard_F16s_v2", 16, GiB(32)},
      {"Standard_HB120rs_v3", 120, GiB(448)},
      {"Standard_HC44rs", 44, GiB(352)},
      {"Standard_H16r", 16, GiB(112)},
      {"Standard_NC6s_v3", 6, GiB(112)},
      {"Standard_NC4as_T4_v3", 4, GiB(28)},
      // Sizes CycleCloud's public templates name (doc/cyclecloud.md).
      {"Standard_D12_v2", 4, GiB(28)},
      {"Standard_D2_v5", 2, GiB(8)},
      {"Standard_D4_v5", 4, GiB(16)},
      {"Standard_D4ads_v5", 4, GiB(16)},
      {"Standard_D8as_v4", 8, GiB(32)},
      {"Standard_E4_v4", 4, GiB(32)},
      {"Standard_E16_v3", 16, GiB(128)},
      {"Standard_F4", 4, GiB(8)},
      {"Standard_L8s_v2", 8, GiB(64)},
      {"Standard_NC12", 12, GiB(112)},
      {"Standard_NC24rs_v3", 24, GiB(448)},
  };
  return *sizes;
}

StatusOr<VmSize> LookupVmSize(std::string_view name) {
  std::vector<std::string> names;
  for (const VmSize& size : KnownVmSizes()) {
    if (EqualsIgnoreCase(size.name, name)) return size;
    names.push_back(size.name);
  }
  std::string message = "unknown vmSize " + QuoteForMessage(name);
  std::string closest = ClosestMatch(name, names);
  if (!closest.empty()) message += " (did you mean " + closest + "?)";
  message += "; the known sizes are " + Join(names, ", ");
  return InvalidArgumentError(std::move(message));
}

uint64_t QemuGuestMemoryMb(const VmSize& size) {
  return std::clamp<uint64_t>(size.memory_mb / 4, 512, 2048);
}

Json NodeRuntime::ToJson() const {
  Json json = Json::MakeObject();
  json.Set("driver", Json::String(driver));
  json.Set("pid", Json::Int(pid));
  json.Set("startTicks", Json::NumberText(std::to_string(start_ticks)));
  json.Set("agentSocket", Json::String(agent_socket));
  json.Set("createdUs", Json::Int(created_us));
  return json;
}

StatusOr<NodeRuntime> NodeRuntime::FromJson(const Json& json) {
  if (!json.is_object()) {
    return InvalidArgumentError("node runtime: expected an object, got " +
                                std::string(json.KindDescription()));
  }
  NodeRuntime runtime;
  auto string_field = [&](const char* key, std::string& out) -> Status {
    const Json* value = json.Find(key);
    if (value == nullptr || !value->is_string()) {
      return InvalidArgumentError(std::string("node runtime: ") + key + " must be a string");
    }
    out = value->string_value();
    return Status::Ok();
  };
  auto int_field = [&](const char* key, int64_t& out) -> Status {
    const Json* value = json.Find(key);
    std::optional<int64_t> n = value == nullptr ? std::nullopt : value->AsInt64();
    if (!n || *n < 0) {
      return InvalidArgumentError(std::string("node runtime: ") + key +
                                  " must be a non-negative integer");
    }
    out = *n;
    return Status::Ok();
  };
  RETURN_IF_ERROR(string_field("driver", runtime.driver));
  if (runtime.driver != "qemu" && runtime.driver != "sim") {
    return InvalidArgumentError("node runtime: driver must be \"qemu\" or \"sim\", not " +
                                QuoteForMessage(runtime.driver));
  }
  RETURN_IF_ERROR(int_field("pid", runtime.pid));
  int64_t ticks = 0;
  RETURN_IF_ERROR(int_field("startTicks", ticks));
  runtime.start_ticks = static_cast<uint64_t>(ticks);
  RETURN_IF_ERROR(string_field("agentSocket", runtime.agent_socket));
  RETURN_IF_ERROR(int_field("createdUs", runtime.created_us));
  return runtime;
}

}  // namespace imagesmith::fleet
