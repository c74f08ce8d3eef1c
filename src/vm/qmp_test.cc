#include "vm/qmp.h"

#include <gtest/gtest.h>

namespace imagesmith::vm {
namespace {

// Abridged "info registers -a" of a guest whose CPU 0 runs the kernel in
// long mode while CPU 1 still waits in real mode.
constexpr const char kTwoCpus[] =
    "\r\nCPU#0\r\nRAX=0000000000000000 RBX=ffffffff8ddb96c2\r\nRIP=ffffffff8ddb96c2 "
    "RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
    "\r\nCPU#1\r\nEAX=00000000 EBX=00000000\r\nEIP=000fd09a EFL=00000002 [-------] CPL=0\r\n";

TEST(QmpTest, InstructionPointersAreReadForEveryCpuInEitherMode) {
  std::vector<uint64_t> ips = InstructionPointers(kTwoCpus);
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[0], 0xffffffff8ddb96c2ULL);
  EXPECT_EQ(ips[1], 0xfd09aULL);
  EXPECT_TRUE(InKernelSpace(ips[0]));
  EXPECT_FALSE(InKernelSpace(ips[1]));
  // GRUB's relocator, the kernel's decompressor: still not the kernel.
  EXPECT_FALSE(InKernelSpace(0x437801e));
  EXPECT_TRUE(InstructionPointers("no registers here").empty());
}

}  // namespace
}  // namespace imagesmith::vm
