// Sandboxes of the sandbox API (migration 11) on both backends: the unique names and
// idempotency keys, lists with filters and paging, the agents' syncs, placement candidates and
// the TTL. The fixture is store_test_fixture.h; the suite is instantiated in store_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

SandboxRecord sandbox(std::string id, std::string owner, std::string name = "",
                      int64_t agent_id = 1) {
  SandboxRecord s;
  s.id = std::move(id);
  s.owner = std::move(owner);
  s.name = std::move(name);
  s.agent_id = agent_id;
  s.created_at = s.last_active_at = 1000;
  return s;
}

std::vector<std::string> ids(const Result<std::vector<SandboxRecord>>& list) {
  EXPECT_TRUE(list) << list.error().message;
  std::vector<std::string> out;
  if (list) {
    for (const auto& s : *list) out.push_back(s.id);
  }
  return out;
}

TEST_P(StoreTest, SandboxNamesAndIdempotencyKeysAreUniquePerOwner) {
  auto a = sandbox("aaaaaaaaaaaa", "alice", "web");
  a.labels = {{"team", "x"}};
  a.expires_at = 5000;
  a.ttl_ms = 4000;
  a.spec = R"({"image":"host"})";
  ASSERT_TRUE(*store_->insert_sandbox(a));
  // The same name for another owner is fine; for the same owner it is refused, as is the id.
  EXPECT_TRUE(*store_->insert_sandbox(sandbox("bbbbbbbbbbbb", "bob", "web")));
  EXPECT_FALSE(*store_->insert_sandbox(sandbox("cccccccccccc", "alice", "web")));
  EXPECT_FALSE(*store_->insert_sandbox(sandbox("aaaaaaaaaaaa", "carol")));
  // Unnamed ones never collide.
  EXPECT_TRUE(*store_->insert_sandbox(sandbox("dddddddddddd", "alice")));
  EXPECT_TRUE(*store_->insert_sandbox(sandbox("eeeeeeeeeeee", "alice")));
  auto keyed = sandbox("ffffffffffff", "alice");
  keyed.idempotency_key = "k1";
  EXPECT_TRUE(*store_->insert_sandbox(keyed));
  keyed.id = "gggggggggggg";
  EXPECT_FALSE(*store_->insert_sandbox(keyed));
  EXPECT_EQ((*store_->sandbox_by_key("alice", "k1"))->id, "ffffffffffff");
  EXPECT_FALSE(*store_->sandbox_by_key("bob", "k1"));

  auto got = store_->sandbox("aaaaaaaaaaaa");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->labels, a.labels);
  EXPECT_EQ((*got)->expires_at, 5000);
  EXPECT_EQ((*got)->spec, a.spec);
  EXPECT_EQ((*got)->state, "creating");
  EXPECT_EQ((*store_->sandbox_named("alice", "web"))->id, "aaaaaaaaaaaa");
  EXPECT_FALSE(*store_->sandbox_named("alice", ""));
  EXPECT_EQ(*store_->count_sandboxes("alice"), 4);
  EXPECT_EQ(*store_->count_sandboxes(""), 5);

  SandboxRecord patched = **got;
  patched.state = "running";
  patched.keep_alive = true;
  patched.labels = {{"team", "y"}};
  patched.expires_at.reset();
  EXPECT_TRUE(*store_->update_sandbox(patched));
  got = store_->sandbox("aaaaaaaaaaaa");
  EXPECT_TRUE((*got)->keep_alive);
  EXPECT_EQ((*got)->state, "running");
  EXPECT_FALSE((*got)->expires_at);
  EXPECT_TRUE(*store_->delete_sandbox("aaaaaaaaaaaa"));
  EXPECT_FALSE(*store_->delete_sandbox("aaaaaaaaaaaa"));
  EXPECT_FALSE(*store_->sandbox("aaaaaaaaaaaa"));
  // Its name is free again.
  EXPECT_TRUE(*store_->insert_sandbox(sandbox("hhhhhhhhhhhh", "alice", "web")));
}

