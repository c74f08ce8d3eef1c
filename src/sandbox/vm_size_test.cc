#include <gtest/gtest.h>

#include "sandbox/sandbox.h"

namespace imagesmith::sandbox {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;
const HostResources kBigHost = {1024 * kGiB, 256};

TEST(SandboxVmSizeTest, EmptySizeIsImageBuildersDefaultPerGeneration) {
  VmSizeLimits gen1 = LimitsForVmSize("", false, kBigHost);
  EXPECT_EQ(gen1.vm_size, "Standard_D1_v2");
  EXPECT_TRUE(gen1.known);
  EXPECT_EQ(gen1.note, "");
  EXPECT_EQ(gen1.limits.cpus, 1);
  EXPECT_EQ(gen1.limits.memory_bytes, 3584 * kMiB);

  VmSizeLimits gen2 = LimitsForVmSize("", true, kBigHost);
  EXPECT_EQ(gen2.vm_size, "Standard_D2ds_v4");
  EXPECT_EQ(gen2.limits.cpus, 2);
  EXPECT_EQ(gen2.limits.memory_bytes, 8 * kGiB);
}

TEST(SandboxVmSizeTest, LooksUpSizesCaseInsensitively) {
  VmSizeLimits v = LimitsForVmSize("standard_b2MS", false, kBigHost);
  EXPECT_TRUE(v.known);
  EXPECT_EQ(v.vm_size, "Standard_B2ms");
  EXPECT_EQ(v.limits.cpus, 2);
  EXPECT_EQ(v.limits.memory_bytes, 8 * kGiB);
  EXPECT_EQ(LimitsForVmSize("Standard_B1s", true, kBigHost).limits.memory_bytes, 1 * kGiB);
  EXPECT_EQ(LimitsForVmSize("Standard_F4s_v2", true, kBigHost).limits.cpus, 4);
  EXPECT_EQ(LimitsForVmSize("Standard_D8s_v5", true, kBigHost).limits.memory_bytes, 32 * kGiB);
}

TEST(SandboxVmSizeTest, KnowsEverySizeTheIssueLists) {
  for (const char* name :
       {"Standard_B1s", "Standard_B2s", "Standard_B2ms", "Standard_D1_v2", "Standard_D2_v2",
        "Standard_D2s_v3", "Standard_D4s_v3", "Standard_D2ds_v4", "Standard_D4ds_v4",
        "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5", "Standard_F2s_v2",
        "Standard_F4s_v2", "Standard_A1_v2", "Standard_A2_v2", "Standard_DS1_v2",
        "Standard_DS2_v2"}) {
    VmSizeLimits v = LimitsForVmSize(name, true, kBigHost);
    EXPECT_TRUE(v.known) << name;
    EXPECT_EQ(v.vm_size, name);
    EXPECT_GT(v.limits.memory_bytes, 0) << name;
    EXPECT_GE(v.limits.cpus, 1) << name;
  }
}

TEST(SandboxVmSizeTest, UnknownSizeFallsBackToTheDefaultWithANote) {
  VmSizeLimits v = LimitsForVmSize("Standard_D2s_v9", true, kBigHost);
  EXPECT_FALSE(v.known);
  EXPECT_EQ(v.vm_size, "Standard_D2ds_v4");
  EXPECT_EQ(v.limits.memory_bytes, 8 * kGiB);
  EXPECT_NE(v.note.find("\"Standard_D2s_v9\" is not in imagesmith's size table"), std::string::npos)
      << v.note;
  EXPECT_NE(v.note.find("did you mean Standard_D2s_v"), std::string::npos) << v.note;
}

TEST(SandboxVmSizeTest, CapsToTheHost) {
  VmSizeLimits v = LimitsForVmSize("Standard_D8s_v5", true, {4 * kGiB, 2});
  EXPECT_TRUE(v.known);
  EXPECT_EQ(v.limits.cpus, 2);
  EXPECT_EQ(v.limits.memory_bytes, 4 * kGiB);
  EXPECT_NE(v.note.find("capped to this host's 2"), std::string::npos) << v.note;
  EXPECT_NE(v.note.find("capped to this host's 4.0 GiB"), std::string::npos) << v.note;
}

TEST(SandboxVmSizeTest, DetectsThisHost) {
  HostResources host = DetectHost();
  EXPECT_GT(host.cpus, 0);
  EXPECT_GT(host.memory_bytes, 64 * kMiB);
  VmSizeLimits v = LimitsForVmSize("Standard_D16s_v5", true);
  EXPECT_LE(v.limits.cpus, host.cpus);
  EXPECT_LE(v.limits.memory_bytes, host.memory_bytes);
}

}  // namespace
}  // namespace imagesmith::sandbox
