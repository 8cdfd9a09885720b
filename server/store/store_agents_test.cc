// The store's agents and lease tokens, on both backends (the fixture is store_test_fixture.h;
// the suite is instantiated in store_test.cc).
#include <gtest/gtest.h>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

TEST_P(StoreTest, AgentNamesAreRegisteredOnce) {
  auto a = store_->add_agent("builder", {"linux"}, "hash-a", 1'000);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(*a);
  EXPECT_GT((*a)->id, 0);
  EXPECT_EQ((*a)->name, "builder");
  EXPECT_EQ((*a)->labels, std::vector<std::string>{"linux"});
  EXPECT_EQ((*a)->credential_hash, "hash-a");
  EXPECT_EQ((*a)->created_at, 1'000);
  EXPECT_FALSE((*a)->revoked_at);

  auto again = store_->add_agent("builder", {}, "hash-b", 2'000);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(*again);  // taken: the first agent keeps it, and its credential
  auto named = store_->agent_named("builder");
  ASSERT_TRUE(named && *named);
  EXPECT_EQ((*named)->id, (*a)->id);
  EXPECT_EQ((*named)->credential_hash, "hash-a");

  auto b = store_->add_agent("other", {}, "hash-c", 3'000);
  ASSERT_TRUE(b && *b);
  auto all = store_->agents();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "builder");
  EXPECT_EQ((*all)[1].name, "other");
  EXPECT_FALSE(*store_->agent(4242));
  EXPECT_FALSE(*store_->agent_named("nobody"));

  ASSERT_TRUE(store_->agent_seen((*b)->id, {"arm64", "gpu"}, 9'000));
  auto seen = store_->agent((*b)->id);
  ASSERT_TRUE(seen && *seen);
  EXPECT_EQ((*seen)->last_seen_at, 9'000);
  EXPECT_EQ((*seen)->labels, (std::vector<std::string>{"arm64", "gpu"}));
}

TEST_P(StoreTest, RevokedAgentKeepsItsNameUntilForgotten) {
  auto a = store_->add_agent("builder", {}, "hash-a", 1'000);
  ASSERT_TRUE(a && *a);
  int64_t id = (*a)->id;
  EXPECT_FALSE(*store_->forget_agent(id));  // only a revoked agent can be forgotten
  ASSERT_TRUE(*store_->revoke_agent(id, 2'000));
  ASSERT_TRUE(*store_->revoke_agent(id, 3'000));  // again: the first time stays
  EXPECT_EQ((*store_->agent(id))->revoked_at, 2'000);
  EXPECT_FALSE(*store_->add_agent("builder", {}, "hash-b", 4'000));
  EXPECT_FALSE(*store_->revoke_agent(id + 100, 4'000));

  ASSERT_TRUE(*store_->forget_agent(id));
  EXPECT_FALSE(*store_->agent(id));
  auto reused = store_->add_agent("builder", {}, "hash-b", 5'000);
  ASSERT_TRUE(reused && *reused);
  EXPECT_NE((*reused)->id, id);
  EXPECT_FALSE((*reused)->revoked_at);
}

TEST_P(StoreTest, ReportsNeedTheClaimsLeaseToken) {
  int64_t id = enqueue();
  LeaseHolder holder{7, "a1", "token-hash-1"};
  auto job = store_->claim(holder, {}, 60'000, 1'000);
  ASSERT_TRUE(job && *job);
  EXPECT_EQ((*job)->agent, "a1");

  // The same agent with another token, and another agent with the right token: refused.
  for (const LeaseHolder& wrong : {LeaseHolder{7, "a1", "token-hash-2"}, LeaseHolder{8, "a1", "token-hash-1"},
                                   LeaseHolder{7, "a1", ""}}) {
    EXPECT_FALSE(store_->heartbeat(id, wrong, 60'000, 2'000)->lease_held);
    EXPECT_FALSE(*store_->holds_lease(id, wrong));
    EXPECT_FALSE(*store_->update_step(id, wrong, StepRecord{"build", "running", {}, {}, {}, "", {}}));
    EXPECT_FALSE(*store_->append_log(id, wrong, chunk("build", 0, "forged\n"), 0));
    EXPECT_FALSE(*store_->add_artifact(id, wrong, {"x", std::string(64, 'a'), 1, "build", 100, ""}));
    EXPECT_FALSE(store_->sync_previews(id, wrong, {}, 2'000)->accepted);
    EXPECT_FALSE(*store_->complete(id, wrong, "success", "", 2'000));
  }
  EXPECT_TRUE(store_->logs(id, "", 0, 0)->empty());
  EXPECT_TRUE(get(id).steps.empty());

  // The holder (the control): every report is taken.
  EXPECT_TRUE(store_->heartbeat(id, holder, 60'000, 2'000)->lease_held);
  EXPECT_TRUE(*store_->holds_lease(id, holder));
  EXPECT_TRUE(*store_->update_step(id, holder, StepRecord{"build", "running", {}, {}, {}, "", {}}));
  EXPECT_TRUE(*store_->append_log(id, holder, chunk("build", 0, "real\n"), 0));
  EXPECT_TRUE(*store_->add_artifact(id, holder, {"x", std::string(64, 'a'), 1, "build", 100, ""}));
  EXPECT_TRUE(*store_->complete(id, holder, "success", "", 3'000));
  EXPECT_EQ(get(id).state, "success");
}

TEST_P(StoreTest, ReclaimedJobRefusesThePreviousLeaseToken) {
  int64_t id = enqueue();
  LeaseHolder first{1, "a1", "first-token-hash"};
  ASSERT_TRUE(*store_->claim(first, {}, 1'000, 1'000));
  ASSERT_EQ(*store_->expire_leases(2'500), std::vector<int64_t>{id});
  // The same agent claims it again: the new claim has a new token.
  LeaseHolder second{1, "a1", "second-token-hash"};
  auto again = store_->claim(second, {}, 60'000, 3'000);
  ASSERT_TRUE(again && *again);
  EXPECT_EQ((*again)->attempt, 2);
  EXPECT_FALSE(store_->heartbeat(id, first, 60'000, 3'100)->lease_held);
  EXPECT_FALSE(*store_->append_log(id, first, chunk("build", 0, "late\n"), 0));
  EXPECT_FALSE(*store_->complete(id, first, "success", "", 3'200));
  EXPECT_TRUE(store_->heartbeat(id, second, 60'000, 3'100)->lease_held);
  EXPECT_TRUE(*store_->complete(id, second, "failed", "", 3'300));
  EXPECT_EQ(get(id).state, "failed");
}

TEST_P(StoreTest, RevokingAnAgentEndsItsLeases) {
  auto agent = store_->add_agent("a1", {}, "hash", 500);
  ASSERT_TRUE(agent && *agent);
  int64_t mine = enqueue(), theirs = enqueue();
  LeaseHolder holder{(*agent)->id, "a1", "token"};
  ASSERT_EQ((*store_->claim(holder, {}, 60'000, 1'000))->id, mine);
  ASSERT_EQ((*store_->claim(LeaseHolder{(*agent)->id + 1, "a2", "other"}, {}, 60'000, 1'000))->id,
            theirs);
  ASSERT_TRUE(*store_->revoke_agent((*agent)->id, 2'000));
  EXPECT_EQ(*store_->expire_leases(2'000), std::vector<int64_t>{mine});
  EXPECT_EQ(get(mine).state, "queued");
  EXPECT_EQ(get(mine).attempt, 2);
  EXPECT_EQ(get(theirs).state, "running");  // another agent's job is untouched
  EXPECT_FALSE(*store_->complete(mine, holder, "success", "", 2'100));
}

TEST_P(StoreTest, PreviewsAfterCompletionNeedTheLastLease) {
  int64_t id = enqueue();
  LeaseHolder holder{1, "a1", "token"};
  ASSERT_TRUE(*store_->claim(holder, {}, 60'000, 1'000));
  PreviewRecord p{"web", "app", 8000, "http://u/", "http://p/", "", 0, 0, {}, {}};
  ASSERT_TRUE(store_->sync_previews(id, holder, {p}, 1'500)->accepted);
  ASSERT_TRUE(*store_->complete(id, holder, "success", "", 2'000));
  EXPECT_TRUE(store_->sync_previews(id, holder, {p}, 3'000)->accepted);
  EXPECT_FALSE(store_->sync_previews(id, LeaseHolder{1, "a1", "guess"}, {}, 3'100)->accepted);
  EXPECT_FALSE(store_->sync_previews(id, LeaseHolder{2, "a1", "token"}, {}, 3'100)->accepted);
  ASSERT_EQ(store_->previews(id)->size(), 1u);
  EXPECT_FALSE(store_->previews(id)->at(0).closed_at);  // the refused syncs closed nothing
}

}  // namespace
}  // namespace boxcar::server
