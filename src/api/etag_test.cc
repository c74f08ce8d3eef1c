#include "api/etag.h"

#include <gtest/gtest.h>

#include "api/arm_error.h"

namespace imagesmith::api {
namespace {

meta::Resource AtGeneration(int64_t g) {
  meta::Resource r{ResourceId::ForResourceGroup("00000000-0000-0000-0000-000000000001", "g"),
                   "",
                   Json::MakeObject(),
                   Json::MakeObject(),
                   0,
                   0,
                   0};
  r.generation = g;
  return r;
}

TEST(EtagTest, IfMatchMustEqualTheCurrentEtag) {
  Request req;
  req.id = AtGeneration(3).id;
  req.if_match = "\"3\"";
  meta::Resource at3 = AtGeneration(3), at4 = AtGeneration(4);
  EXPECT_TRUE(CheckPreconditions(req, &at3).ok());
  Status s = CheckPreconditions(req, &at4);
  EXPECT_EQ(ToArmError(s).code, "PreconditionFailed");
  EXPECT_EQ(ToArmError(s).http_status, 412);
  EXPECT_EQ(CheckPreconditions(req, nullptr).code(), StatusCode::kAborted);
  req.if_match = "*";
  EXPECT_TRUE(CheckPreconditions(req, &at4).ok());
}

TEST(EtagTest, IfNoneMatchStarRefusesAnExistingResource) {
  Request req;
  req.id = AtGeneration(1).id;
  req.if_none_match = "*";
  meta::Resource at1 = AtGeneration(1);
  EXPECT_TRUE(CheckPreconditions(req, nullptr).ok());
  EXPECT_EQ(ToArmError(CheckPreconditions(req, &at1)).code, "PreconditionFailed");
}

}  // namespace
}  // namespace imagesmith::api
