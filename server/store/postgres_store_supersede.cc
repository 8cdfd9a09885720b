// PostgresStore's superseded jobs: a newer push cancels the older jobs of its ref (store.h).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/run_state.h"
#include "server/store/log_notes.h"
#include "server/store/migrations.h"
#include "server/store/pull_request_key.h"
#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

Result<std::vector<int64_t>> PostgresStore::supersede(int64_t newer, const std::string& reason,
                                                      UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  auto job = s->query(
      "SELECT event, repo, ref, env, forge_repo, base_repo FROM jobs WHERE id = $1", newer);
  if (!job) return job.error();
  if (job->size() == 0) return std::vector<int64_t>{};
  std::string event = job->text(0, 0), repo = job->text(0, 1), ref = job->text(0, 2);
  std::string base = pull_request_key(job->text(0, 3));
  if (event != "push" && event != "pull_request") return std::vector<int64_t>{};

  // The row locks order this with complete(), heartbeats and lease expiry: a job that ended
  // before they were taken is not selected (its row is read again once unlocked).
  auto older = s->query(
      "SELECT id, state, file, cancel_superseded, attempt, env FROM jobs"
      " WHERE id < $1 AND event = $2 AND repo = $3 AND ref = $4 AND rerun_of IS NULL"
      " AND forge_repo = $5 AND base_repo = $6"
      " AND state IN ('queued', 'running') ORDER BY id FOR UPDATE",
      newer, event, repo, ref, job->text(0, 4), job->text(0, 5));
  if (!older) return older.error();
  std::map<std::string, bool> last_reported;  // by file, for jobs not parsed yet
  std::vector<int64_t> ids;
  for (int i = 0; i < older->size(); ++i) {
    if (event == "pull_request" && pull_request_key(older->text(i, 5)) != base) continue;
    int64_t id = older->i64(i, 0);
    std::string file = older->text(i, 2);
    bool cancel = true;
    if (auto v = older->opt_i64(i, 3)) {
      cancel = *v != 0;
    } else if (auto it = last_reported.find(file); it != last_reported.end()) {
      cancel = it->second;
    } else {
      auto last = s->query(
          "SELECT cancel_superseded FROM jobs WHERE repo = $1 AND file = $2"
          " AND cancel_superseded IS NOT NULL ORDER BY id DESC LIMIT 1",
          repo, file);
      if (!last) return last.error();
      if (last->size() > 0) cancel = last->i64(0, 0) != 0;
      last_reported[file] = cancel;
    }
    if (!cancel) continue;
    bool running = older->text(i, 1) == to_string(JobState::running);
    if (running) {
      BOXCAR_RETURN_IF_ERROR(s->query(
          "UPDATE jobs SET cancel_requested = 1, superseded_by = $1, reason = $2 WHERE id = $3",
          newer, reason, id));
    } else {
      BOXCAR_RETURN_IF_ERROR(s->query(
          "UPDATE jobs SET state = 'cancelled', finished_at = $1, superseded_by = $2, reason = $3"
          " WHERE id = $4",
          now, newer, reason, id));
    }
    BOXCAR_RETURN_IF_ERROR(append_note(*s, id, older->i64(i, 4), kSupersededNoteSeq,
                                       superseded_note(reason, running), now));
    ids.push_back(id);
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return ids;
}

}  // namespace boxcar::server
