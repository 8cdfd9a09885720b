// SqliteStore's retention: old finished jobs (and all that is theirs) and old webhook
// deliveries deleted in small batches, so the write lock is never held for long.
#include <algorithm>

#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

Result<PurgeResult> SqliteStore::purge(UnixMillis jobs_before, UnixMillis deliveries_before,
                                       int batch) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  PurgeResult result;
  std::vector<int64_t> ids;
  {
    SqliteQuery q(*this,
                  "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?"
                  " AND state IN ('success', 'failed', 'cancelled', 'error', 'skipped')"
                  " ORDER BY finished_at LIMIT ?");
    q.bind(jobs_before).bind(int64_t{batch});
    for (;;) {
      auto row = q.next();
      if (!row) return row.error();
      if (!*row) break;
      ids.push_back(q.i64(0));
    }
  }
  std::vector<std::string> hashes;
  for (int64_t id : ids) {
    {
      SqliteQuery q(*this, "SELECT DISTINCT sha256 FROM artifacts WHERE job_id = ?");
      q.bind(id);
      for (;;) {
        auto row = q.next();
        if (!row) return row.error();
        if (!*row) break;
        hashes.push_back(q.text(0));
      }
    }
    // Steps, log chunks, previews and artifact records go with it (ON DELETE CASCADE).
    SqliteQuery q(*this, "DELETE FROM jobs WHERE id = ?");
    BOXCAR_RETURN_IF_ERROR(q.bind(id).run());
    result.jobs += q.changes();
  }
  std::sort(hashes.begin(), hashes.end());
  hashes.erase(std::unique(hashes.begin(), hashes.end()), hashes.end());
  for (const auto& hash : hashes) {
    SqliteQuery q(*this, "SELECT 1 FROM artifacts WHERE sha256 = ? LIMIT 1");
    auto row = q.bind(hash).next();
    if (!row) return row.error();
    if (!*row) result.unreferenced_hashes.push_back(hash);
  }
  {
    SqliteQuery q(*this,
                  "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries"
                  " WHERE received_at < ? LIMIT ?)");
    BOXCAR_RETURN_IF_ERROR(q.bind(deliveries_before).bind(int64_t{batch}).run());
    result.deliveries = q.changes();
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return result;
}

}  // namespace boxcar::server
