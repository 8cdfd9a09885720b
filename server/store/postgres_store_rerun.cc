// PostgresStore's re-runs: a reused step's artifact records copied from the job re-run.
#include "server/store/migrations.h"
#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

Result<ReuseCopy> PostgresStore::copy_reused_artifacts(int64_t id, const LeaseHolder& holder, int64_t from,
                                                       const std::string& step, int64_t max_job_bytes,
                                                       UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  ReuseCopy out;
  // The job's row locked: its lease cannot move to another agent before this commits.
  auto job = s->query(
      "SELECT rerun_of, rerun_failed FROM jobs"
      " WHERE id = $1 AND state = 'running' AND agent_id = $2 AND lease_hash = $3 FOR UPDATE",
      id, holder.agent_id, lease_hash(holder));
  if (!job) return job.error();
  if (job->size() == 0) {
    out.outcome = ReuseCopy::Outcome::lease_lost;
    return out;
  }
  if (job->null(0, 0) || job->i64(0, 0) != from || job->i64(0, 1) == 0) {
    out.outcome = ReuseCopy::Outcome::not_rerun_of;
    return out;
  }
  // FOR SHARE: a retention purge deleting these records waits for this transaction, and then
  // sees the copies referring to the same blobs, so it keeps them.
  auto source = s->query(
      "SELECT path, size FROM artifacts WHERE job_id = $1 AND step = $2 FOR SHARE", from, step);
  if (!source) return source.error();
  auto bytes = s->query(
      "SELECT COALESCE((SELECT SUM(size) FROM artifacts WHERE job_id = $1 AND path NOT IN"
      " (SELECT path FROM artifacts WHERE job_id = $2 AND step = $3)), 0)::BIGINT +"
      " COALESCE((SELECT SUM(size) FROM artifacts WHERE job_id = $2 AND step = $3), 0)::BIGINT",
      id, from, step);
  if (!bytes) return bytes.error();
  out.job_bytes = bytes->i64(0, 0);
  if (out.job_bytes > max_job_bytes) {
    out.outcome = ReuseCopy::Outcome::over_limit;
    return out;
  }
  auto copied = s->query(
      "INSERT INTO artifacts (job_id, path, sha256, size, step, created_at, link_target)"
      " SELECT $1, path, sha256, size, step, $2, link_target FROM artifacts"
      " WHERE job_id = $3 AND step = $4"
      " ON CONFLICT (job_id, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,"
      " step = excluded.step, created_at = excluded.created_at, link_target = excluded.link_target",
      id, now, from, step);
  if (!copied) return copied.error();
  auto rows = s->query(
      "SELECT path, sha256, size, step, created_at, link_target FROM artifacts"
      " WHERE job_id = $1 AND step = $2 ORDER BY path COLLATE \"C\"",
      id, step);
  if (!rows) return rows.error();
  for (int i = 0; i < rows->size(); ++i) {
    out.records.push_back({rows->text(i, 0), rows->text(i, 1), rows->i64(i, 2), rows->text(i, 3),
                           rows->i64(i, 4), rows->text(i, 5)});
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return out;
}

}  // namespace boxcar::server
