// The store's side of the queue's and logs' limits, on both backends (store_test_fixture.h):
// the note a lost attempt leaves in the log, the per-job log cap, and retention.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

std::string whole_log(Store& store, int64_t id) {
  auto chunks = store.logs(id, "", 0, 0);
  EXPECT_TRUE(chunks) << chunks.error().message;
  std::string text;
  if (chunks) {
    for (const auto& c : *chunks) text += c.data;
  }
  return text;
}

TEST_P(StoreTest, EachLostAttemptLeavesANoteThenTheJobGivesUp) {
  int64_t id = enqueue("r", {}, /*max_attempts=*/2);
  ASSERT_TRUE(claim("crashy-1", {}, 1'000, 1'000));
  ASSERT_TRUE(*store_->append_log(id, lease("crashy-1"), chunk("build", 0, "one\n"), 0));
  ASSERT_EQ(*store_->expire_leases(2'000), std::vector<int64_t>{id});
  ASSERT_TRUE(claim("crashy-2", {}, 1'000, 3'000));
  ASSERT_TRUE(*store_->append_log(id, lease("crashy-2"), chunk("build", 0, "two\n"), 0));
  ASSERT_EQ(*store_->expire_leases(4'000), std::vector<int64_t>{id});

  JobRecord job = get(id);
  EXPECT_EQ(job.state, "error");
  EXPECT_NE(job.reason.find("--max-attempts"), std::string::npos) << job.reason;
  std::string log = whole_log(*store_, id);
  EXPECT_EQ(log,
            "one\n"
            "boxcar: attempt 1 of 2 lost: agent \"crashy-1\" stopped reporting (its lease "
            "expired); queued again as attempt 2\n"
            "two\n"
            "boxcar: attempt 2 of 2 lost: agent \"crashy-2\" stopped reporting (its lease "
            "expired); the job ends as an error: " + job.reason + "\n");
  EXPECT_EQ(job.log_bytes, static_cast<int64_t>(log.size()));
  // Control: the queue is not blocked; the next job is claimed and completes.
  int64_t next = enqueue();
  auto claimed = claim("healthy", {}, 60'000, 5'000);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->id, next);
  EXPECT_TRUE(*store_->complete(next, lease("healthy"), "success", "", 6'000));
}

TEST_P(StoreTest, TheLogCapKeepsWhatFitsThenOneNoteAndDropsTheRest) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("a1"));
  const int64_t cap = 12;
  EXPECT_TRUE(*store_->append_log(id, lease("a1"), chunk("build", 0, "12345\n"), cap));   // 6
  EXPECT_TRUE(*store_->append_log(id, lease("a1"), chunk("build", 1, "abc\n"), cap));     // 10
  // A retry of a stored chunk is a duplicate, not a chunk past the cap.
  EXPECT_FALSE(*store_->append_log(id, lease("a1"), chunk("build", 1, "abc\n"), cap));
  EXPECT_FALSE(get(id).log_truncated);
  // Past the cap: the whole lines of the chunk that fit stay, then the note; the rest goes.
  EXPECT_TRUE(*store_->append_log(id, lease("a1"), chunk("build", 2, "x\ny\n"), cap));
  EXPECT_FALSE(*store_->append_log(id, lease("a1"), chunk("build", 2, "x\ny\n"), cap));  // a retry
  EXPECT_FALSE(*store_->append_log(id, lease("a1"), chunk("test", 0, "z\n"), cap));
  JobRecord job = get(id);
  EXPECT_TRUE(job.log_truncated);
  std::string log = whole_log(*store_, id);
  EXPECT_EQ(log, "12345\nabc\nx\nboxcar: the job's log reached the server's limit of 12 B "
                 "(boxcar serve --max-job-log): the rest of it is dropped\n");
  EXPECT_EQ(job.log_bytes, static_cast<int64_t>(log.size()));
  // The lease is still checked first: another agent's chunk is refused, not counted.
  EXPECT_FALSE(*store_->append_log(id, lease("a2"), chunk("build", 4, "w\n"), cap));
  EXPECT_TRUE(*store_->complete(id, lease("a1"), "success", "", 2'000));
  EXPECT_EQ(get(id).state, "success");
}

TEST_P(StoreTest, PurgeDeletesOldFinishedJobsWithAllThatIsTheirs) {
  std::string shared(64, 'a'), lonely(64, 'b');
  // Three jobs finished at 1'000 (old), one at 900'000 (recent), one queued, one running.
  std::vector<int64_t> old;
  for (int i = 0; i < 3; ++i) old.push_back(enqueue("old"));
  int64_t recent = enqueue("recent");
  int64_t running = enqueue("running");
  for (size_t i = 0; i < 5; ++i) ASSERT_TRUE(claim("a1", {}, 60'000, 500));
  for (int64_t id : old) {
    ASSERT_TRUE(*store_->update_step(id, lease("a1"), StepRecord{"build", "success", 0, 600, 700, "", {}}));
    ASSERT_TRUE(*store_->append_log(id, lease("a1"), chunk("build", 0, "old log\n"), 0));
    ASSERT_TRUE(*store_->add_artifact(id, lease("a1"), {"x", shared, 1, "build", 800, ""}));
  }
  ASSERT_TRUE(*store_->add_artifact(old[0], lease("a1"), {"y", lonely, 1, "build", 800, ""}));
  ASSERT_TRUE(*store_->add_artifact(recent, lease("a1"), {"x", shared, 1, "build", 800, ""}));
  for (int64_t id : old) ASSERT_TRUE(*store_->complete(id, lease("a1"), "success", "", 1'000));
  ASSERT_TRUE(*store_->complete(recent, lease("a1"), "failed", "", 900'000));
  int64_t queued = enqueue("queued");
  ASSERT_TRUE(*store_->record_webhook_content("old push", 1'000, 1'000));
  ASSERT_TRUE(*store_->record_webhook_content("recent push", 900'000, 1'000));

  // Batches of 2: the oldest two, then the third with the lonely artifact, then nothing.
  auto first = store_->purge(5'000, 5'000, 2);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->jobs, 2);
  auto second = store_->purge(5'000, 5'000, 2);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(first->jobs + second->jobs, 3);
  EXPECT_EQ(first->deliveries + second->deliveries, 1);
  std::vector<std::string> unreferenced = first->unreferenced_hashes;
  unreferenced.insert(unreferenced.end(), second->unreferenced_hashes.begin(),
                      second->unreferenced_hashes.end());
  // `shared` is still the recent job's.
  EXPECT_EQ(unreferenced, std::vector<std::string>{lonely});
  auto third = store_->purge(5'000, 5'000, 2);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->jobs, 0);
  EXPECT_EQ(third->deliveries, 0);

  for (int64_t id : old) {
    EXPECT_FALSE(*store_->job(id)) << id;
    EXPECT_TRUE(store_->logs(id, "", 0, 0)->empty());
    EXPECT_TRUE(store_->artifacts(id)->empty());
  }
  // Control: what is recent, queued or running stays, logs and artifacts included.
  EXPECT_EQ(get(recent).state, "failed");
  EXPECT_EQ(store_->artifacts(recent)->size(), 1u);
  EXPECT_EQ(get(queued).state, "queued");
  EXPECT_EQ(get(running).state, "running");
  // The old delivery is forgotten (it counts as new again); the recent one is remembered.
  EXPECT_TRUE(*store_->record_webhook_content("old push", 950'000, 1'000'000));
  EXPECT_FALSE(*store_->record_webhook_content("recent push", 950'000, 1'000'000));
}

}  // namespace
}  // namespace boxcar::server
