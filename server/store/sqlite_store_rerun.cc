// SqliteStore's re-runs: a reused step's artifact records copied from the job re-run.
#include "server/store/migrations.h"
#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

Result<ReuseCopy> SqliteStore::copy_reused_artifacts(int64_t id, const LeaseHolder& holder, int64_t from,
                                                     const std::string& step, int64_t max_job_bytes,
                                                     UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  ReuseCopy out;
  auto held = lease_held(id, holder);
  if (!held) return held.error();
  if (!*held) {
    out.outcome = ReuseCopy::Outcome::lease_lost;
    return out;
  }
  {
    SqliteQuery q(*this, "SELECT 1 FROM jobs WHERE id = ? AND rerun_of = ? AND rerun_failed = 1");
    auto row = q.bind(id).bind(from).next();
    if (!row) return row.error();
    if (!*row) {
      out.outcome = ReuseCopy::Outcome::not_rerun_of;
      return out;
    }
  }
  {
    // The job's bytes once the step's records are in: its own records not replaced by path,
    // plus the copied ones.
    SqliteQuery q(*this,
                  "SELECT COALESCE((SELECT SUM(size) FROM artifacts WHERE job_id = ? AND path NOT IN"
                  " (SELECT path FROM artifacts WHERE job_id = ? AND step = ?)), 0) +"
                  " COALESCE((SELECT SUM(size) FROM artifacts WHERE job_id = ? AND step = ?), 0)");
    auto row = q.bind(id).bind(from).bind(step).bind(from).bind(step).next();
    if (!row) return row.error();
    out.job_bytes = *row ? q.i64(0) : 0;
    if (out.job_bytes > max_job_bytes) {
      out.outcome = ReuseCopy::Outcome::over_limit;
      return out;
    }
  }
  {
    SqliteQuery q(*this,
                  "INSERT INTO artifacts (job_id, path, sha256, size, step, created_at, link_target)"
                  " SELECT ?, path, sha256, size, step, ?, link_target FROM artifacts"
                  " WHERE job_id = ? AND step = ?"
                  " ON CONFLICT (job_id, path) DO UPDATE SET sha256 = excluded.sha256,"
                  " size = excluded.size, step = excluded.step, created_at = excluded.created_at,"
                  " link_target = excluded.link_target");
    BOXCAR_RETURN_IF_ERROR(q.bind(id).bind(now).bind(from).bind(step).run());
  }
  {
    SqliteQuery q(*this,
                  "SELECT path, sha256, size, step, created_at, link_target FROM artifacts"
                  " WHERE job_id = ? AND step = ? ORDER BY path");
    q.bind(id).bind(step);
    for (;;) {
      auto row = q.next();
      if (!row) return row.error();
      if (!*row) break;
      out.records.push_back({q.text(0), q.text(1), q.i64(2), q.text(3), q.i64(4), q.text(5)});
    }
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return out;
}

}  // namespace boxcar::server