TEST_P(StoreTest, SandboxListsFilterByOwnerStateNameAndLabelAndPageById) {
  for (const char* id : {"aaaaaaaaaaa2", "aaaaaaaaaaa3", "aaaaaaaaaaa4", "aaaaaaaaaaa5"}) {
    auto s = sandbox(id, "alice", std::string("n") + id[11]);
    s.labels = {{"env", id[11] % 2 ? "odd" : "even"}};
    if (id[11] == '5') s.state = "running";
    ASSERT_TRUE(*store_->insert_sandbox(s));
  }
  ASSERT_TRUE(*store_->insert_sandbox(sandbox("bbbbbbbbbbbb", "bob")));
  SandboxQuery q;
  q.owner = "alice";
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(store_->sandboxes(q)), (V{"aaaaaaaaaaa2", "aaaaaaaaaaa3", "aaaaaaaaaaa4", "aaaaaaaaaaa5"}));
  q.limit = 2;
  EXPECT_EQ(ids(store_->sandboxes(q)), (V{"aaaaaaaaaaa2", "aaaaaaaaaaa3"}));
  q.after_id = "aaaaaaaaaaa3";
  EXPECT_EQ(ids(store_->sandboxes(q)), (V{"aaaaaaaaaaa4", "aaaaaaaaaaa5"}));
  q = {};
  q.owner = "alice";
  q.label_key = "env";
  q.label_value = "odd";
  q.limit = 1;
  EXPECT_EQ(ids(store_->sandboxes(q)), (V{"aaaaaaaaaaa3"}));
  q.limit = 10;
  EXPECT_EQ(ids(store_->sandboxes(q)), (V{"aaaaaaaaaaa3", "aaaaaaaaaaa5"}));
  q = {};
  q.owner = "alice";
  q.state = "running";
  EXPECT_EQ(ids(store_->sandboxes(q)), (V{"aaaaaaaaaaa5"}));
  q.state.clear();
  q.name = "n4";
  EXPECT_EQ(ids(store_->sandboxes(q)), (V{"aaaaaaaaaaa4"}));
  q = {};  // every owner (an admin)
  EXPECT_EQ(ids(store_->sandboxes(q)).size(), 5u);
}

TEST_P(StoreTest, SandboxSyncUpdatesTheAgentsOwnAndNamesTheRestForDeletion) {
  auto agent1 = store_->add_agent("a1", {"gpu"}, "h1", 100);
  auto agent2 = store_->add_agent("a2", {}, "h2", 100);
  ASSERT_TRUE(agent1 && *agent1 && agent2 && *agent2);
  int64_t id1 = (*agent1)->id, id2 = (*agent2)->id;
  auto mine = sandbox("aaaaaaaaaaaa", "alice", "", id1);
  mine.state = "running";
  ASSERT_TRUE(*store_->insert_sandbox(mine));
  ASSERT_TRUE(*store_->insert_sandbox(sandbox("cccccccccccc", "alice", "", id1)));  // creating
  ASSERT_TRUE(*store_->insert_sandbox(sandbox("bbbbbbbbbbbb", "alice", "", id2)));

  SandboxAgentRecord a;
  a.agent_id = id1;
  a.endpoint = "http://127.0.0.1:1";
  a.key = "k";
  a.slots_free = 3;
  a.memory_free_bytes = 1 << 30;
  std::vector<SandboxSyncItem> items = {
      {"aaaaaaaaaaaa", "paused", 7000, R"([{"port":8000}])", ""},
      {"cccccccccccc", "running", 7000, "[]", ""},
      {"bbbbbbbbbbbb", "running", 7000, "[]", ""},  // another agent's
      {"zzzzzzzzzzzz", "running", 7000, "[]", ""},  // nobody's
  };
  auto deleted = store_->sync_sandboxes(a, items, 9000);
  ASSERT_TRUE(deleted) << deleted.error().message;
  EXPECT_EQ(*deleted, (std::vector<std::string>{"bbbbbbbbbbbb", "zzzzzzzzzzzz"}));
  auto got = *store_->sandbox("aaaaaaaaaaaa");
  EXPECT_EQ(got->state, "paused");
  EXPECT_EQ(got->last_active_at, 7000);
  EXPECT_EQ(got->ports, R"([{"port":8000}])");
  // Still creating: the create call decides.
  EXPECT_EQ((*store_->sandbox("cccccccccccc"))->state, "creating");
  EXPECT_EQ((*store_->sandbox("bbbbbbbbbbbb"))->last_active_at, 1000);

  auto agent = *store_->sandbox_agent(id1);
  ASSERT_TRUE(agent);
  EXPECT_EQ(agent->endpoint, "http://127.0.0.1:1");
  EXPECT_EQ(agent->key, "k");
  EXPECT_EQ(agent->synced_at, 9000);
  EXPECT_EQ(agent->labels, std::vector<std::string>{"gpu"});
  // Placement candidates: synced since a time; a revoked agent is not one.
  a.agent_id = id2;
  ASSERT_TRUE(store_->sync_sandboxes(a, {}, 20000));
  EXPECT_EQ(store_->sandbox_agents(9000)->size(), 2u);
  EXPECT_EQ(store_->sandbox_agents(10000)->size(), 1u);
  ASSERT_TRUE(*store_->revoke_agent(id2, 20001));
  EXPECT_EQ(store_->sandbox_agents(0)->size(), 1u);
}

