// The list of durable operations at a scope (imagesmith's own, not Azure's):
// GET {subscription or group}/providers/Microsoft.Resources/operations. The
// web console's Operations view reads it instead of remembering what one
// browser tab started.
#include <algorithm>

#include "api/arm_error.h"
#include "api/operations.h"
#include "api/resource_providers.h"
#include "auth/authorize.h"
#include "base/strings.h"

namespace imagesmith::api {
namespace {

// How many of the newest records a list looks at before filtering.
constexpr int64_t kScanLimit = 1000;

bool WithinScope(const ResourceId& target, const ResourceId& scope) {
  if (!EqualsIgnoreCase(target.subscription(), scope.subscription())) return false;
  if (scope.kind() == ResourceId::Kind::kSubscription) return true;
  return EqualsIgnoreCase(target.resource_group(), scope.resource_group());
}

class OperationListProvider final : public Provider {
 public:
  std::string_view Type() const override { return kOperationListType; }
  std::vector<std::string> ApiVersions() const override { return {"2021-04-01"}; }

  StatusOr<Response> List(Services& s, const Request& req) override {
    if (req.id.kind() == ResourceId::Kind::kResource) {
      return ArmStatus(StatusCode::kInvalidArgument, "InvalidResourceType",
                       "operations are listed at a subscription or a resource group");
    }
    std::optional<ResourceId> target;
    if (auto it = req.params.find("target"); it != req.params.end()) {
      auto parsed = ResourceId::Parse(it->second);
      if (!parsed.ok()) {
        return ArmStatus(StatusCode::kInvalidArgument, "InvalidParameter",
                         "target: " + parsed.status().message());
      }
      target = *parsed;
    }
    std::string status;
    if (auto it = req.params.find("status"); it != req.params.end()) {
      for (std::string_view known : {"InProgress", "Succeeded", "Failed", "Canceled"}) {
        if (EqualsIgnoreCase(it->second, known)) status = std::string(known);
      }
      if (status.empty()) {
        return ArmStatus(StatusCode::kInvalidArgument, "InvalidParameter",
                         "status must be InProgress, Succeeded, Failed or Canceled");
      }
    }
    std::vector<Json> items;
    const int64_t now = s.env->NowMicros();
    Status read = s.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(auto rows,
                       txn.ListOperations(target ? target->ToString() : "", status, kScanLimit));
      for (const meta::OperationRow& row : rows) {
        Operation op = OperationFromRow(row);
        if (!WithinScope(op.target, req.id)) continue;
        Status may =
            auth::Authorize(txn, req.caller.principal, op.target.FullType() + "/read", op.target);
        if (may.code() == StatusCode::kPermissionDenied) continue;
        RETURN_IF_ERROR(may);
        Json j = op.ToJson(/*details=*/true);
        // A record whose worker died reads as what it really is once it is
        // reaped (Operations::Get); the list says so without writing.
        if (Operations::Abandoned(op, now)) j.Set("abandoned", Json::Bool(true));
        items.push_back(std::move(j));
      }
      return Status::Ok();
    });
    if (!read.ok()) return read;
    Response out;
    out.body = Json::MakeObject();
    Json value = Json::MakeArray();
    for (Json& j : items) value.Append(std::move(j));
    out.body.Set("value", std::move(value));
    return out;
  }
};

}  // namespace

std::unique_ptr<Provider> NewOperationListProvider() {
  return std::make_unique<OperationListProvider>();
}

}  // namespace imagesmith::api
