#include "api/batch_body.h"

#include <gtest/gtest.h>

namespace imagesmith::api {
namespace {

Json Parse(const std::string& text) { return *ParseJson(text); }

const char kImage[] =
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/d/"
    "versions/1.0.0";

TEST(BatchBodyTest, ReadsTheDataPlanePool) {
  auto spec = ParsePoolBody(Parse(std::string(R"({"id": "p1", "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {"imageReference": {"virtualMachineImageId": ")") +
                                  kImage + R"("}, "nodeAgentSKUId": "batch.node.debian 12"},
        "targetDedicatedNodes": 2, "targetLowPriorityNodes": 1, "resizeTimeout": "PT20M",
        "taskSlotsPerNode": 4,
        "startTask": {"commandLine": "touch /ready", "waitForSuccess": false,
                      "maxTaskRetryCount": 3,
                      "environmentSettings": [{"name": "A", "value": "1"}],
                      "userIdentity": {"autoUser": {"elevationLevel": "admin"}}}})"),
                            "p1");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->vm_size, "Standard_D2s_v3");
  EXPECT_EQ(spec->image_id, kImage);
  EXPECT_EQ(spec->target_dedicated, 2);
  EXPECT_EQ(spec->target_low_priority, 1);
  EXPECT_EQ(spec->resize_timeout_s, 1200);
  EXPECT_EQ(spec->task_slots_per_node, 4);
  ASSERT_TRUE(spec->start_task.has_value());
  EXPECT_FALSE(spec->start_task->wait_for_success);
  EXPECT_TRUE(spec->start_task->admin);
  EXPECT_EQ(spec->start_task->max_task_retry_count, 3);
  EXPECT_EQ(spec->node_driver, "qemu");
}

TEST(BatchBodyTest, ReadsTheManagementPlaneShape) {
  auto spec = ParsePoolBody(
      Parse(std::string(R"({"location": "eastus", "properties": {"vmSize": "Standard_D2s_v3",
        "deploymentConfiguration": {"virtualMachineConfiguration": {
          "imageReference": {"id": ")") +
            kImage + R"("}, "nodeAgentSkuId": "batch.node.debian 12"}},
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 3, "resizeTimeout": "PT5M"}},
        "imagesmith": {"nodeDriver": "SIM"}}})"),
      "p1");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->image_id, kImage);
  EXPECT_EQ(spec->target_dedicated, 3);
  EXPECT_EQ(spec->resize_timeout_s, 300);
  EXPECT_EQ(spec->node_driver, "sim");
  EXPECT_EQ(spec->location, "eastus");
  EXPECT_EQ(spec->dedicated_path, "properties.scaleSettings.fixedScale.targetDedicatedNodes");
}

TEST(BatchBodyTest, ErrorsNameTheJsonPath) {
  std::string good_vmc = std::string(R"("virtualMachineConfiguration": {"imageReference":
      {"virtualMachineImageId": ")") +
                         kImage + R"("}, "nodeAgentSKUId": "batch.node.debian 12"})";
  struct Case {
    std::string body;
    std::string says;
  } cases[] = {
      {R"({"vmSize": "Standard_D2s_v3", )" + good_vmc + R"(, "resizeTimeout": "PT4M"})",
       "resizeTimeout: 'PT4M' is shorter than Batch's minimum of PT5M"},
      {R"({"vmSize": "Standard_D2s_v3", )" + good_vmc + R"(, "targetDedicatedNodes": -2})",
       "targetDedicatedNodes: must not be negative"},
      {R"({"vmSize": "Standard_D2s_v3", )" + good_vmc + R"(, "colour": 1})",
       "colour: unknown field"},
      {R"({"vmSize": "Standard_D2s_v3", "virtualMachineConfiguration": {"nodeAgentSKUId": "x"}})",
       "virtualMachineConfiguration.imageReference.virtualMachineImageId: is required"},
      {R"({"vmSize": "Standard_D2s_v3", )" + good_vmc +
           R"(, "startTask": {"commandLine": "x", "userIdentity": {"autoUser": {"elevationLevel": "root"}}}})",
       "startTask.userIdentity.autoUser.elevationLevel"},
      {R"({"id": "other", "vmSize": "Standard_D2s_v3", )" + good_vmc + "}",
       "id: 'other' differs from the pool's name 'p1'"},
      {R"({"vmSize": "Standard_D2s_v3", )" + good_vmc + R"(, "imagesmith": {"nodeDriver": "kvm"}})",
       "imagesmith.nodeDriver: 'kvm' is not a node driver"},
  };
  for (const Case& c : cases) {
    auto spec = ParsePoolBody(Parse(c.body), "p1");
    ASSERT_FALSE(spec.ok()) << c.body;
    EXPECT_NE(spec.status().message().find(c.says), std::string::npos) << spec.status().message();
  }
}

TEST(BatchBodyTest, ResizeJobAndTaskBodies) {
  auto resize = ParseResizeBody(
      Parse(R"({"targetDedicatedNodes": 1, "nodeDeallocationOption": "taskcompletion"})"));
  ASSERT_TRUE(resize.ok());
  EXPECT_EQ(*resize->target_dedicated, 1);
  EXPECT_EQ(resize->deallocation, batch::DeallocationOption::kTaskCompletion);
  EXPECT_FALSE(ParseResizeBody(Parse(R"({"nodeDeallocationOption": "later"})")).ok());
  auto job = ParseJobBody(Parse(R"({"id": "j", "poolInfo": {"poolId": "p1"}})"), "j");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->pool_id, "p1");
  EXPECT_FALSE(ParseJobBody(Parse(R"({"id": "j"})"), "j").ok());
  auto task = ParseTaskBody(Parse(R"({"id": "t", "commandLine": "echo hi", "requiredSlots": 2,
                "constraints": {"maxTaskRetryCount": 1}})"),
                            "t");
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->required_slots, 2);
  EXPECT_EQ(task->command.max_task_retry_count, 1);
  auto empty = ParseTaskBody(Parse(R"({"id": "t", "commandLine": "  "})"), "t");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("commandLine: must not be empty"), std::string::npos);
}

}  // namespace
}  // namespace imagesmith::api
