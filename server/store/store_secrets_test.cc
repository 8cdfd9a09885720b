// The store's secrets and the jobs' fork flag, on both backends (the fixture is
// store_test_fixture.h; the suite is instantiated in store_test.cc).
#include <gtest/gtest.h>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

SecretRecord secret(const std::string& scope, const std::string& name, const std::string& c,
                    UnixMillis at) {
  return SecretRecord{scope, name, std::string(12, '\x01'), c, at, at};
}

TEST_P(StoreTest, SecretsAreKeptPerScopeAndBounded) {
  // Bytes of every value survive (ciphertexts are binary).
  std::string binary("\x00\xff\x7f\n", 4);
  ASSERT_EQ(*store_->put_secret(secret("", "TOKEN", binary, 1'000), 2), SecretPut::created);
  ASSERT_EQ(*store_->put_secret(secret("https://x/r.git", "TOKEN", "repo", 2'000), 2),
            SecretPut::created);
  ASSERT_EQ(*store_->put_secret(secret("", "TOKEN", binary + "2", 3'000), 2), SecretPut::updated);
  ASSERT_EQ(*store_->put_secret(secret("", "OTHER", "o", 4'000), 2), SecretPut::created);
  // Attack: a third name in a full scope is refused; control: replacing one still works.
  EXPECT_EQ(*store_->put_secret(secret("", "THIRD", "t", 5'000), 2), SecretPut::scope_full);
  EXPECT_EQ(*store_->put_secret(secret("", "OTHER", "o2", 6'000), 2), SecretPut::updated);

  auto global = store_->secrets("");
  ASSERT_TRUE(global) << global.error().message;
  ASSERT_EQ(global->size(), 2u);
  EXPECT_EQ((*global)[0].name, "OTHER");
  EXPECT_EQ((*global)[1].name, "TOKEN");
  EXPECT_EQ((*global)[1].ciphertext, binary + "2");
  EXPECT_EQ((*global)[1].nonce, std::string(12, '\x01'));
  EXPECT_EQ((*global)[1].created_at, 1'000);  // kept on a replace
  EXPECT_EQ((*global)[1].updated_at, 3'000);
  auto repo = store_->secrets("https://x/r.git");
  ASSERT_TRUE(repo);
  ASSERT_EQ(repo->size(), 1u);
  EXPECT_EQ((*repo)[0].ciphertext, "repo");

  EXPECT_TRUE(*store_->delete_secret("", "TOKEN"));
  EXPECT_FALSE(*store_->delete_secret("", "TOKEN"));
  EXPECT_EQ(store_->secrets("")->size(), 1u);
  EXPECT_EQ(store_->secrets("https://x/r.git")->size(), 1u);  // another scope's is untouched
}

TEST_P(StoreTest, JobsRememberComingFromAFork) {
  NewJob fork;
  fork.repo = "https://x/r.git";
  fork.event = "pull_request";
  fork.fork = true;
  NewJob same = fork;
  same.fork = false;
  auto a = store_->enqueue(fork);
  auto b = store_->enqueue(same);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE((*store_->job(*a))->fork);
  EXPECT_FALSE((*store_->job(*b))->fork);
}

}  // namespace
}  // namespace boxcar::server
