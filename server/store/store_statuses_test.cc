// The forge statuses' outbox on both backends: a row per state change of a job that has a forge
// to post to (queued by the store's triggers), older undelivered rows superseded, claims that
// servers sharing the database cannot both take, and rows deleted with their job.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

NewJob forge_job(const std::string& forge) {
  NewJob job;
  job.repo = "https://git.example.com/o/r.git";
  job.ref = "refs/heads/main";
  job.commit = std::string(40, 'c');
  job.event = "push";
  job.forge.forge = forge;
  job.forge.repo = forge == "gitlab" ? "42" : "o/r";
  if (forge != "github") job.forge.api = "https://git.example.com/api/v" + std::string(forge == "gitlab" ? "4" : "1");
  return job;
}

std::vector<ForgeStatusRecord> statuses(Store& store, int64_t id) {
  auto rows = store.forge_statuses(id);
  EXPECT_TRUE(rows) << rows.error().message;
  return rows ? *rows : std::vector<ForgeStatusRecord>{};
}

// "state/result: description" per row, oldest first.
std::vector<std::string> summary(Store& store, int64_t id) {
  std::vector<std::string> out;
  for (const auto& s : statuses(store, id)) out.push_back(s.state + "/" + s.result + ": " + s.description);
  return out;
}

TEST_P(StoreTest, ForgeStatusesFollowAJobsStateAndOnlyTheNewestStaysQueued) {
  auto id = store_->enqueue(forge_job("github"));
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(summary(*store_, *id), (std::vector<std::string>{"pending/queued: Queued"}));
  ASSERT_TRUE(claim("a1"));
  auto done = store_->complete(*id, lease("a1"), "failed", "step \"test\" failed", 2'000);
  ASSERT_TRUE(done && *done);
  EXPECT_EQ(summary(*store_, *id),
            (std::vector<std::string>{"pending/superseded: Queued",
                                      "pending/superseded: Running on a1",
                                      "failure/queued: Failed: step \"test\" failed"}));
  auto rows = statuses(*store_, *id);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_FALSE(rows[0].next_attempt_at);
  EXPECT_TRUE(rows[2].next_attempt_at);
  EXPECT_GT(rows[2].created_at, 0);
  auto undelivered = store_->undelivered_forge_statuses();
  ASSERT_TRUE(undelivered);
  EXPECT_EQ(*undelivered, 1);

  // Control: a job submitted through the API has no forge, and gets no rows.
  int64_t plain = enqueue();
  ASSERT_TRUE(claim("a2"));
  EXPECT_TRUE(statuses(*store_, plain).empty());
}

TEST_P(StoreTest, ForgeStatusesOnGitlabAndOnEveryOtherPathThatChangesAState) {
  // GitLab's own states: running, canceled.
  auto lab = store_->enqueue(forge_job("gitlab"));
  ASSERT_TRUE(lab);
  ASSERT_TRUE(claim("a1"));
  ASSERT_TRUE(store_->request_cancel(*lab, 2'000));
  ASSERT_TRUE(store_->complete(*lab, lease("a1"), "cancelled", "cancelled by the user", 2'000));
  EXPECT_EQ(summary(*store_, *lab),
            (std::vector<std::string>{"pending/superseded: Queued", "running/superseded: Running on a1",
                                      "canceled/queued: Cancelled: cancelled by the user"}));

  // A lost lease: pending again, saying so; then cancelled while queued (GitHub: error).
  auto hub = store_->enqueue(forge_job("gitea"));
  ASSERT_TRUE(hub);
  ASSERT_TRUE(claim("a2", {}, 1'000, 1'000));
  auto expired = store_->expire_leases(10'000);
  ASSERT_TRUE(expired) << expired.error().message;
  ASSERT_TRUE(store_->request_cancel(*hub, 11'000));
  auto rows = summary(*store_, *hub);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[2], "pending/superseded: Queued again: its agent was lost (attempt 2)");
  EXPECT_EQ(rows[3], "error/queued: Cancelled: cancelled before it started");

  // A job recorded final at once (skipped by [on]): one row, success on GitHub.
  auto skipped = store_->record_final(forge_job("github"), "skipped", "no [on] filter matches");
  ASSERT_TRUE(skipped);
  EXPECT_EQ(summary(*store_, *skipped),
            (std::vector<std::string>{"success/queued: Skipped: no [on] filter matches"}));

  // A long reason is cut to what forges take.
  auto long_reason = store_->record_final(forge_job("github"), "error", std::string(500, 'x'));
  ASSERT_TRUE(long_reason);
  auto cut = statuses(*store_, *long_reason);
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_EQ(cut[0].description.size(), 140u);
}

TEST_P(StoreTest, ForgeStatusClaimsAreHeldAndFinishedOnce) {
  auto id = store_->enqueue(forge_job("github"));
  ASSERT_TRUE(id);
  UnixMillis now = 4'000'000'000'000;  // past every row's next_attempt_at
  auto first = store_->claim_forge_statuses("s1", 10, 30'000, now);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].state, "pending");
  // Attack: another server claiming while s1 holds it gets nothing...
  auto second = store_->claim_forge_statuses("s2", 10, 30'000, now);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->empty());
  // ... not even the job's newer status, which must not overtake the one in flight.
  ASSERT_TRUE(claim("a1"));
  second = store_->claim_forge_statuses("s2", 10, 30'000, now);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->empty());
  // s2 cannot finish s1's row.
  ForgeStatusOutcome ok{ForgeStatusOutcome::delivered, true, 201, "", 0};
  auto stolen = store_->finish_forge_status((*first)[0].id, "s2", ok, now);
  ASSERT_TRUE(stolen);
  EXPECT_FALSE(*stolen);
  // s1's delivery lands (the row had been superseded meanwhile: it did go all the same).
  auto finished = store_->finish_forge_status((*first)[0].id, "s1", ok, now + 5);
  ASSERT_TRUE(finished && *finished);
  auto rows = statuses(*store_, *id);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].result, "delivered");
  EXPECT_EQ(rows[0].attempts, 1);
  EXPECT_EQ(rows[0].last_http_status, 201);
  EXPECT_EQ(rows[0].delivered_at, now + 5);

  // Control: now the running status goes. A 500 retries later; a 401 gives up.
  auto next = store_->claim_forge_statuses("s2", 10, 30'000, now);
  ASSERT_TRUE(next);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].description, "Running on a1");
  ForgeStatusOutcome retry{ForgeStatusOutcome::retry, true, 500, "the forge answered 500", now + 1'000};
  ASSERT_TRUE(store_->finish_forge_status((*next)[0].id, "s2", retry, now));
  auto early = store_->claim_forge_statuses("s2", 10, 30'000, now + 999);
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->empty()) << "claimed before its backoff ended";
  auto again = store_->claim_forge_statuses("s1", 10, 30'000, now + 1'000);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].attempts, 1);
  EXPECT_EQ((*again)[0].last_error, "the forge answered 500");
  ForgeStatusOutcome denied{ForgeStatusOutcome::failed, true, 401, "401: bad credentials", 0};
  ASSERT_TRUE(store_->finish_forge_status((*again)[0].id, "s1", denied, now + 1'001));
  rows = statuses(*store_, *id);
  EXPECT_EQ(rows[1].result, "failed");
  EXPECT_EQ(rows[1].attempts, 2);
  EXPECT_FALSE(rows[1].next_attempt_at);
  auto none = store_->claim_forge_statuses("s1", 10, 30'000, now + 100'000);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto undelivered = store_->undelivered_forge_statuses();
  ASSERT_TRUE(undelivered);
  EXPECT_EQ(*undelivered, 0);
}

TEST_P(StoreTest, ForgeStatusesGoWithTheirJobAndPipelineNamesAreRemembered) {
  auto id = store_->enqueue(forge_job("github"));
  ASSERT_TRUE(id);
  auto job = claim("a1");
  ASSERT_TRUE(job);
  ASSERT_TRUE(store_->set_job_pipeline(*id, lease("a1"), "ci", true));
  ASSERT_TRUE(store_->complete(*id, lease("a1"), "success", "", 2'000));
  auto name = store_->last_pipeline_name("https://git.example.com/o/r.git", "");
  ASSERT_TRUE(name) << name.error().message;
  EXPECT_EQ(*name, "ci");
  auto other = store_->last_pipeline_name("https://git.example.com/o/r.git", "other.toml");
  ASSERT_TRUE(other);
  EXPECT_EQ(*other, "");
  EXPECT_EQ(statuses(*store_, *id).size(), 3u);

  auto purged = store_->purge(3'000, 0, 100);
  ASSERT_TRUE(purged) << purged.error().message;
  EXPECT_EQ(purged->jobs, 1);
  EXPECT_TRUE(statuses(*store_, *id).empty());
  auto undelivered = store_->undelivered_forge_statuses();
  ASSERT_TRUE(undelivered);
  EXPECT_EQ(*undelivered, 0);
}

}  // namespace
}  // namespace boxcar::server
