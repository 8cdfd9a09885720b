// Job lists with filters and paging (Store::jobs(const JobQuery&)), on both backends (the
// fixture is store_test_fixture.h; the suite is instantiated in store_test.cc).
#include <gtest/gtest.h>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

std::vector<int64_t> ids_of(Result<std::vector<JobRecord>> jobs) {
  EXPECT_TRUE(jobs) << jobs.error().message;
  std::vector<int64_t> out;
  if (jobs) {
    for (const JobRecord& j : *jobs) out.push_back(j.id);
  }
  return out;
}

TEST_P(StoreTest, JobListsFilterByRepositoryRefAndStateAndPageByIdNewestFirst) {
  auto add = [&](const std::string& repo, const std::string& ref) {
    NewJob job;
    job.repo = repo;
    job.ref = ref;
    auto id = store_->enqueue(job);
    EXPECT_TRUE(id) << id.error().message;
    return id ? *id : 0;
  };
  int64_t a_main = add("https://example.com/a.git", "refs/heads/main");  // as a webhook stores it
  int64_t a_short = add("https://example.com/a.git", "main");            // as the API stores it
  int64_t a_dev = add("https://example.com/a.git", "refs/heads/dev");
  int64_t a_tag = add("https://example.com/a.git", "refs/tags/v1");
  int64_t b_main = add("https://example.com/b.git", "main");
  ASSERT_TRUE(claim("a1"));  // a_main is running now; the rest stay queued

  auto query = [](std::string repo, std::string ref, std::string state = "",
                  std::optional<int64_t> before = std::nullopt, int limit = 50) {
    JobQuery q;
    q.repo = std::move(repo);
    q.ref = std::move(ref);
    q.state = std::move(state);
    q.before_id = before;
    q.limit = limit;
    return q;
  };
  using V = std::vector<int64_t>;
  EXPECT_EQ(ids_of(store_->jobs(query("", ""))), (V{b_main, a_tag, a_dev, a_short, a_main}));
  EXPECT_EQ(ids_of(store_->jobs(query("https://example.com/a.git", ""))),
            (V{a_tag, a_dev, a_short, a_main}));
  // A branch matches in both spellings, whichever the filter uses.
  EXPECT_EQ(ids_of(store_->jobs(query("https://example.com/a.git", "main"))), (V{a_short, a_main}));
  EXPECT_EQ(ids_of(store_->jobs(query("https://example.com/a.git", "refs/heads/main"))),
            (V{a_short, a_main}));
  EXPECT_EQ(ids_of(store_->jobs(query("", "main"))), (V{b_main, a_short, a_main}));
  EXPECT_EQ(ids_of(store_->jobs(query("", "refs/tags/v1"))), (V{a_tag}));
  EXPECT_EQ(ids_of(store_->jobs(query("", "v1"))), V{});  // a tag is not a branch
  EXPECT_EQ(ids_of(store_->jobs(query("https://example.com/a.git", "main", "running"))), (V{a_main}));
  EXPECT_EQ(ids_of(store_->jobs(query("", "", "queued"))), (V{b_main, a_tag, a_dev, a_short}));
  EXPECT_EQ(ids_of(store_->jobs(query("https://example.com/nope.git", ""))), V{});

  // Paging: a page of 2, then the next one before its last id, until an empty page.
  EXPECT_EQ(ids_of(store_->jobs(query("", "", "", std::nullopt, 2))), (V{b_main, a_tag}));
  EXPECT_EQ(ids_of(store_->jobs(query("", "", "", a_tag, 2))), (V{a_dev, a_short}));
  EXPECT_EQ(ids_of(store_->jobs(query("", "", "", a_short, 2))), (V{a_main}));
  EXPECT_EQ(ids_of(store_->jobs(query("", "", "", a_main, 2))), V{});
  EXPECT_EQ(ids_of(store_->jobs(query("https://example.com/a.git", "main", "", a_short))), (V{a_main}));

  // Jobs come with their steps, as job() has them.
  auto listed = store_->jobs(query("", "", "running"));
  ASSERT_TRUE(listed && listed->size() == 1u);
  StepRecord build;
  build.name = "build";
  build.state = "running";
  ASSERT_TRUE(*store_->update_step(a_main, lease("a1"), build));
  listed = store_->jobs(query("", "", "running"));
  ASSERT_TRUE(listed && listed->size() == 1u);
  ASSERT_EQ((*listed)[0].steps.size(), 1u);
  EXPECT_EQ((*listed)[0].steps[0].name, "build");
}

}  // namespace
}  // namespace boxcar::server