TEST_P(StoreTest, ExpiredSandboxesAreThoseWhoseTtlPassed) {
  auto a = sandbox("aaaaaaaaaaaa", "alice");
  a.expires_at = 5000;
  auto b = sandbox("bbbbbbbbbbbb", "alice");
  b.expires_at = 3000;
  ASSERT_TRUE(*store_->insert_sandbox(a));
  ASSERT_TRUE(*store_->insert_sandbox(b));
  ASSERT_TRUE(*store_->insert_sandbox(sandbox("cccccccccccc", "alice")));  // no TTL
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(store_->expired_sandboxes(2999, 10)), V{});
  EXPECT_EQ(ids(store_->expired_sandboxes(5000, 10)), (V{"bbbbbbbbbbbb", "aaaaaaaaaaaa"}));
  EXPECT_EQ(ids(store_->expired_sandboxes(5000, 1)), (V{"bbbbbbbbbbbb"}));
}

// N creates raced against a limit of K, from two stores on one database (two SQLite
// connections; two PostgreSQL pools, as two servers would): exactly K go in, each of the others
// is told which limit held it back. Control: the same race under a limit it cannot reach
// inserts every one, so the threads do race.
TEST_P(StoreTest, ConcurrentInsertsNeverOvershootTheServerOrTheOwnerLimit) {
  auto other = open_store(url_);
  ASSERT_TRUE(other) << other.error().message;
  constexpr int kThreads = 8, kEach = 4;
  auto race = [&](const std::string& prefix, const std::string& owner, SandboxLimits limits) {
    std::map<SandboxInsert, int> answers;
    std::mutex mu;
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      Store* store = t % 2 == 0 ? store_.get() : other->get();
      threads.emplace_back([&, t, store] {
        for (int i = 0; i < kEach; ++i) {
          std::string id = prefix + std::string(1, static_cast<char>('a' + t)) + std::string(1, static_cast<char>('a' + i));
          id.resize(12, 'x');
          auto r = store->insert_sandbox(sandbox(id, owner.empty() ? "o" + std::to_string(t) : owner), limits);
          if (!r) {
            ++errors;
            continue;
          }
          std::lock_guard lock(mu);
          ++answers[*r];
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(errors.load(), 0);
    return answers;
  };
  // Control: a limit past the attempts takes them all.
  auto all = race("ctl", "", SandboxLimits{1000, 1000});
  EXPECT_EQ(all[SandboxInsert::inserted], kThreads * kEach);
  int64_t before = *store_->count_sandboxes("");
  // The server's limit: 10 more than there are, raced by 32 creates of 8 owners.
  auto server = race("srv", "", SandboxLimits{before + 10, 1000});
  EXPECT_EQ(server[SandboxInsert::inserted], 10);
  EXPECT_EQ(server[SandboxInsert::server_full], kThreads * kEach - 10);
  EXPECT_EQ(*store_->count_sandboxes(""), before + 10);
  // The owner's limit: carol may have 3, whatever room the server has.
  auto owner = race("own", "carol", SandboxLimits{100'000, 3});
  EXPECT_EQ(owner[SandboxInsert::inserted], 3);
  EXPECT_EQ(owner[SandboxInsert::owner_full], kThreads * kEach - 3);
  EXPECT_EQ(*store_->count_sandboxes("carol"), 3);
  // A taken name is `exists`, not a limit, when there is room.
  auto named = sandbox("dupdupdupdup", "carol2", "web");
  EXPECT_EQ(*store_->insert_sandbox(named, SandboxLimits{100'000, 10}), SandboxInsert::inserted);
  named.id = "dupdupdupdu2";
  EXPECT_EQ(*store_->insert_sandbox(named, SandboxLimits{100'000, 10}), SandboxInsert::exists);
}

}  // namespace
}  // namespace boxcar::server
