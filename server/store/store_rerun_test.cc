// Re-runs in the store, on both backends (the fixture is store_test_fixture.h; the suite is
// instantiated in store_test.cc): a reused step's artifact records copied from the job re-run.
#include <gtest/gtest.h>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

ArtifactRecord record(const std::string& path, const std::string& step, int64_t size,
                      const std::string& link = "") {
  return ArtifactRecord{path, link.empty() ? std::string(64, 'a') : "", link.empty() ? size : 0, step, 10, link};
}

class StoreRerun : public StoreTest {
 protected:
  // Job `old` ran by agent "a1" and ended with a "build" step's two records and a "test" one.
  int64_t old_job() {
    int64_t old = enqueue();
    EXPECT_TRUE(claim("a1"));
    EXPECT_TRUE(*store_->add_artifact(old, lease("a1"), record("out/app", "build", 100)));
    EXPECT_TRUE(*store_->add_artifact(old, lease("a1"), record("out/latest", "build", 0, "app")));
    EXPECT_TRUE(*store_->add_artifact(old, lease("a1"), record("report.xml", "test", 7)));
    EXPECT_TRUE(*store_->complete(old, lease("a1"), "failed", "", 2'000));
    return old;
  }
  int64_t rerun_of(int64_t old, bool failed) {
    NewJob job;
    job.repo = "https://example.com/r.git";
    job.rerun_of = old;
    job.rerun_failed = failed;
    auto id = store_->enqueue(job);
    EXPECT_TRUE(id) << id.error().message;
    return id ? *id : 0;
  }
  ReuseCopy copy(int64_t id, const std::string& agent, int64_t from, int64_t cap = 1 << 20) {
    auto r = store_->copy_reused_artifacts(id, lease(agent), from, "build", cap, 5'000);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : ReuseCopy{};
  }
};

TEST_P(StoreRerun, AReusedStepsRecordsAreCopiedFromTheJobReRun) {
  int64_t old = old_job();
  int64_t id = rerun_of(old, true);
  ASSERT_TRUE(claim("a2"));
  ReuseCopy r = copy(id, "a2", old);
  ASSERT_EQ(r.outcome, ReuseCopy::Outcome::copied);
  ASSERT_EQ(r.records.size(), 2u);  // build's only
  EXPECT_EQ(r.records[0].path, "out/app");
  EXPECT_EQ(r.records[0].sha256, std::string(64, 'a'));
  EXPECT_EQ(r.records[0].size, 100);
  EXPECT_EQ(r.records[0].created_at, 5'000);
  EXPECT_EQ(r.records[1].link_target, "app");
  EXPECT_EQ(store_->artifacts(id)->size(), 2u);
  EXPECT_EQ(store_->artifacts(old)->size(), 3u);  // the old job keeps its own
  // Again (a retried report): the same records, not twice.
  EXPECT_EQ(copy(id, "a2", old).records.size(), 2u);
  EXPECT_EQ(store_->artifacts(id)->size(), 2u);
}

TEST_P(StoreRerun, OnlyFromTheJobReRunByTheLeaseHolderAndWithinTheCap) {
  int64_t old = old_job();
  int64_t other = old_job();  // another job with artifacts, which this one does not re-run
  int64_t whole = rerun_of(old, false);
  ASSERT_TRUE(claim("a2"));
  // A whole re-run runs every step: it reuses nothing.
  EXPECT_EQ(copy(whole, "a2", old).outcome, ReuseCopy::Outcome::not_rerun_of);
  int64_t id = rerun_of(old, true);
  ASSERT_TRUE(claim("a3"));
  // Attack: another job's artifacts; another agent; over the cap. Each copies nothing.
  EXPECT_EQ(copy(id, "a3", other).outcome, ReuseCopy::Outcome::not_rerun_of);
  EXPECT_EQ(copy(id, "a2", old).outcome, ReuseCopy::Outcome::lease_lost);
  ReuseCopy over = copy(id, "a3", old, 99);
  EXPECT_EQ(over.outcome, ReuseCopy::Outcome::over_limit);
  EXPECT_EQ(over.job_bytes, 100);
  EXPECT_TRUE(store_->artifacts(id)->empty());
  EXPECT_TRUE(store_->artifacts(whole)->empty());
  // The job's own uploads count against the cap too; control: within it, copied.
  ASSERT_TRUE(*store_->add_artifact(id, lease("a3"), record("log.txt", "test", 50)));
  EXPECT_EQ(copy(id, "a3", old, 149).outcome, ReuseCopy::Outcome::over_limit);
  EXPECT_EQ(copy(id, "a3", old, 150).outcome, ReuseCopy::Outcome::copied);
  EXPECT_EQ(store_->artifacts(id)->size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreRerun, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& param) { return param.param; });

}  // namespace
}  // namespace boxcar::server
