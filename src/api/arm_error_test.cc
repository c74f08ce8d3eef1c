#include "api/arm_error.h"

#include <gtest/gtest.h>

namespace imagesmith::api {
namespace {

TEST(ArmErrorTest, MapsStatusCodesOntoArmCodesAndHttpStatuses) {
  ArmError e = ToArmError(NotFoundError("the gallery 'g' was not found"), "/subscriptions/x");
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.code, "ResourceNotFound");
  EXPECT_EQ(e.message, "the gallery 'g' was not found");
  EXPECT_EQ(
      e.ToJson().Dump(-1),
      R"({"error":{"code":"ResourceNotFound","message":"the gallery 'g' was not found","target":"/subscriptions/x"}})");
  EXPECT_EQ(ToArmError(PermissionDeniedError("no")).http_status, 403);
  EXPECT_EQ(ToArmError(AbortedError("etag")).code, "PreconditionFailed");
  EXPECT_EQ(ToArmError(InvalidArgumentError("bad")).code, "InvalidRequestContent");
}

TEST(ArmErrorTest, KeepsAnExplicitArmCodeAndDropsItsPrefix) {
  ArmError e = ToArmError(ArmStatus(StatusCode::kInvalidArgument, "InvalidApiVersionParameter",
                                    "the api-version '1' is not supported"));
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.code, "InvalidApiVersionParameter");
  EXPECT_EQ(e.message, "the api-version '1' is not supported");
}

TEST(ArmErrorTest, AMessageThatMerelyStartsWithAWordIsNotTakenForACode) {
  ArmError e = ToArmError(InvalidArgumentError("Gallery: name too long"));
  EXPECT_EQ(e.code, "InvalidRequestContent");
  EXPECT_EQ(e.message, "Gallery: name too long");
}

}  // namespace
}  // namespace imagesmith::api

namespace imagesmith::api {
namespace {

TEST(ArmErrorTest, CarriesATargetInTheStatusAndKeepsTheMessage) {
  Status s = ArmStatus(StatusCode::kInvalidArgument, "InvalidRequestContent", "publisher: bad",
                       "properties.identifier.publisher");
  ArmError e = ToArmError(s);
  EXPECT_EQ(e.code, "InvalidRequestContent");
  EXPECT_EQ(e.target, "properties.identifier.publisher");
  EXPECT_EQ(e.message, "publisher: bad");
  // WithTarget keeps code and message, adds the target once.
  Status nf = WithTarget(NotFoundError("gallery 'g' could not be found"), "/subscriptions/s/x");
  EXPECT_EQ(nf.code(), StatusCode::kNotFound);
  EXPECT_EQ(ToArmError(nf).message, "gallery 'g' could not be found");
  EXPECT_EQ(ToArmError(nf).target, "/subscriptions/s/x");
  EXPECT_EQ(ToArmError(WithTarget(nf, "/other")).target, "/subscriptions/s/x");
  EXPECT_TRUE(WithTarget(Status::Ok(), "/x").ok());
  // An explicit target wins over the one in the status.
  EXPECT_EQ(ToArmError(nf, "/given").target, "/given");
}

}  // namespace
}  // namespace imagesmith::api
