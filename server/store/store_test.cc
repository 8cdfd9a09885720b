// One suite, run against both store backends: SQLite on a fresh file per test, PostgreSQL on a
// fresh database per test in one throwaway server per test binary (store_test_fixture.h). The
// previews' tests are in store_previews_test.cc.
#include "server/store/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

TEST_P(StoreTest, EnqueueJobAndJobsRoundTrip) {
  NewJob job;
  job.repo = "https://example.com/app.git";
  job.ref = "refs/heads/main";
  job.commit = std::string(40, 'a');
  job.file = "ci/boxcar.toml";
  job.env = {{"CI", "true"}, {"QUOTE", "a \"b\"\n"}};
  job.event = "push";
  job.labels = {"linux", "x86_64"};
  job.max_attempts = 5;
  auto first = store_->enqueue(job);
  ASSERT_TRUE(first) << first.error().message;
  int64_t second = enqueue("second");

  JobRecord got = get(*first);
  EXPECT_EQ(got.id, *first);
  EXPECT_EQ(got.state, "queued");
  EXPECT_EQ(got.repo, job.repo);
  EXPECT_EQ(got.ref, job.ref);
  EXPECT_EQ(got.commit, job.commit);
  EXPECT_EQ(got.file, job.file);
  EXPECT_EQ(got.env, job.env);
  EXPECT_EQ(got.event, "push");
  EXPECT_EQ(got.labels, job.labels);
  EXPECT_EQ(got.attempt, 1);
  EXPECT_EQ(got.max_attempts, 5);
  EXPECT_GT(got.created_at, 0);
  EXPECT_FALSE(got.started_at);
  EXPECT_FALSE(got.finished_at);
  EXPECT_EQ(got.agent, "");
  EXPECT_FALSE(got.cancel_requested);
  EXPECT_TRUE(got.steps.empty());

  auto all = store_->jobs("", 10);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, second);  // newest first
  EXPECT_EQ((*all)[1].id, *first);
  auto limited = store_->jobs("queued", 1);
  ASSERT_TRUE(limited);
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ((*limited)[0].id, second);
  auto none = store_->jobs("running", 10);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  auto missing = store_->job(999999);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST_P(StoreTest, ClaimTakesTheOldestQueuedJob) {
  int64_t a = enqueue("a");
  int64_t b = enqueue("b");
  auto job = claim("agent-1", {}, 30'000, 2'000);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->id, a);
  EXPECT_EQ(job->state, "running");
  EXPECT_EQ(job->agent, "agent-1");
  EXPECT_EQ(job->lease_expires_at, 32'000);
  EXPECT_EQ(job->started_at, 2'000);
  EXPECT_EQ(claim("agent-2")->id, b);
  EXPECT_FALSE(claim("agent-3"));
}

TEST_P(StoreTest, ClaimNeedsEveryLabelOfTheJob) {
  int64_t gpu = enqueue("gpu", {"linux", "gpu"});
  EXPECT_FALSE(claim("plain", {}));
  EXPECT_FALSE(claim("linux-only", {"linux"}));
  auto job = claim("big", {"arm64", "gpu", "linux"});
  ASSERT_TRUE(job);
  EXPECT_EQ(job->id, gpu);

  int64_t any = enqueue("any");
  EXPECT_EQ(claim("plain", {})->id, any);  // a job without labels suits every agent
}

TEST_P(StoreTest, TwoClaimsNeverReturnTheSameJob) {
  enqueue("a");
  enqueue("b");
  auto first = claim("agent-1");
  auto second = claim("agent-1");
  ASSERT_TRUE(first && second);
  EXPECT_NE(first->id, second->id);
  EXPECT_FALSE(claim("agent-2"));
}

TEST_P(StoreTest, ConcurrentClaimsTakeEachJobExactlyOnce) {
  constexpr int kJobs = 200;
  constexpr int kThreads = 8;
  for (int i = 0; i < kJobs; ++i) enqueue("r" + std::to_string(i));
  std::vector<std::vector<int64_t>> claimed(kThreads);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (;;) {
        auto job = store_->claim(LeaseHolder{t + 1, "agent-" + std::to_string(t), "h" + std::to_string(t)}, {},
                                   60'000, 1'000);
        if (!job) {
          ++errors;
          return;
        }
        if (!*job) return;
        claimed[t].push_back((*job)->id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  std::multiset<int64_t> all;
  for (const auto& ids : claimed) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), static_cast<size_t>(kJobs));
  auto counts = store_->count_by_state();
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)["running"], kJobs);
  EXPECT_EQ((*counts)["queued"], 0);
}

