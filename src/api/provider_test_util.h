// A test fixture for providers: a real SQLite metadata database and data
// directory in a temp dir, the default subscription, the built-in registry,
// the owner and a stranger (a principal with no rights).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "api/arm_error.h"
#include "api/operations.h"
#include "api/provider.h"
#include "meta/scopes.h"

namespace imagesmith::api {

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-api-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto m = meta::OpenSqliteMetaStore(env_, dir_ + "/meta.db");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    meta_ = std::move(*m);
    ASSERT_TRUE(meta_
                    ->Update([&](meta::Transaction& txn) -> Status {
                      ASSIGN_OR_RETURN(meta::Resource sub,
                                       meta::EnsureDefaultSubscription(txn, env_));
                      services_.subscription = sub.id.subscription();
                      return Status::Ok();
                    })
                    .ok());
    services_.env = &env_;
    services_.meta = meta_.get();
    services_.data_dir = dir_;
    registry_ = BuiltinRegistry();
    // Durable operations (a version's replication) run in this process.
    operations_ = std::make_unique<Operations>(services_);
    AddBuiltinHandlers(*operations_);
    services_.operations = operations_.get();
    owner_.principal.name = "owner";
    owner_.principal.is_owner = true;
    stranger_.principal.kind = auth::PrincipalKind::kServicePrincipal;
    stranger_.principal.name = "stranger";
    stranger_.principal.object_id = "99999999-0000-0000-0000-000000000001";
  }
  void TearDown() override {
    operations_.reset();
    meta_.reset();
    ASSERT_TRUE(env_.RemoveAll(dir_).ok());
  }

  StatusOr<Response> Call(Verb verb, const ResourceId& id, Json body = Json(),
                          const Caller* caller = nullptr) {
    Request r;
    r.verb = verb;
    r.id = id;
    r.body = std::move(body);
    r.caller = caller != nullptr ? *caller : owner_;
    return Dispatch(r);
  }
  StatusOr<Response> Dispatch(const Request& r) { return registry_->Dispatch(services_, r); }
  StatusOr<Response> List(const ResourceId& scope, const std::string& type,
                          const Caller* caller = nullptr) {
    Request r;
    r.verb = Verb::kList;
    r.id = scope;
    r.list_type = type;
    r.caller = caller != nullptr ? *caller : owner_;
    return Dispatch(r);
  }
  static ArmError Arm(const StatusOr<Response>& r) {
    EXPECT_FALSE(r.ok());
    return ToArmError(r.status());
  }
  static Json Parse(const std::string& text) {
    auto j = ParseJson(text);
    EXPECT_TRUE(j.ok()) << text;
    return j.ok() ? *j : Json();
  }
  static std::vector<std::string> Names(const Response& list) {
    std::vector<std::string> out;
    for (const Json& item : list.body.Find("value")->array_items()) {
      out.push_back(item.Find("name")->string_value());
    }
    return out;
  }
  ResourceId Group(const std::string& name) const { return services_.Group(name); }
  ResourceId Sub() const { return ResourceId::ForSubscription(services_.subscription); }
  void MakeGroup(const std::string& name, const std::string& location = "eastus") {
    auto r = Call(Verb::kPut, Group(name), Parse(R"({"location": ")" + location + R"("})"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  Env& env_ = *Env::Default();
  std::string dir_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<Operations> operations_;
  Services services_;
  std::unique_ptr<Registry> registry_;
  Caller owner_, stranger_;
};

}  // namespace imagesmith::api
