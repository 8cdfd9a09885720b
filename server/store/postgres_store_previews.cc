// PostgresStore's previews: the ports agents serve for jobs, synced as full lists.
#include <set>
#include <utility>

#include "base/run_state.h"
#include "server/store/migrations.h"
#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

Result<PreviewSyncResult> PostgresStore::sync_previews(int64_t id, const LeaseHolder& holder,
                                                       const std::vector<PreviewRecord>& open,
                                                       UnixMillis now) {
  const std::string& agent = holder.agent;
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  // The row lock orders this sync with complete(), request_cancel() and lease expiry, so the
  // check below still holds when the rows are written. complete() keeps the lease's holder and
  // token hash: the last holder's syncs still match.
  auto job = s->query(
      "SELECT state, COALESCE(agent_id = $2 AND lease_hash = $3, false)::int, cancel_requested"
      " FROM jobs WHERE id = $1 FOR NO KEY UPDATE",
      id, holder.agent_id, lease_hash(holder));
  if (!job) return job.error();
  PreviewSyncResult result;
  if (job->size() == 0) return result;
  std::string state = job->text(0, 0);
  if (job->i64(0, 1) == 0) return result;
  if (state != to_string(JobState::running)) {
    if (!is_final_job_state(state)) return result;
    // Once the job is final, only an agent that reported previews keeps syncing them.
    auto owned = s->query("SELECT 1 FROM previews WHERE job_id = $1 AND agent = $2 LIMIT 1", id,
                          agent);
    if (!owned) return owned.error();
    if (owned->size() == 0) return result;
  }
  result.accepted = true;
  result.close_requested = job->i64(0, 2) != 0;

  std::set<std::pair<std::string, std::string>> listed;
  for (const auto& p : open) listed.emplace(p.step, p.name);
  auto current = s->query("SELECT step, name FROM previews WHERE job_id = $1 AND closed_at IS NULL",
                          id);
  if (!current) return current.error();
  for (int i = 0; i < current->size(); ++i) {
    std::string step = current->text(i, 0), name = current->text(i, 1);
    if (listed.contains({step, name})) continue;
    BOXCAR_RETURN_IF_ERROR(s->query(
        "UPDATE previews SET closed_at = $1 WHERE job_id = $2 AND step = $3 AND name = $4", now, id,
        step, name));
  }
  for (const auto& p : open) {
    BOXCAR_RETURN_IF_ERROR(s->query(
        "INSERT INTO previews (job_id, step, name, port, url, path_url, agent, opened_at,"
        " expires_at, seen_at, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, NULL)"
        " ON CONFLICT (job_id, step, name) DO UPDATE SET port = excluded.port,"
        " url = excluded.url, path_url = excluded.path_url, agent = excluded.agent,"
        " expires_at = excluded.expires_at, seen_at = excluded.seen_at, closed_at = NULL",
        id, p.step, p.name, p.port, p.url, p.path_url, agent, now, p.expires_at));
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return result;
}

Result<std::vector<PreviewRecord>> PostgresStore::previews(int64_t id) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "SELECT step, name, port, url, path_url, agent, opened_at, seen_at, expires_at, closed_at"
      " FROM previews WHERE job_id = $1 ORDER BY step COLLATE \"C\", name COLLATE \"C\"",
      id);
  if (!rows) return rows.error();
  std::vector<PreviewRecord> out;
  for (int i = 0; i < rows->size(); ++i) {
    PreviewRecord p;
    p.step = rows->text(i, 0);
    p.name = rows->text(i, 1);
    p.port = static_cast<int>(rows->i64(i, 2));
    p.url = rows->text(i, 3);
    p.path_url = rows->text(i, 4);
    p.agent = rows->text(i, 5);
    p.opened_at = rows->i64(i, 6);
    p.seen_at = rows->i64(i, 7);
    p.expires_at = rows->opt_i64(i, 8);
    p.closed_at = rows->opt_i64(i, 9);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace boxcar::server
