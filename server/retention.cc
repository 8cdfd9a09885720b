// Job retention: finished jobs, with their steps, logs, previews and artifacts, and webhook
// deliveries, deleted once older than --job-retention. It runs on the server's sweeper, off the
// request path, in short batches so the store is never locked for long.
#include <algorithm>

#include "server/api.h"
#include "server/webhooks.h"

namespace boxcar::server {

namespace {

// Jobs per transaction, and transactions per sweep: a sweep deletes at most 1,000 jobs (a
// backlog drains over the following sweeps).
constexpr int kBatch = 100;
constexpr int kBatchesPerSweep = 10;

}  // namespace

int64_t sweep_job_retention(ApiContext& ctx, bool& more) {
  more = false;
  if (ctx.options.job_retention_ms <= 0) return 0;
  UnixMillis now = now_ms();
  UnixMillis jobs_before = now - ctx.options.job_retention_ms;
  // A delivery is also the memory of a replayed push (webhooks.h): kept a day at least.
  UnixMillis deliveries_before =
      now - std::max<int64_t>(ctx.options.job_retention_ms, kWebhookReplayWindowMs);
  int64_t deleted = 0;
  for (int i = 0; i < kBatchesPerSweep; ++i) {
    PurgeResult purged;
    bool failed = false;
    remove_unreferenced_blobs(ctx, [&] {
      auto r = ctx.store.purge(jobs_before, deliveries_before, kBatch);
      if (!r) {
        failed = true;
        return std::vector<std::string>{};
      }
      purged = std::move(*r);
      return purged.unreferenced_hashes;
    });
    if (failed) return deleted;  // the store is unwell: the next sweep tries again
    deleted += purged.jobs;
    more = purged.jobs == kBatch || purged.deliveries == kBatch;
    if (!more) break;
  }
  if (deleted > 0) ctx.metrics.count_jobs_deleted(deleted);
  return deleted;
}

}  // namespace boxcar::server
