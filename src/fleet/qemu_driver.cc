// The qemu node driver (doc/fleet.md). Placeholder until it lands.
#include "fleet/node_driver.h"

namespace imagesmith::fleet {
namespace {

class QemuDriverStub final : public NodeDriver {
 public:
  std::string_view Name() const override { return "qemu"; }
  StatusOr<NodeRuntime> Create(const NodeSpec&) override { return Missing(); }
  Status Adopt(const NodeSpec&, const NodeRuntime&) override { return Missing(); }
  NodeObservation Observe(const std::string&) override {
    NodeObservation obs;
    obs.machine = NodeObservation::Machine::kGone;
    obs.detail = "the qemu node driver is not built yet";
    return obs;
  }
  StatusOr<TaskResult> RunTask(const std::string&, const TaskSpec&,
                               const std::atomic<bool>*) override {
    return Missing();
  }
  Status Reboot(const std::string&) override { return Missing(); }
  Status Reimage(const std::string&, const NodeImage&) override { return Missing(); }
  Status Delete(const std::string&) override { return Status::Ok(); }

 private:
  static Status Missing() { return UnimplementedError("the qemu node driver is not built yet"); }
};

}  // namespace

std::unique_ptr<NodeDriver> MakeQemuDriver(Env&, std::string) {
  return std::make_unique<QemuDriverStub>();
}

}  // namespace imagesmith::fleet
