// Superseded jobs (issue 15) on both backends (store_test_fixture.h): which older jobs a newer
// push or pull request cancels, what it leaves alone, and what the cancelled ones say.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

constexpr const char* kRepo = "https://git.example.com/o/r.git";
const std::string kReason = "superseded by job #9 (push of abcdef1)";

NewJob webhook_job(const std::string& event, const std::string& ref,
                   const std::string& pr_base = "", const std::string& repo = kRepo) {
  NewJob job;
  job.repo = repo;
  job.ref = ref;
  job.event = event;
  job.commit = std::string(40, 'a');
  if (!pr_base.empty()) job.env["BOXCAR_PR_BASE"] = pr_base;
  return job;
}

class Supersede : public StoreTest {
 protected:
  int64_t add(const NewJob& job) {
    auto id = store_->enqueue(job);
    EXPECT_TRUE(id) << id.error().message;
    return id ? *id : 0;
  }
  std::vector<int64_t> supersede(int64_t newer) {
    auto ids = store_->supersede(newer, kReason, 7'000);
    EXPECT_TRUE(ids) << ids.error().message;
    return ids ? *ids : std::vector<int64_t>{};
  }
  std::string log_of(int64_t id) {
    auto chunks = store_->logs(id, "", 0, 0);
    EXPECT_TRUE(chunks) << chunks.error().message;
    std::string text;
    if (chunks) for (const auto& c : *chunks) text += c.data;
    return text;
  }
};

TEST_P(Supersede, APushCancelsTheOlderQueuedAndRunningJobsOfItsRefOnly) {
  int64_t running = add(webhook_job("push", "refs/heads/main"));
  ASSERT_EQ(claim("a1")->id, running);
  int64_t queued = add(webhook_job("push", "refs/heads/main"));
  int64_t other_ref = add(webhook_job("push", "refs/heads/dev"));
  int64_t manual = add(webhook_job("manual", "refs/heads/main"));
  int64_t other_repo = add(webhook_job("push", "refs/heads/main", "", "https://x.example/r.git"));
  NewJob rerun = webhook_job("push", "refs/heads/main");
  rerun.rerun_of = running;
  int64_t rerun_id = add(rerun);
  int64_t newer = add(webhook_job("push", "refs/heads/main"));

  EXPECT_EQ(supersede(newer), (std::vector<int64_t>{running, queued}));

  JobRecord r = get(running);
  EXPECT_EQ(r.state, "running");  // its agent stops it: the heartbeat says so
  EXPECT_TRUE(r.cancel_requested);
  EXPECT_EQ(r.superseded_by, newer);
  EXPECT_EQ(r.reason, kReason);
  EXPECT_TRUE(store_->heartbeat(running, lease("a1"), 60'000, 7'500)->cancel_requested);
  JobRecord q = get(queued);
  EXPECT_EQ(q.state, "cancelled");
  EXPECT_EQ(q.superseded_by, newer);
  EXPECT_EQ(q.reason, kReason);
  EXPECT_EQ(log_of(queued), "boxcar: " + kReason + ": cancelled\n");
  EXPECT_EQ(log_of(running), "boxcar: " + kReason + ": cancelling it (its agent stops it)\n");
  // Controls: another ref, a manual job, another repository, a re-run, and the newer job.
  for (int64_t kept : {other_ref, manual, other_repo, rerun_id, newer}) {
    JobRecord k = get(kept);
    EXPECT_EQ(k.state, "queued") << kept;
    EXPECT_FALSE(k.superseded_by) << kept;
    EXPECT_EQ(log_of(kept), "") << kept;
  }
  // The agent stops it as cancelled: the job still says by which.
  ASSERT_TRUE(*store_->complete(running, lease("a1"), "cancelled", "cancelled", 8'000));
  r = get(running);
  EXPECT_EQ(r.state, "cancelled");
  EXPECT_EQ(r.reason, kReason);
  EXPECT_EQ(r.superseded_by, newer);
  // Asked again (a replayed check), nothing more happens.
  EXPECT_EQ(supersede(newer), std::vector<int64_t>{});
}

TEST_P(Supersede, AJobThatFinishedFirstStaysAsItFinished) {
  int64_t done = add(webhook_job("push", "refs/heads/main"));
  ASSERT_EQ(claim("a1")->id, done);
  ASSERT_TRUE(*store_->complete(done, lease("a1"), "success", "", 6'000));
  int64_t racing = add(webhook_job("push", "refs/heads/main"));
  ASSERT_EQ(claim("a2")->id, racing);
  int64_t newer = add(webhook_job("push", "refs/heads/main"));
  EXPECT_EQ(supersede(newer), std::vector<int64_t>{racing});
  EXPECT_EQ(get(done).state, "success");
  EXPECT_FALSE(get(done).superseded_by);
  // The agent finished before it heard of the cancel: it stays a success, not superseded.
  ASSERT_TRUE(*store_->complete(racing, lease("a2"), "success", "all steps passed", 8'000));
  JobRecord r = get(racing);
  EXPECT_EQ(r.state, "success");
  EXPECT_EQ(r.reason, "all steps passed");
  EXPECT_FALSE(r.superseded_by);
}

TEST_P(Supersede, CancelSupersededFalseKeepsTheOlderJobAndDecidesForUnparsedOnes) {
  int64_t parsed = add(webhook_job("push", "refs/heads/main"));
  ASSERT_EQ(claim("a1")->id, parsed);
  ASSERT_TRUE(*store_->set_job_pipeline(parsed, lease("a1"), "deploy", false));
  int64_t unparsed = add(webhook_job("push", "refs/heads/main"));  // same repository and file
  int64_t newer = add(webhook_job("push", "refs/heads/main"));
  EXPECT_EQ(supersede(newer), std::vector<int64_t>{});
  EXPECT_FALSE(get(parsed).cancel_requested);
  EXPECT_EQ(get(unparsed).state, "queued");
  // Control: another file of the repository has reported nothing, so the default (true) holds.
  NewJob other_file = webhook_job("push", "refs/heads/main");
  other_file.file = "ci/other.toml";
  int64_t other = add(other_file);
  int64_t newest = add(webhook_job("push", "refs/heads/main"));
  EXPECT_EQ(supersede(newest), std::vector<int64_t>{other});
  EXPECT_EQ(get(other).state, "cancelled");
}

TEST_P(Supersede, APullRequestCancelsOnlyTheSameHeadIntoTheSameBase) {
  int64_t same = add(webhook_job("pull_request", "feature", "main"));
  int64_t other_base = add(webhook_job("pull_request", "feature", "release"));
  int64_t push = add(webhook_job("push", "feature"));
  int64_t newer = add(webhook_job("pull_request", "feature", "main"));
  EXPECT_EQ(supersede(newer), std::vector<int64_t>{same});
  EXPECT_EQ(get(other_base).state, "queued");
  EXPECT_EQ(get(push).state, "queued");
  // Attack: the same head branch proposed into another repository (same base branch name) or
  // as another pull request of the same repository: neither cancels this one's jobs.
  int64_t ours = add(webhook_job("pull_request", "feature", "main"));
  NewJob elsewhere = webhook_job("pull_request", "feature", "main");
  elsewhere.forge.repo = "other/r";
  elsewhere.base_repo = "https://git.example.com/other/r.git";
  EXPECT_EQ(supersede(add(elsewhere)), std::vector<int64_t>{});
  NewJob second_pr = webhook_job("pull_request", "feature", "main");
  second_pr.env["BOXCAR_PR_NUMBER"] = "8";
  EXPECT_EQ(supersede(add(second_pr)), std::vector<int64_t>{});
  EXPECT_EQ(get(ours).state, "queued");
  // A manual job supersedes nothing.
  int64_t manual = add(webhook_job("manual", "feature"));
  EXPECT_EQ(supersede(manual), std::vector<int64_t>{});
  EXPECT_EQ(get(push).state, "queued");
}

INSTANTIATE_TEST_SUITE_P(Backends, Supersede, ::testing::Values("sqlite", "postgres"),
                         [](const auto& backend) { return backend.param; });

}  // namespace
}  // namespace boxcar::server