// Two servers on one database (two SQLite connections; two PostgreSQL pools).
TEST_P(StoreTest, TwoStoresOnOneDatabaseNeverShareAJob) {
  constexpr int kJobs = 100;
  auto other = open_store(url_);
  ASSERT_TRUE(other) << other.error().message;
  for (int i = 0; i < kJobs; ++i) enqueue("r" + std::to_string(i));
  std::vector<std::vector<int64_t>> claimed(4);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    Store* store = t % 2 == 0 ? store_.get() : other->get();
    threads.emplace_back([&, t, store] {
      for (;;) {
        auto job = store->claim(LeaseHolder{t + 1, "agent-" + std::to_string(t), "h" + std::to_string(t)}, {},
                                  60'000, 1'000);
        if (!job) {
          ++errors;
          return;
        }
        if (!*job) return;
        claimed[t].push_back((*job)->id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<int64_t> unique;
  size_t total = 0;
  for (const auto& ids : claimed) {
    unique.insert(ids.begin(), ids.end());
    total += ids.size();
  }
  EXPECT_EQ(total, static_cast<size_t>(kJobs));
  EXPECT_EQ(unique.size(), static_cast<size_t>(kJobs));
}

TEST_P(StoreTest, HeartbeatExtendsTheLeaseAndReportsCancel) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1", {}, 10'000, 1'000));
  auto beat = store_->heartbeat(id, lease("agent-1"), 10'000, 8'000);
  ASSERT_TRUE(beat) << beat.error().message;
  EXPECT_TRUE(beat->lease_held);
  EXPECT_FALSE(beat->cancel_requested);
  EXPECT_EQ(beat->lease_expires_at, 18'000);
  EXPECT_EQ(get(id).lease_expires_at, 18'000);

  auto expired = store_->expire_leases(12'000);  // past the first lease, within the new one
  ASSERT_TRUE(expired);
  EXPECT_TRUE(expired->empty());

  ASSERT_TRUE(*store_->request_cancel(id, 9'000));
  beat = store_->heartbeat(id, lease("agent-1"), 10'000, 9'500);
  ASSERT_TRUE(beat);
  EXPECT_TRUE(beat->lease_held);
  EXPECT_TRUE(beat->cancel_requested);

  auto stranger = store_->heartbeat(id, lease("agent-2"), 10'000, 9'500);
  ASSERT_TRUE(stranger);
  EXPECT_FALSE(stranger->lease_held);
  EXPECT_EQ(get(id).lease_expires_at, 19'500);
}

TEST_P(StoreTest, ExpiredLeaseRequeuesWithNextAttemptThenErrors) {
  int64_t id = enqueue("r", {}, /*max_attempts=*/2);
  ASSERT_TRUE(claim("agent-1", {}, 1'000, 1'000));
  ASSERT_TRUE(*store_->update_step(id, lease("agent-1"), StepRecord{"build", "running", {}, 1'100, {}, "", {}}));

  auto expired = store_->expire_leases(1'999);
  ASSERT_TRUE(expired);
  EXPECT_TRUE(expired->empty());
  expired = store_->expire_leases(2'000);
  ASSERT_TRUE(expired) << expired.error().message;
  EXPECT_EQ(*expired, std::vector<int64_t>{id});
  JobRecord job = get(id);
  EXPECT_EQ(job.state, "queued");
  EXPECT_EQ(job.attempt, 2);
  EXPECT_EQ(job.agent, "");
  EXPECT_FALSE(job.lease_expires_at);
  EXPECT_TRUE(job.steps.empty());  // the next attempt reports its own

  auto again = claim("agent-2", {}, 1'000, 3'000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, id);
  EXPECT_EQ(again->attempt, 2);
  EXPECT_EQ(again->started_at, 1'000);  // set on the first attempt only
  expired = store_->expire_leases(5'000);
  ASSERT_TRUE(expired);
  EXPECT_EQ(*expired, std::vector<int64_t>{id});
  job = get(id);
  EXPECT_EQ(job.state, "error");
  EXPECT_EQ(job.reason.rfind("lease expired 2 times: agent lost", 0), 0u) << job.reason;
  EXPECT_EQ(job.finished_at, 5'000);
  EXPECT_FALSE(claim("agent-3", {}, 1'000, 6'000));
}

TEST_P(StoreTest, ExpiredLeaseOfACancelledJobEndsItCancelled) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1", {}, 1'000, 1'000));
  ASSERT_TRUE(*store_->request_cancel(id, 1'500));
  ASSERT_TRUE(store_->expire_leases(3'000));
  EXPECT_EQ(get(id).state, "cancelled");
}

TEST_P(StoreTest, RequeuedJobIsNoLongerTheOldAgents) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("old", {}, 1'000, 1'000));
  ASSERT_TRUE(store_->expire_leases(5'000));

  auto beat = store_->heartbeat(id, lease("old"), 1'000, 5'100);
  ASSERT_TRUE(beat);
  EXPECT_FALSE(beat->lease_held);
  EXPECT_FALSE(*store_->complete(id, lease("old"), "success", "", 5'200));
  EXPECT_EQ(get(id).state, "queued");

  ASSERT_TRUE(claim("new", {}, 60'000, 6'000));
  beat = store_->heartbeat(id, lease("old"), 1'000, 6'100);
  ASSERT_TRUE(beat);
  EXPECT_FALSE(beat->lease_held);
  EXPECT_FALSE(*store_->complete(id, lease("old"), "failed", "", 6'200));
  EXPECT_FALSE(*store_->update_step(id, lease("old"), StepRecord{"build", "running", {}, {}, {}, "", {}}));
  EXPECT_FALSE(*store_->append_log(id, lease("old"), chunk("build", 0, "stale"), 0));
  EXPECT_TRUE(*store_->complete(id, lease("new"), "success", "", 7'000));
  JobRecord job = get(id);
  EXPECT_EQ(job.state, "success");
  EXPECT_EQ(job.attempt, 2);
  EXPECT_EQ(job.finished_at, 7'000);
  EXPECT_EQ(job.agent, "");
  EXPECT_FALSE(job.lease_expires_at);
}

TEST_P(StoreTest, ARequeuedAttemptKeepsItsOwnLogs) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("old", {}, 1'000, 1'000));
  EXPECT_TRUE(*store_->append_log(id, lease("old"), chunk("build", 0, "first attempt\n"), 0));
  ASSERT_TRUE(store_->expire_leases(5'000));
  ASSERT_TRUE(claim("new", {}, 60'000, 6'000));
  // The new agent numbers its chunks from 0 again: they are new, not retries.
  EXPECT_TRUE(*store_->append_log(id, lease("new"), chunk("build", 0, "second attempt\n"), 0));
  EXPECT_FALSE(*store_->append_log(id, lease("new"), chunk("build", 0, "second attempt\n"), 0));
  auto logs = store_->logs(id, "", 0, 0);
  ASSERT_TRUE(logs);
  ASSERT_EQ(logs->size(), 3u);  // the server's note that attempt 1 was lost comes between
  EXPECT_EQ((*logs)[0].data, "first attempt\n");
  EXPECT_EQ((*logs)[1].attempt, 0);
  EXPECT_EQ((*logs)[2].data, "second attempt\n");
}

TEST_P(StoreTest, AnAgentCanCompleteAJobAsSkipped) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1", {}, 1'000, 1'000));
  auto done = store_->complete(id, lease("agent-1"), "skipped", "[on] does not match push to dev", 1'500);
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_TRUE(*done);
  EXPECT_EQ(get(id).state, "skipped");
  EXPECT_EQ(get(id).reason, "[on] does not match push to dev");
  EXPECT_FALSE(store_->complete(id, lease("agent-1"), "running", "", 1'600).ok() &&
               get(id).state == "running");
}

TEST_P(StoreTest, RequestCancelQueuedVersusRunning) {
  int64_t queued = enqueue("q");
  int64_t running = enqueue("r");
  // Claim the second one: cancel the first while it is queued.
  ASSERT_TRUE(*store_->request_cancel(queued, 500));
  ASSERT_EQ(claim("agent-1")->id, running);

  JobRecord job = get(queued);
  EXPECT_EQ(job.state, "cancelled");
  EXPECT_EQ(job.reason, "cancelled before it started");
  EXPECT_EQ(job.finished_at, 500);

  ASSERT_TRUE(*store_->request_cancel(running, 2'000));
  job = get(running);
  EXPECT_EQ(job.state, "running");
  EXPECT_TRUE(job.cancel_requested);
  ASSERT_TRUE(*store_->complete(running, lease("agent-1"), "cancelled", "cancelled by user", 3'000));
  job = get(running);
  EXPECT_EQ(job.state, "cancelled");
  EXPECT_EQ(job.reason, "cancelled by user");

  EXPECT_TRUE(*store_->request_cancel(running, 4'000));  // final: left as it is
  EXPECT_EQ(get(running).finished_at, 3'000);
  EXPECT_FALSE(*store_->request_cancel(424242, 4'000));
}

TEST_P(StoreTest, CompleteByAnotherAgentIsRefused) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1"));
  EXPECT_FALSE(*store_->complete(id, lease("agent-2"), "success", "", 2'000));
  EXPECT_EQ(get(id).state, "running");
  EXPECT_TRUE(*store_->complete(id, lease("agent-1"), "failed", "step test failed", 2'000));
  EXPECT_FALSE(*store_->complete(id, lease("agent-1"), "success", "", 2'100));  // already final
  JobRecord job = get(id);
  EXPECT_EQ(job.state, "failed");
  EXPECT_EQ(job.reason, "step test failed");
  EXPECT_FALSE(store_->complete(id, lease("agent-1"), "running", "", 2'200));  // not a final state
}

TEST_P(StoreTest, UpdateStepInsertsThenUpdates) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1"));
  ASSERT_TRUE(*store_->update_step(id, lease("agent-1"), StepRecord{"build", "running", {}, 1'100, {}, "", {}}));
  ASSERT_TRUE(*store_->update_step(id, lease("agent-1"), StepRecord{"test", "pending", {}, {}, {}, "", {}}));
  ASSERT_TRUE(*store_->update_step(id, lease("agent-1"), StepRecord{"build", "success", 0, {}, 1'900, "", {}}));
  ASSERT_TRUE(*store_->update_step(id, lease("agent-1"),
                                   StepRecord{"test", "skipped", {}, {}, 1'900, "build failed", {}}));

  JobRecord job = get(id);
  ASSERT_EQ(job.steps.size(), 2u);
  EXPECT_EQ(job.steps[0].name, "build");
  EXPECT_EQ(job.steps[0].state, "success");
  EXPECT_EQ(job.steps[0].exit_code, 0);
  EXPECT_EQ(job.steps[0].started_at, 1'100);  // kept from the first report
  EXPECT_EQ(job.steps[0].finished_at, 1'900);
  EXPECT_EQ(job.steps[1].name, "test");
  EXPECT_EQ(job.steps[1].state, "skipped");
  EXPECT_FALSE(job.steps[1].exit_code);
  EXPECT_EQ(job.steps[1].reason, "build failed");

  auto listed = store_->jobs("", 10);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].steps.size(), 2u);
}

TEST_P(StoreTest, KeepsAStepsNeedsUntilAnUpdateBringsNew) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1"));
  ASSERT_TRUE(*store_->update_step(
      id, lease("agent-1"), StepRecord{"test", "pending", {}, {}, {}, "", {"build (cc=gcc)", "lint"}}));
  ASSERT_TRUE(*store_->update_step(id, lease("agent-1"), StepRecord{"test", "running", {}, 5, {}, "", {}}));
  JobRecord job = get(id);
  ASSERT_EQ(job.steps.size(), 1u);
  EXPECT_EQ(job.steps[0].needs, (std::vector<std::string>{"build (cc=gcc)", "lint"}));
  auto listed = store_->jobs("", 10);
  ASSERT_TRUE(listed);
  EXPECT_EQ((*listed)[0].steps[0].needs, job.steps[0].needs);
}

TEST_P(StoreTest, OnlyTheLeaseHolderSetsWhatThePipelineSays) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1"));
  EXPECT_FALSE(*store_->set_job_pipeline(id, lease("other"), "evil", true));
  EXPECT_EQ(get(id).pipeline_name, "");
  EXPECT_TRUE(*store_->set_job_pipeline(id, lease("agent-1"), "ci", false));
  JobRecord job = get(id);
  EXPECT_EQ(job.pipeline_name, "ci");
  EXPECT_EQ(job.cancel_superseded, false);
}

TEST_P(StoreTest, KeepsAJobsForgeLinkAndRerunOrigin) {
  NewJob job;
  job.repo = "https://git.example.com/o/r.git";
  job.forge = ForgeLink{"gitea", "o/r", "https://git.example.com/api/v1", "https://git.example.com/o/r"};
  job.default_branch = "main";
  job.status_context = "boxcar/ci";
  job.rerun_of = 7;
  job.rerun_failed = true;
  auto id = store_->enqueue(job);
  ASSERT_TRUE(id) << id.error().message;
  JobRecord back = get(*id);
  EXPECT_EQ(back.forge.forge, "gitea");
  EXPECT_EQ(back.forge.repo, "o/r");
  EXPECT_EQ(back.forge.api, "https://git.example.com/api/v1");
  EXPECT_EQ(back.forge.web_url, "https://git.example.com/o/r");
  EXPECT_EQ(back.default_branch, "main");
  EXPECT_EQ(back.status_context, "boxcar/ci");
  EXPECT_EQ(back.rerun_of, 7);
  EXPECT_TRUE(back.rerun_failed);
  EXPECT_FALSE(back.cancel_superseded);  // not reported yet
  EXPECT_FALSE(back.superseded_by);
  EXPECT_EQ(get(enqueue()).rerun_of, std::nullopt);
}

TEST_P(StoreTest, AppendLogStoresADuplicateSeqOnce) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1"));
  EXPECT_TRUE(*store_->append_log(id, lease("agent-1"), chunk("build", 0, "one\n"), 0));
  EXPECT_FALSE(*store_->append_log(id, lease("agent-1"), chunk("build", 0, "one\n"), 0));  // a retry
  EXPECT_TRUE(*store_->append_log(id, lease("agent-1"), chunk("build", 1, "two\n"), 0));
  auto logs = store_->logs(id, "", 0, 100);
  ASSERT_TRUE(logs) << logs.error().message;
  ASSERT_EQ(logs->size(), 2u);
  EXPECT_EQ((*logs)[0].data, "one\n");
  EXPECT_EQ((*logs)[1].data, "two\n");
  EXPECT_EQ((*logs)[1].offset, 4);  // the duplicate took no room
}

TEST_P(StoreTest, LogsHaveRunningOffsetsAndFilterBySteps) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("agent-1"));
  const std::string binary("\0\xff\xfe bytes\n", 10);
  ASSERT_TRUE(*store_->append_log(id, lease("agent-1"), chunk("build", 0, "hello\n"), 0));  // 0..6
  ASSERT_TRUE(*store_->append_log(id, lease("agent-1"), chunk("test", 0, "abc"), 0));       // 6..9
  ASSERT_TRUE(*store_->append_log(id, lease("agent-1"), chunk("build", 1, binary), 0));     // 9..19

  auto all = store_->logs(id, "", 0, 0);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].offset, 0);
  EXPECT_EQ((*all)[1].offset, 6);
  EXPECT_EQ((*all)[2].offset, 9);
  EXPECT_EQ((*all)[1].step, "test");
  EXPECT_EQ((*all)[2].data, binary);
  EXPECT_EQ((*all)[2].seq, 1);
  EXPECT_EQ((*all)[2].attempt, 1);
  EXPECT_EQ((*all)[2].at, 5'001);

  auto build = store_->logs(id, "build", 0, 0);
  ASSERT_TRUE(build);
  ASSERT_EQ(build->size(), 2u);
  EXPECT_EQ((*build)[0].offset, 0);
  EXPECT_EQ((*build)[1].offset, 9);

  auto from6 = store_->logs(id, "", 6, 0);
  ASSERT_TRUE(from6);
  ASSERT_EQ(from6->size(), 2u);
  EXPECT_EQ((*from6)[0].data, "abc");

  auto middle = store_->logs(id, "", 8, 1);  // from the middle of a chunk, one chunk
  ASSERT_TRUE(middle);
  ASSERT_EQ(middle->size(), 1u);
  EXPECT_EQ((*middle)[0].data, "c");
  EXPECT_EQ((*middle)[0].offset, 8);

  auto end = store_->logs(id, "", 19, 0);
  ASSERT_TRUE(end);
  EXPECT_TRUE(end->empty());
}

TEST_P(StoreTest, RecordDeliveryRejectsAReplay) {
  EXPECT_TRUE(*store_->record_delivery("github", "d-1", "queued job 1"));
  EXPECT_FALSE(*store_->record_delivery("github", "d-1", "queued job 1"));
  EXPECT_TRUE(*store_->record_delivery("gitea", "d-1", "queued job 2"));  // per provider
}

TEST_P(StoreTest, RecordWebhookContentRejectsARepeatWithinTheWindow) {
  const int64_t day = 24 * 3600 * 1000;
  EXPECT_TRUE(*store_->record_webhook_content("push r refs/heads/main abc", 1000, day));
  EXPECT_FALSE(*store_->record_webhook_content("push r refs/heads/main abc", 2000, day));
  EXPECT_FALSE(*store_->record_webhook_content("push r refs/heads/main abc", 1000 + day - 1, day));
  // Control: another commit is new; the same one again once the window has passed is new too,
  // and starts a new window.
  EXPECT_TRUE(*store_->record_webhook_content("push r refs/heads/main def", 2000, day));
  EXPECT_TRUE(*store_->record_webhook_content("push r refs/heads/main abc", 1000 + day, day));
  EXPECT_FALSE(*store_->record_webhook_content("push r refs/heads/main abc", 2000 + day, day));
  // The content namespace does not collide with a forge's delivery ids.
  EXPECT_TRUE(*store_->record_delivery("github", "push r refs/heads/main abc", "queued"));
}

TEST_P(StoreTest, CountByStateCoversEveryState) {
  enqueue("a");
  enqueue("b");
  int64_t c = enqueue("c");
  ASSERT_TRUE(*store_->request_cancel(c, 100));
  ASSERT_TRUE(claim("agent-1"));
  auto counts = store_->count_by_state();
  ASSERT_TRUE(counts) << counts.error().message;
  EXPECT_EQ((*counts)["queued"], 1);
  EXPECT_EQ((*counts)["running"], 1);
  EXPECT_EQ((*counts)["cancelled"], 1);
  EXPECT_EQ((*counts)["success"], 0);
  EXPECT_EQ(counts->size(), std::size(kJobStates));
}

TEST_P(StoreTest, MigrateTwiceIsANoOp) {
  int64_t id = enqueue();
  auto again = store_->migrate();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(get(id).state, "queued");
}

TEST_P(StoreTest, RecordFinalStoresASkippedJob) {
  NewJob job;
  job.repo = "r";
  job.event = "push";
  auto id = store_->record_final(job, "skipped", "no [on] filter matched push to dev");
  ASSERT_TRUE(id) << id.error().message;
  JobRecord got = get(*id);
  EXPECT_EQ(got.state, "skipped");
  EXPECT_EQ(got.reason, "no [on] filter matched push to dev");
  EXPECT_TRUE(got.finished_at);
  EXPECT_FALSE(claim("agent-1"));
  EXPECT_FALSE(store_->record_final(job, "running", ""));
}

TEST_P(StoreTest, ArtifactsAreRecordedOnlyUnderTheLease) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("a1"));
  auto held = store_->holds_lease(id, lease("a1"));
  ASSERT_TRUE(held) << held.error().message;
  EXPECT_TRUE(*held);
  EXPECT_FALSE(*store_->holds_lease(id, lease("a2")));
  std::string h1(64, 'a'), h2(64, 'b');
  auto added = store_->add_artifact(id, lease("a1"), {"out/b.txt", h1, 10, "build", 100, ""});
  ASSERT_TRUE(added) << added.error().message;
  EXPECT_TRUE(*added);
  EXPECT_TRUE(*store_->add_artifact(id, lease("a1"), {"a.bin", h2, 20, "test", 200, ""}));
  EXPECT_FALSE(*store_->add_artifact(id, lease("a2"), {"c.bin", h2, 20, "test", 200, ""}));
  // the same path again replaces the record (a retried upload)
  EXPECT_TRUE(*store_->add_artifact(id, lease("a1"), {"out/b.txt", h1, 11, "build", 150, ""}));
  auto all = store_->artifacts(id);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].path, "a.bin");
  EXPECT_EQ((*all)[1].path, "out/b.txt");
  EXPECT_EQ((*all)[1].size, 11);
  EXPECT_EQ((*all)[1].created_at, 150);
  // A link is kept with its target text (migration 7), no blob.
  EXPECT_TRUE(*store_->add_artifact(id, lease("a1"), {"out/latest.txt", "", 0, "build", 160, "b.txt"}));
  auto link = store_->artifact(id, "out/latest.txt");
  ASSERT_TRUE(link && *link);
  EXPECT_EQ((*link)->link_target, "b.txt");
  EXPECT_EQ((*store_->artifact(id, "out/b.txt"))->link_target, "");
  EXPECT_EQ(store_->artifacts(id).value().size(), 3u);
  auto one = store_->artifact(id, "a.bin");
  ASSERT_TRUE(one && *one);
  EXPECT_EQ((*one)->sha256, h2);
  EXPECT_EQ((*one)->step, "test");
  EXPECT_FALSE(*store_->artifact(id, "nope"));
}

TEST_P(StoreTest, ExpiringArtifactsReturnsOnlyUnreferencedHashes) {
  int64_t a = enqueue();
  int64_t b = enqueue();
  ASSERT_TRUE(claim("a1"));
  ASSERT_TRUE(claim("a1"));
  std::string shared(64, 'c'), lonely(64, 'd'), fresh(64, 'e');
  EXPECT_TRUE(*store_->add_artifact(a, lease("a1"), {"x", shared, 1, "s", 100, ""}));
  EXPECT_TRUE(*store_->add_artifact(a, lease("a1"), {"y", lonely, 1, "s", 100, ""}));
  EXPECT_TRUE(*store_->add_artifact(b, lease("a1"), {"x", shared, 1, "s", 900, ""}));
  EXPECT_TRUE(*store_->add_artifact(b, lease("a1"), {"z", fresh, 1, "s", 900, ""}));
  auto gone = store_->expire_artifacts(500);
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ(*gone, std::vector<std::string>{lonely});
  EXPECT_TRUE(store_->artifacts(a)->empty());
  EXPECT_EQ(store_->artifacts(b)->size(), 2u);
  gone = store_->expire_artifacts(1000);
  ASSERT_TRUE(gone);
  std::sort(gone->begin(), gone->end());
  EXPECT_EQ(*gone, (std::vector<std::string>{shared, fresh}));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

TEST(OpenStore, RejectsAnUnknownScheme) {
  auto store = open_store("mysql://x");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().message,
            "unknown store URL \"mysql://x\": use sqlite:PATH or postgres://...");
}

TEST(OpenStore, NamesTheServerThatIsDown) {
  // Port 1 on loopback: nothing listens there.
  auto store = open_store("postgres://boxcar@127.0.0.1:1/boxcar?connect_timeout=2");
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message.find("127.0.0.1:1"), std::string::npos)
      << store.error().message;
  EXPECT_NE(store.error().message.find("Connection refused"), std::string::npos)
      << store.error().message;
}

}  // namespace
}  // namespace boxcar::server

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new boxcar::server::store_testing::PostgresEnvironment);
  return RUN_ALL_TESTS();
}
