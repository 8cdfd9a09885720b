// SqliteStore's superseded jobs: a newer push cancels the older jobs of its ref (store.h).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/run_state.h"
#include "server/store/log_notes.h"
#include "server/store/migrations.h"
#include "server/store/pull_request_key.h"
#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

Result<std::vector<int64_t>> SqliteStore::supersede(int64_t newer, const std::string& reason,
                                                    UnixMillis now) {
  std::lock_guard lock(mu_);
  // BEGIN IMMEDIATE: no complete() of another process slips in between the read and the write.
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  std::string event, repo, ref, base, forge_repo, base_repo;
  {
    SqliteQuery q(*this, "SELECT event, repo, ref, env, forge_repo, base_repo FROM jobs WHERE id = ?");
    auto row = q.bind(newer).next();
    if (!row) return row.error();
    if (!*row) return std::vector<int64_t>{};
    event = q.text(0);
    repo = q.text(1);
    ref = q.text(2);
    base = pull_request_key(q.text(3));
    forge_repo = q.text(4);
    base_repo = q.text(5);
  }
  if (event != "push" && event != "pull_request") return std::vector<int64_t>{};

  struct Older {
    int64_t id = 0, attempt = 1;
    std::string state, file;
    std::optional<bool> cancel_superseded;
  };
  std::vector<Older> older;
  {
    SqliteQuery q(*this,
                  "SELECT id, state, file, cancel_superseded, attempt, env FROM jobs"
                  " WHERE id < ? AND event = ? AND repo = ? AND ref = ? AND rerun_of IS NULL"
                  " AND forge_repo = ? AND base_repo = ?"
                  " AND state IN ('queued', 'running') ORDER BY id");
    q.bind(newer).bind(event).bind(repo).bind(ref).bind(forge_repo).bind(base_repo);
    for (;;) {
      auto row = q.next();
      if (!row) return row.error();
      if (!*row) break;
      if (event == "pull_request" && pull_request_key(q.text(5)) != base) continue;
      Older o{q.i64(0), q.i64(4), q.text(1), q.text(2), std::nullopt};
      if (auto v = q.opt_i64(3)) o.cancel_superseded = *v != 0;
      older.push_back(std::move(o));
    }
  }
  std::map<std::string, bool> last_reported;  // by file, for jobs not parsed yet
  std::vector<int64_t> ids;
  for (const Older& o : older) {
    bool cancel = true;
    if (o.cancel_superseded) {
      cancel = *o.cancel_superseded;
    } else if (auto it = last_reported.find(o.file); it != last_reported.end()) {
      cancel = it->second;
    } else {
      SqliteQuery q(*this,
                    "SELECT cancel_superseded FROM jobs WHERE repo = ? AND file = ?"
                    " AND cancel_superseded IS NOT NULL ORDER BY id DESC LIMIT 1");
      auto row = q.bind(repo).bind(o.file).next();
      if (!row) return row.error();
      if (*row) cancel = q.i64(0) != 0;
      last_reported[o.file] = cancel;
    }
    if (!cancel) continue;
    bool running = o.state == to_string(JobState::running);
    if (running) {
      SqliteQuery q(*this,
                    "UPDATE jobs SET cancel_requested = 1, superseded_by = ?, reason = ?"
                    " WHERE id = ?");
      BOXCAR_RETURN_IF_ERROR(q.bind(newer).bind(reason).bind(o.id).run());
    } else {
      SqliteQuery q(*this,
                    "UPDATE jobs SET state = 'cancelled', finished_at = ?, superseded_by = ?,"
                    " reason = ? WHERE id = ?");
      BOXCAR_RETURN_IF_ERROR(q.bind(now).bind(newer).bind(reason).bind(o.id).run());
    }
    BOXCAR_RETURN_IF_ERROR(
        append_note(o.id, o.attempt, kSupersededNoteSeq, superseded_note(reason, running), now));
    ids.push_back(o.id);
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return ids;
}

}  // namespace boxcar::server
