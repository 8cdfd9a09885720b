// SqliteStore's previews: the ports agents serve for jobs, synced as full lists.
#include <set>
#include <utility>

#include "base/run_state.h"
#include "server/store/migrations.h"
#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

Result<PreviewSyncResult> SqliteStore::sync_previews(int64_t id, const LeaseHolder& holder,
                                                     const std::vector<PreviewRecord>& open,
                                                     UnixMillis now) {
  const std::string& agent = holder.agent;
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  PreviewSyncResult result;
  {
    // complete() keeps the lease's holder and token hash: the last holder's syncs still match.
    SqliteQuery q(*this,
                  "SELECT state, agent_id = ? AND lease_hash = ?, cancel_requested FROM jobs"
                  " WHERE id = ?");
    auto row = q.bind(holder.agent_id).bind(lease_hash(holder)).bind(id).next();
    if (!row) return row.error();
    if (!*row) return result;
    std::string state = q.text(0);
    if (q.i64(1) == 0) return result;
    if (state != to_string(JobState::running) && !is_final_job_state(state)) return result;
    result.close_requested = q.i64(2) != 0;
    if (state != to_string(JobState::running)) {
      // complete() cleared the lease: the rows say which agent still serves the job's previews.
      SqliteQuery owner(*this, "SELECT 1 FROM previews WHERE job_id = ? AND agent = ? LIMIT 1");
      auto owned = owner.bind(id).bind(agent).next();
      if (!owned) return owned.error();
      if (!*owned) return PreviewSyncResult{};
    }
  }
  result.accepted = true;

  std::set<std::pair<std::string, std::string>> listed;
  for (const auto& p : open) listed.emplace(p.step, p.name);
  std::vector<std::pair<std::string, std::string>> dropped;
  {
    SqliteQuery q(*this, "SELECT step, name FROM previews WHERE job_id = ? AND closed_at IS NULL");
    q.bind(id);
    for (;;) {
      auto row = q.next();
      if (!row) return row.error();
      if (!*row) break;
      std::pair<std::string, std::string> key{q.text(0), q.text(1)};
      if (!listed.contains(key)) dropped.push_back(std::move(key));
    }
  }
  for (const auto& [step, name] : dropped) {
    SqliteQuery q(*this,
                  "UPDATE previews SET closed_at = ? WHERE job_id = ? AND step = ? AND name = ?");
    BOXCAR_RETURN_IF_ERROR(q.bind(now).bind(id).bind(step).bind(name).run());
  }
  for (const auto& p : open) {
    SqliteQuery q(*this,
                  "INSERT INTO previews (job_id, step, name, port, url, path_url, agent, opened_at,"
                  " expires_at, seen_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
                  " ON CONFLICT (job_id, step, name) DO UPDATE SET port = excluded.port,"
                  " url = excluded.url, path_url = excluded.path_url, agent = excluded.agent,"
                  " expires_at = excluded.expires_at, seen_at = excluded.seen_at, closed_at = NULL");
    q.bind(id).bind(p.step).bind(p.name).bind(int64_t{p.port}).bind(p.url).bind(p.path_url);
    q.bind(agent).bind(now).bind(p.expires_at).bind(now);
    BOXCAR_RETURN_IF_ERROR(q.run());
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return result;
}

Result<std::vector<PreviewRecord>> SqliteStore::previews(int64_t id) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "SELECT step, name, port, url, path_url, agent, opened_at, seen_at, expires_at,"
                " closed_at FROM previews WHERE job_id = ? ORDER BY step, name");
  q.bind(id);
  std::vector<PreviewRecord> out;
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    PreviewRecord p;
    p.step = q.text(0);
    p.name = q.text(1);
    p.port = static_cast<int>(q.i64(2));
    p.url = q.text(3);
    p.path_url = q.text(4);
    p.agent = q.text(5);
    p.opened_at = q.i64(6);
    p.seen_at = q.i64(7);
    p.expires_at = q.opt_i64(8);
    p.closed_at = q.opt_i64(9);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace boxcar::server
