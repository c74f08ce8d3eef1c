#include "builder/step_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace imagesmith::build {
namespace {

TEST(StepKeyTest, ChangesWithParentDefinitionAndInputs) {
  Json def = *ParseJson(R"({"type":"Shell","inline":["echo"]})");
  Json other = *ParseJson(R"({"type":"Shell","inline":["echo 2"]})");
  std::string k = StepKey("p", def, {});
  EXPECT_EQ(k, StepKey("p", def, {}));
  EXPECT_NE(k, StepKey("q", def, {}));
  EXPECT_NE(k, StepKey("p", other, {}));
  EXPECT_NE(k, StepKey("p", def, {Sha256Of("x")}));
  EXPECT_EQ(k.size(), 64u);
}

class StepCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imagesmith-cache-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(env_->RemoveAll(dir_).ok()); }
  std::string MakeUpper(const std::string& name, size_t bytes) {
    std::string d = dir_ + "/" + name;
    EXPECT_TRUE(env_->CreateDirs(d + "/etc").ok());
    EXPECT_TRUE(env_->WriteFileAtomic(d + "/etc/f", std::string(bytes, 'x')).ok());
    return d;
  }
  Env* env_ = Env::Default();
  std::string dir_;
};

TEST_F(StepCacheTest, CommitMovesTheLayerWithoutCopyingAndLookupFindsIt) {
  StepCache cache(*env_, dir_ + "/cache");
  EXPECT_FALSE(cache.Lookup("k1").has_value());
  std::string upper = MakeUpper("u1", 10);
  auto layer = cache.Commit("k1", upper, Json::MakeObject());
  ASSERT_TRUE(layer.ok()) << layer.status().ToString();
  EXPECT_FALSE(env_->FileExists(upper));  // moved, not copied
  EXPECT_EQ(*env_->ReadFile(*layer + "/etc/f", 100), std::string(10, 'x'));
  EXPECT_EQ(cache.Lookup("k1"), *layer);
}

TEST_F(StepCacheTest, PruneRemovesLeastRecentlyUsedFirst) {
  StepCache cache(*env_, dir_ + "/cache");
  ASSERT_TRUE(cache.Commit("old", MakeUpper("a", 200000), Json::MakeObject()).ok());
  env_->SleepFor(std::chrono::milliseconds(20));
  ASSERT_TRUE(cache.Commit("new", MakeUpper("b", 200000), Json::MakeObject()).ok());
  env_->SleepFor(std::chrono::milliseconds(20));
  ASSERT_TRUE(cache.Lookup("old").has_value());  // touch: now most recent
  auto removed = cache.Prune(250000);
  ASSERT_TRUE(removed.ok());
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ((*removed)[0].key, "new");
  EXPECT_TRUE(cache.Lookup("old").has_value());
  EXPECT_FALSE(cache.Lookup("new").has_value());
}

}  // namespace
}  // namespace imagesmith::build
