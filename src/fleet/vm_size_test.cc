#include <gtest/gtest.h>

#include "fleet/node_driver.h"

namespace imagesmith::fleet {
namespace {

TEST(VmSizeTest, KnowsCommonBatchSizes) {
  struct Want {
    const char* name;
    int cpus;
    uint64_t memory_mb;
  };
  for (const Want& want : {Want{"Standard_A1_v2", 1, 2048}, Want{"Standard_A2_v2", 2, 4096},
                           Want{"Standard_D2s_v3", 2, 8192}, Want{"Standard_D4s_v3", 4, 16384},
                           Want{"Standard_D2_v3", 2, 8192}, Want{"Standard_DS1_v2", 1, 3584},
                           Want{"Standard_DS2_v2", 2, 7168}, Want{"Standard_F2s_v2", 2, 4096}}) {
    StatusOr<VmSize> size = LookupVmSize(want.name);
    ASSERT_TRUE(size.ok()) << size.status().ToString();
    EXPECT_EQ(size->name, want.name);
    EXPECT_EQ(size->cpus, want.cpus) << want.name;
    EXPECT_EQ(size->memory_mb, want.memory_mb) << want.name;
  }
}

TEST(VmSizeTest, LookupIgnoresCaseAndReturnsCanonicalName) {
  StatusOr<VmSize> size = LookupVmSize("STANDARD_D2_V3");
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size->name, "Standard_D2_v3");
  EXPECT_EQ(size->cpus, 2);
}

TEST(VmSizeTest, UnknownSizeNamesItSuggestsAndListsKnownOnes) {
  StatusOr<VmSize> size = LookupVmSize("Standard_D2s_v9");
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(size.status().message().find("\"Standard_D2s_v9\""), std::string::npos);
  EXPECT_NE(size.status().message().find("did you mean Standard_D2s_v"), std::string::npos);
  EXPECT_NE(size.status().message().find("Standard_A1_v2"), std::string::npos);
}

TEST(VmSizeTest, QemuGuestMemoryIsAQuarterBetween512And2048) {
  EXPECT_EQ(QemuGuestMemoryMb(*LookupVmSize("Standard_B1s")), 512u);
  EXPECT_EQ(QemuGuestMemoryMb(*LookupVmSize("Standard_A1_v2")), 512u);
  EXPECT_EQ(QemuGuestMemoryMb(*LookupVmSize("Standard_A2_v2")), 1024u);
  EXPECT_EQ(QemuGuestMemoryMb(*LookupVmSize("Standard_D2s_v3")), 2048u);
  EXPECT_EQ(QemuGuestMemoryMb(*LookupVmSize("Standard_HB120rs_v3")), 2048u);
}

TEST(NodeRuntimeTest, RoundTripsThroughJson) {
  NodeRuntime runtime;
  runtime.driver = "qemu";
  runtime.pid = 4242;
  runtime.start_ticks = 123456789012ull;
  runtime.agent_socket = "/tmp/is-x/agent.sock";
  runtime.created_us = 1700000000000000;
  StatusOr<Json> parsed = ParseJson(runtime.ToJson().Dump());
  ASSERT_TRUE(parsed.ok());
  StatusOr<NodeRuntime> back = NodeRuntime::FromJson(*parsed);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->driver, "qemu");
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->start_ticks, 123456789012ull);
  EXPECT_EQ(back->agent_socket, "/tmp/is-x/agent.sock");
  EXPECT_EQ(back->created_us, 1700000000000000);
}

TEST(NodeRuntimeTest, FromJsonNamesTheBadField) {
  NodeRuntime runtime;
  runtime.driver = "sim";
  Json json = runtime.ToJson();
  json.Set("pid", Json::String("12"));
  StatusOr<NodeRuntime> bad = NodeRuntime::FromJson(json);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("pid"), std::string::npos);
  json = runtime.ToJson();
  json.Set("driver", Json::String("vbox"));
  bad = NodeRuntime::FromJson(json);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("vbox"), std::string::npos);
  EXPECT_FALSE(NodeRuntime::FromJson(Json::Int(3)).ok());
}

}  // namespace
}  // namespace imagesmith::fleet
