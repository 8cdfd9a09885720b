// The store's previews, on both backends (the fixture is store_test_fixture.h; the suite is
// instantiated in store_test.cc).
#include <gtest/gtest.h>

#include "testing/store_test_fixture.h"

namespace boxcar::server {
namespace {

using store_testing::StoreTest;

PreviewRecord preview(const std::string& step, const std::string& name, int port,
                      std::optional<UnixMillis> expires_at = std::nullopt) {
  PreviewRecord p;
  p.step = step;
  p.name = name;
  p.port = port;
  p.url = "http://" + std::to_string(port) + "-1-tok.preview.localhost:8081/";
  p.path_url = "http://127.0.0.1:8081/preview/tok-" + name + "/";
  p.expires_at = expires_at;
  return p;
}

TEST_P(StoreTest, PreviewsSyncOnlyFromTheLeaseHolderWhileRunning) {
  int64_t id = enqueue();
  EXPECT_FALSE(sync(id, "a1", {preview("web", "app", 8000)}, 1'000).accepted);  // queued
  ASSERT_TRUE(claim("a1", {}, 60'000, 1'000));
  EXPECT_FALSE(sync(id + 424242, "a1", {preview("web", "app", 8000)}, 1'100).accepted);

  auto ok = sync(id, "a1", {preview("web", "app", 8000, 90'000), preview("api", "docs", 9000)},
                 2'000);
  EXPECT_TRUE(ok.accepted);
  EXPECT_FALSE(ok.close_requested);
  EXPECT_FALSE(sync(id, "a2", {}, 2'100).accepted);  // refused, and nothing closed

  auto all = previews(id);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].step, "api");  // by step, then name
  EXPECT_EQ(all[1].step, "web");
  EXPECT_EQ(all[1].name, "app");
  EXPECT_EQ(all[1].port, 8000);
  EXPECT_EQ(all[1].url, "http://8000-1-tok.preview.localhost:8081/");
  EXPECT_EQ(all[1].path_url, "http://127.0.0.1:8081/preview/tok-app/");
  EXPECT_EQ(all[1].agent, "a1");
  EXPECT_EQ(all[1].opened_at, 2'000);
  EXPECT_EQ(all[1].seen_at, 2'000);
  EXPECT_EQ(all[1].expires_at, 90'000);
  EXPECT_FALSE(all[1].closed_at);
  EXPECT_FALSE(all[0].expires_at);
}

TEST_P(StoreTest, PreviewsSyncAfterCompleteOnlyFromTheAgentThatReportedThem) {
  int64_t with = enqueue("with");
  int64_t without = enqueue("without");
  ASSERT_TRUE(claim("a1", {}, 60'000, 1'000));
  ASSERT_TRUE(claim("a1", {}, 60'000, 1'000));
  ASSERT_TRUE(sync(with, "a1", {preview("web", "app", 8000)}, 1'500).accepted);
  ASSERT_TRUE(*store_->complete(with, lease("a1"), "success", "", 2'000));
  ASSERT_TRUE(*store_->complete(without, lease("a1"), "success", "", 2'000));

  auto later = sync(with, "a1", {preview("web", "app", 8000, 700'000)}, 3'000);
  EXPECT_TRUE(later.accepted);
  EXPECT_FALSE(later.close_requested);
  EXPECT_FALSE(sync(with, "a2", {}, 3'100).accepted);
  EXPECT_FALSE(sync(without, "a1", {preview("web", "app", 8000)}, 3'200).accepted);
  EXPECT_TRUE(previews(without).empty());

  auto all = previews(with);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].opened_at, 1'500);  // kept from the first report
  EXPECT_EQ(all[0].seen_at, 3'000);
  EXPECT_EQ(all[0].expires_at, 700'000);
  EXPECT_FALSE(all[0].closed_at);
}

TEST_P(StoreTest, APreviewLeftOutOfTheListIsClosedAndReopenedWhenListedAgain) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("a1"));
  ASSERT_TRUE(sync(id, "a1", {preview("web", "app", 8000), preview("web", "admin", 8001)}, 1'000)
                  .accepted);
  ASSERT_TRUE(sync(id, "a1", {preview("web", "admin", 8001)}, 2'000).accepted);
  auto all = previews(id);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "admin");
  EXPECT_FALSE(all[0].closed_at);
  EXPECT_EQ(all[0].seen_at, 2'000);
  EXPECT_EQ(all[1].name, "app");
  EXPECT_EQ(all[1].closed_at, 2'000);
  EXPECT_EQ(all[1].seen_at, 1'000);

  ASSERT_TRUE(sync(id, "a1", {preview("web", "app", 8002), preview("web", "admin", 8001)}, 3'000)
                  .accepted);
  all = previews(id);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_FALSE(all[1].closed_at);
  EXPECT_EQ(all[1].port, 8002);
  EXPECT_EQ(all[1].opened_at, 1'000);

  ASSERT_TRUE(sync(id, "a1", {}, 4'000).accepted);  // an empty list closes them all
  for (const auto& p : previews(id)) EXPECT_EQ(p.closed_at, 4'000) << p.name;
}

TEST_P(StoreTest, CancelOfACompletedJobWithOpenPreviewsAsksItsAgentToCloseThem) {
  int64_t id = enqueue();
  ASSERT_TRUE(claim("a1"));
  ASSERT_TRUE(sync(id, "a1", {preview("web", "app", 8000)}, 1'000).accepted);
  ASSERT_TRUE(*store_->complete(id, lease("a1"), "success", "", 2'000));

  auto cancelled = store_->request_cancel(id, 3'000);
  ASSERT_TRUE(cancelled) << cancelled.error().message;
  EXPECT_TRUE(*cancelled);
  JobRecord job = get(id);
  EXPECT_EQ(job.state, "success");  // the job's outcome stands
  EXPECT_EQ(job.finished_at, 2'000);
  EXPECT_TRUE(job.cancel_requested);

  auto next = sync(id, "a1", {preview("web", "app", 8000)}, 4'000);
  EXPECT_TRUE(next.accepted);
  EXPECT_TRUE(next.close_requested);
  EXPECT_TRUE(sync(id, "a1", {}, 4'500).accepted);
  EXPECT_EQ(previews(id)[0].closed_at, 4'500);
}

TEST_P(StoreTest, CancelOfACompletedJobWithoutOpenPreviewsLeavesItAsItIs) {
  int64_t never = enqueue("never");
  int64_t closed = enqueue("closed");
  ASSERT_TRUE(claim("a1"));
  ASSERT_TRUE(claim("a1"));
  ASSERT_TRUE(sync(closed, "a1", {preview("web", "app", 8000)}, 1'000).accepted);
  ASSERT_TRUE(sync(closed, "a1", {}, 1'500).accepted);
  for (int64_t id : {never, closed}) {
    ASSERT_TRUE(*store_->complete(id, lease("a1"), "failed", "", 2'000));
    EXPECT_TRUE(*store_->request_cancel(id, 3'000));
    JobRecord job = get(id);
    EXPECT_EQ(job.state, "failed");
    EXPECT_FALSE(job.cancel_requested) << job.repo;
  }
}

TEST_P(StoreTest, LeaseExpiryClosesThePreviews) {
  int64_t requeued = enqueue("requeued");
  int64_t ended = enqueue("ended", {}, /*max_attempts=*/1);
  ASSERT_TRUE(claim("a1", {}, 1'000, 1'000));
  ASSERT_TRUE(claim("a1", {}, 1'000, 1'000));
  ASSERT_TRUE(sync(requeued, "a1", {preview("web", "app", 8000)}, 1'100).accepted);
  ASSERT_TRUE(sync(ended, "a1", {preview("web", "app", 8000)}, 1'100).accepted);
  auto expired = store_->expire_leases(5'000);
  ASSERT_TRUE(expired) << expired.error().message;
  EXPECT_EQ(expired->size(), 2u);
  EXPECT_EQ(get(requeued).state, "queued");
  EXPECT_EQ(get(ended).state, "error");
  EXPECT_EQ(previews(requeued)[0].closed_at, 5'000);
  EXPECT_EQ(previews(ended)[0].closed_at, 5'000);
  // Nothing open any more: a cancel leaves the ended job as it is.
  EXPECT_TRUE(*store_->request_cancel(ended, 6'000));
  EXPECT_FALSE(get(ended).cancel_requested);
}

}  // namespace
}  // namespace boxcar::server
