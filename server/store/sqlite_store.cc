#include "server/store/sqlite_store.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <system_error>

#include "base/run_state.h"
#include "protocol/agent_protocol.h"
#include "server/store/log_notes.h"
#include "server/store/migrations.h"
#include "server/store/sqlite_query.h"

namespace boxcar::server {

namespace {

constexpr const char* kJobColumns =
    "id, state, repo, ref, commit_sha, file, event, env, labels, attempt, max_attempts, "
    "created_at, started_at, finished_at, agent, lease_expires_at, cancel_requested, reason, "
    "log_bytes, log_truncated, fork, base_repo, forge, forge_repo, forge_api, web_url, "
    "default_branch, status_context, rerun_of, rerun_failed, pipeline_name, cancel_superseded, "
    "superseded_by";

UnixMillis wall_clock_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace


namespace {


JobRecord read_job(const SqliteQuery& q) {
  JobRecord job;
  job.id = q.i64(0);
  job.state = q.text(1);
  job.repo = q.text(2);
  job.ref = q.text(3);
  job.commit = q.text(4);
  job.file = q.text(5);
  job.event = q.text(6);
  job.env = env_from_json(q.text(7));
  job.labels = labels_from_json(q.text(8));
  job.attempt = static_cast<int>(q.i64(9));
  job.max_attempts = static_cast<int>(q.i64(10));
  job.created_at = q.i64(11);
  job.started_at = q.opt_i64(12);
  job.finished_at = q.opt_i64(13);
  job.agent = q.text(14);
  job.lease_expires_at = q.opt_i64(15);
  job.cancel_requested = q.i64(16) != 0;
  job.reason = q.text(17);
  job.log_bytes = q.i64(18);
  job.log_truncated = q.i64(19) != 0;
  job.fork = q.i64(20) != 0;
  job.base_repo = q.text(21);
  job.forge.forge = q.text(22);
  job.forge.repo = q.text(23);
  job.forge.api = q.text(24);
  job.forge.web_url = q.text(25);
  job.default_branch = q.text(26);
  job.status_context = q.text(27);
  job.rerun_of = q.opt_i64(28);
  job.rerun_failed = q.i64(29) != 0;
  job.pipeline_name = q.text(30);
  if (auto v = q.opt_i64(31)) job.cancel_superseded = *v != 0;
  job.superseded_by = q.opt_i64(32);
  return job;
}


}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  if (path.empty()) return Error{"sqlite: empty database path (use sqlite:PATH)"};
  if (path != ":memory:") {
    auto parent = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return Error{"cannot create " + parent.string() + ": " + ec.message(), ec.value()};
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error{"cannot open sqlite database " + path + ": " +
                (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc))};
    sqlite3_close(db);
    return error;
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                             "PRAGMA foreign_keys = ON"}) {
    if (auto status = sqlite_exec(db, pragma); !status) {
      return Error{"cannot open sqlite database " + path + ": " + status.error().message};
    }
  }
  return store;
}

SqliteStore::~SqliteStore() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

sqlite3_stmt* SqliteStore::statement(const char* sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    return nullptr;
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

Status SqliteStore::migrate() {
  std::lock_guard lock(mu_);
  BOXCAR_RETURN_IF_ERROR(sqlite_exec(db_, kCreateSchemaMigrations));
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  int64_t current = 0;
  {
    SqliteQuery q(*this, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    auto row = q.next();
    if (!row) return row.error();
    current = q.i64(0);
  }
  for (const auto& migration : migrations()) {
    if (migration.version <= current) continue;
    for (const auto& statement : statements_for(migration, Dialect::kSqlite)) {
      auto status = sqlite_exec(db_, statement);
      if (!status) {
        return Error{"migration " + std::to_string(migration.version) + " (" +
                     migration.description + "): " + status.error().message};
      }
    }
    SqliteQuery q(*this,
                  "INSERT INTO schema_migrations (version, description, applied_at) "
                  "VALUES (?, ?, ?)");
    BOXCAR_RETURN_IF_ERROR(
        q.bind(int64_t{migration.version}).bind(migration.description).bind(wall_clock_now()).run());
  }
  return tx.commit();
}

Result<int64_t> SqliteStore::insert_job(const NewJob& job, const std::string& state,
                                        const std::string& reason) {
  std::lock_guard lock(mu_);
  UnixMillis now = wall_clock_now();
  std::optional<int64_t> finished;
  if (state != to_string(JobState::queued)) finished = now;
  SqliteQuery q(*this,
                "INSERT INTO jobs (state, repo, ref, commit_sha, file, event, env, labels, "
                "max_attempts, created_at, finished_at, reason, fork, base_repo, forge, forge_repo, "
                "forge_api, web_url, default_branch, status_context, rerun_of, rerun_failed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id");
  q.bind(state).bind(job.repo).bind(job.ref).bind(job.commit).bind(job.file).bind(job.event);
  q.bind(env_to_json(job.env)).bind(labels_to_json(job.labels));
  q.bind(int64_t{std::max(job.max_attempts, 1)}).bind(now).bind(finished).bind(reason);
  q.bind(int64_t{job.fork ? 1 : 0}).bind(job.base_repo);
  q.bind(job.forge.forge).bind(job.forge.repo).bind(job.forge.api).bind(job.forge.web_url);
  q.bind(job.default_branch).bind(job.status_context).bind(job.rerun_of);
  q.bind(int64_t{job.rerun_failed ? 1 : 0});
  auto row = q.next();
  if (!row) return row.error();
  return q.i64(0);
}

Result<int64_t> SqliteStore::enqueue(const NewJob& job) { return insert_job(job, to_string(JobState::queued), ""); }

Result<int64_t> SqliteStore::record_final(const NewJob& job, const std::string& state,
                                          const std::string& reason) {
  if (!is_final_job_state(state)) {
    return Error{"record_final: \"" + state + "\" is not a final job state"};
  }
  return insert_job(job, state, reason);
}

Result<bool> SqliteStore::record_delivery(const std::string& provider,
                                          const std::string& delivery_id,
                                          const std::string& result) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "INSERT INTO deliveries (provider, delivery_id, result, received_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING");
  BOXCAR_RETURN_IF_ERROR(q.bind(provider).bind(delivery_id).bind(result).bind(wall_clock_now()).run());
  return q.changes() == 1;
}

Result<bool> SqliteStore::record_webhook_content(const std::string& key, UnixMillis now,
                                                 int64_t window_ms) {
  std::lock_guard lock(mu_);
  // One statement: two servers receiving the same push at once cannot both see it as new.
  SqliteQuery q(*this,
                "INSERT INTO deliveries (provider, delivery_id, result, received_at) "
                "VALUES ('content', ?, 'queued', ?) ON CONFLICT (provider, delivery_id) DO UPDATE "
                "SET received_at = excluded.received_at WHERE deliveries.received_at <= ?");
  BOXCAR_RETURN_IF_ERROR(q.bind(key).bind(now).bind(now - window_ms).run());
  return q.changes() == 1;
}

Result<std::optional<JobRecord>> SqliteStore::load_job(int64_t id) {
  std::optional<JobRecord> job;
  {
    static const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?";
    SqliteQuery q(*this, sql.c_str());
    auto row = q.bind(id).next();
    if (!row) return row.error();
    if (!*row) return job;
    job = read_job(q);
  }
  SqliteQuery q(*this,
                "SELECT name, state, exit_code, started_at, finished_at, reason, needs FROM steps "
                "WHERE job_id = ? ORDER BY position");
  q.bind(id);
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    StepRecord step;
    step.name = q.text(0);
    step.state = q.text(1);
    if (auto code = q.opt_i64(2)) step.exit_code = static_cast<int>(*code);
    step.started_at = q.opt_i64(3);
    step.finished_at = q.opt_i64(4);
    step.reason = q.text(5);
    step.needs = labels_from_json(q.text(6));
    job->steps.push_back(std::move(step));
  }
  return job;
}

Result<std::optional<JobRecord>> SqliteStore::job(int64_t id) {
  std::lock_guard lock(mu_);
  return load_job(id);
}

// jobs(): sqlite_store_lists.cc.

Result<std::map<std::string, int64_t>> SqliteStore::count_by_state() {
  std::lock_guard lock(mu_);
  std::map<std::string, int64_t> counts;
  for (const char* state : kJobStates) counts[state] = 0;
  SqliteQuery q(*this, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    counts[q.text(0)] = q.i64(1);
  }
  return counts;
}

Result<std::optional<JobRecord>> SqliteStore::claim(const LeaseHolder& holder,
                                                    const std::vector<std::string>& agent_labels,
                                                    int64_t lease_ms, UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  int64_t id = 0;
  {
    // The oldest queued job none of whose labels is missing from the agent's.
    SqliteQuery q(*this,
                  "SELECT id FROM jobs WHERE state = 'queued' AND NOT EXISTS ("
                  " SELECT 1 FROM json_each(jobs.labels) AS need"
                  " WHERE need.value NOT IN (SELECT value FROM json_each(?)))"
                  " ORDER BY id LIMIT 1");
    auto row = q.bind(labels_to_json(agent_labels)).next();
    if (!row) return row.error();
    if (!*row) return std::optional<JobRecord>();
    id = q.i64(0);
  }
  {
    SqliteQuery q(*this,
                  "UPDATE jobs SET state = 'running', agent = ?, agent_id = ?, lease_hash = ?,"
                  " lease_expires_at = ?, started_at = COALESCE(started_at, ?) WHERE id = ?");
    q.bind(holder.agent).bind(holder.agent_id).bind(holder.lease_hash);
    BOXCAR_RETURN_IF_ERROR(q.bind(now + lease_ms).bind(now).bind(id).run());
  }
  auto job = load_job(id);
  if (!job) return job.error();
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return job;
}

Result<HeartbeatResult> SqliteStore::heartbeat(int64_t id, const LeaseHolder& holder,
                                               int64_t lease_ms, UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "UPDATE jobs SET lease_expires_at = ? "
                "WHERE id = ? AND state = 'running' AND agent_id = ? AND lease_hash = ? "
                "RETURNING cancel_requested, lease_expires_at");
  auto row = q.bind(now + lease_ms).bind(id).bind(holder.agent_id).bind(lease_hash(holder)).next();
  if (!row) return row.error();
  HeartbeatResult result;
  if (*row) {
    result.lease_held = true;
    result.cancel_requested = q.i64(0) != 0;
    result.lease_expires_at = q.opt_i64(1);
  }
  return result;
}

Result<std::vector<int64_t>> SqliteStore::expire_leases(UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  struct Expired {
    int64_t id, attempt, max_attempts;
    bool cancel_requested;
    std::string agent;
  };
  std::vector<Expired> expired;
  {
    SqliteQuery q(*this,
                  "SELECT id, attempt, max_attempts, cancel_requested, agent FROM jobs "
                  "WHERE state = 'running' AND lease_expires_at <= ? ORDER BY id");
    q.bind(now);
    for (;;) {
      auto row = q.next();
      if (!row) return row.error();
      if (!*row) break;
      expired.push_back({q.i64(0), q.i64(1), q.i64(2), q.i64(3) != 0, q.text(4)});
    }
  }
  std::vector<int64_t> ids;
  for (const auto& job : expired) {
    LeaseLostOutcome outcome = job.cancel_requested             ? LeaseLostOutcome::cancelled
                               : job.attempt < job.max_attempts ? LeaseLostOutcome::requeued
                                                                : LeaseLostOutcome::gave_up;
    // Written first, under the lost attempt: whatever the attempt logged comes before it.
    BOXCAR_RETURN_IF_ERROR(append_note(
        job.id, job.attempt, kLeaseLostNoteSeq,
        lease_lost_note(job.attempt, job.max_attempts, job.agent, outcome), now));
    if (outcome == LeaseLostOutcome::requeued) {
      // A new attempt reports its steps afresh.
      SqliteQuery requeue(*this,
                          "UPDATE jobs SET state = 'queued', attempt = attempt + 1, agent = '',"
                          " agent_id = NULL, lease_hash = '', lease_expires_at = NULL WHERE id = ?");
      BOXCAR_RETURN_IF_ERROR(requeue.bind(job.id).run());
      SqliteQuery steps(*this, "DELETE FROM steps WHERE job_id = ?");
      BOXCAR_RETURN_IF_ERROR(steps.bind(job.id).run());
    } else {
      std::string state = job.cancel_requested ? to_string(JobState::cancelled) : to_string(JobState::error);
      std::string reason = job.cancel_requested
                               ? "cancelled; the agent was lost before it stopped"
                               : lease_lost_reason(job.attempt, job.max_attempts);
      SqliteQuery end(*this,
                      "UPDATE jobs SET state = ?, reason = ?, finished_at = ?, agent = '',"
                      " agent_id = NULL, lease_hash = '', lease_expires_at = NULL WHERE id = ?");
      BOXCAR_RETURN_IF_ERROR(end.bind(state).bind(reason).bind(now).bind(job.id).run());
      SqliteQuery steps(*this,
                        "UPDATE steps SET state = ?, reason = 'agent lost', finished_at = ? "
                        "WHERE job_id = ? AND state IN ('pending', 'running')");
      BOXCAR_RETURN_IF_ERROR(steps.bind(state).bind(now).bind(job.id).run());
    }
    // The lost agent's sandboxes, and the ports they exposed, are gone.
    SqliteQuery previews(*this,
                         "UPDATE previews SET closed_at = ? WHERE job_id = ? AND closed_at IS NULL");
    BOXCAR_RETURN_IF_ERROR(previews.bind(now).bind(job.id).run());
    ids.push_back(job.id);
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return ids;
}

Status SqliteStore::append_note(int64_t id, int64_t job_attempt, int64_t seq,
                                const std::string& text, UnixMillis now) {
  // ON CONFLICT: a note already there is not an error, which would stop every later sweep.
  SqliteQuery q(*this,
                "INSERT INTO log_chunks (job_id, job_attempt, step, attempt, seq, byte_offset, data, at)"
                " SELECT id, ?, ?, 0, ?, log_bytes, ?, ? FROM jobs WHERE id = ?"
                " ON CONFLICT DO NOTHING");
  q.bind(job_attempt).bind(std::string(protocol::kJobLogStep)).bind(seq).bind_blob(text).bind(now);
  BOXCAR_RETURN_IF_ERROR(q.bind(id).run());
  if (q.changes() == 0) return {};
  SqliteQuery grow(*this, "UPDATE jobs SET log_bytes = log_bytes + ? WHERE id = ?");
  return grow.bind(static_cast<int64_t>(text.size())).bind(id).run();
}

Result<bool> SqliteStore::request_cancel(int64_t id, UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  std::string state;
  {
    SqliteQuery q(*this, "SELECT state FROM jobs WHERE id = ?");
    auto row = q.bind(id).next();
    if (!row) return row.error();
    if (!*row) return false;
    state = q.text(0);
  }
  if (state == to_string(JobState::queued)) {
    SqliteQuery q(*this,
                  "UPDATE jobs SET state = 'cancelled', finished_at = ?,"
                  " reason = 'cancelled before it started' WHERE id = ?");
    BOXCAR_RETURN_IF_ERROR(q.bind(now).bind(id).run());
  } else if (state == to_string(JobState::running)) {
    SqliteQuery q(*this, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?");
    BOXCAR_RETURN_IF_ERROR(q.bind(id).run());
  } else if (is_final_job_state(state)) {
    // Its agent may still serve previews: the next sync's answer tells it to close them.
    SqliteQuery q(*this,
                  "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND EXISTS ("
                  " SELECT 1 FROM previews WHERE job_id = ?1 AND closed_at IS NULL)");
    BOXCAR_RETURN_IF_ERROR(q.bind(id).run());
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<bool> SqliteStore::complete(int64_t id, const LeaseHolder& holder, const std::string& state,
                                   const std::string& reason, UnixMillis now) {
  if (!is_final_job_state(state)) {
    return Error{"complete: \"" + state + "\" is not a final state an agent can report"};
  }
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "UPDATE jobs SET state = ?1, finished_at = ?3, agent = '', lease_expires_at = NULL,"
                // A superseded job that stops as cancelled keeps saying by which; one that
                // finished otherwise first was not superseded.
                " reason = CASE WHEN superseded_by IS NOT NULL AND ?1 = 'cancelled' THEN reason"
                " ELSE ?2 END, superseded_by = CASE WHEN ?1 = 'cancelled' THEN superseded_by END"
                " WHERE id = ?4 AND state = 'running' AND agent_id = ?5 AND lease_hash = ?6");
  q.bind(state).bind(reason).bind(now).bind(id).bind(holder.agent_id).bind(lease_hash(holder));
  BOXCAR_RETURN_IF_ERROR(q.run());
  return q.changes() == 1;
}

Result<bool> SqliteStore::lease_held(int64_t id, const LeaseHolder& holder) {
  SqliteQuery q(*this,
                "SELECT 1 FROM jobs"
                " WHERE id = ? AND state = 'running' AND agent_id = ? AND lease_hash = ?");
  return q.bind(id).bind(holder.agent_id).bind(lease_hash(holder)).next();
}

Result<bool> SqliteStore::update_step(int64_t id, const LeaseHolder& holder,
                                      const StepRecord& step) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  auto held = lease_held(id, holder);
  if (!held || !*held) return held;
  SqliteQuery q(*this,
                "INSERT INTO steps (job_id, name, position, state, exit_code, started_at,"
                " finished_at, reason, needs)"
                " VALUES (?1, ?2, (SELECT COUNT(*) FROM steps WHERE job_id = ?1), ?3, ?4, ?5, ?6, ?7,"
                " ?8)"
                " ON CONFLICT (job_id, name) DO UPDATE SET state = excluded.state,"
                // A step that starts again (a retry) drops its previous outcome.
                " exit_code = CASE WHEN excluded.state IN ('pending', 'running')"
                "  THEN excluded.exit_code ELSE COALESCE(excluded.exit_code, steps.exit_code) END,"
                " finished_at = CASE WHEN excluded.state IN ('pending', 'running')"
                "  THEN excluded.finished_at ELSE COALESCE(excluded.finished_at, steps.finished_at) END,"
                " started_at = COALESCE(excluded.started_at, steps.started_at),"
                " reason = CASE WHEN excluded.reason = '' AND excluded.state NOT IN ('pending', 'running')"
                "  THEN steps.reason ELSE excluded.reason END,"
                " needs = CASE WHEN excluded.needs = '[]' THEN steps.needs ELSE excluded.needs END");
  std::optional<int64_t> exit_code;
  if (step.exit_code) exit_code = *step.exit_code;
  q.bind(id).bind(step.name).bind(step.state).bind(exit_code).bind(step.started_at);
  q.bind(step.finished_at).bind(step.reason).bind(labels_to_json(step.needs));
  BOXCAR_RETURN_IF_ERROR(q.run());
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<bool> SqliteStore::set_job_pipeline(int64_t id, const LeaseHolder& holder,
                                           const std::string& name, bool cancel_superseded) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "UPDATE jobs SET pipeline_name = ?, cancel_superseded = ?"
                " WHERE id = ? AND state = 'running' AND agent_id = ? AND lease_hash = ?");
  q.bind(name).bind(int64_t{cancel_superseded ? 1 : 0}).bind(id).bind(holder.agent_id);
  q.bind(lease_hash(holder));
  BOXCAR_RETURN_IF_ERROR(q.run());
  return q.changes() > 0;
}

Result<bool> SqliteStore::append_log(int64_t id, const LeaseHolder& holder, const LogChunk& chunk,
                                     int64_t max_log_bytes) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  auto size = static_cast<int64_t>(chunk.data.size());
  int64_t log_bytes = 0, job_attempt = 0;
  bool truncated = false;
  {
    SqliteQuery q(*this,
                  "SELECT log_bytes, attempt, log_truncated FROM jobs"
                  " WHERE id = ? AND state = 'running' AND agent_id = ? AND lease_hash = ?");
    auto row = q.bind(id).bind(holder.agent_id).bind(lease_hash(holder)).next();
    if (!row) return row.error();
    if (!*row) return false;
    log_bytes = q.i64(0);
    job_attempt = q.i64(1);
    truncated = q.i64(2) != 0;
  }
  // Keyed by the job's attempt too: a re-queued job's agent numbers its chunks from 0 again.
  {
    SqliteQuery q(*this,
                  "SELECT 1 FROM log_chunks WHERE job_id = ? AND job_attempt = ? AND step = ?"
                  " AND attempt = ? AND seq = ?");
    auto row = q.bind(id).bind(job_attempt).bind(chunk.step).bind(int64_t{chunk.attempt}).bind(chunk.seq).next();
    if (!row) return row.error();
    if (*row) return false;  // a retried upload
  }
  bool over = max_log_bytes > 0 && log_bytes + size > max_log_bytes;
  if (over && truncated) return false;
  // Past the cap, the chunk's whole lines that still fit are kept, then the note says the rest
  // is dropped (from this chunk on).
  std::string_view data = over ? head_within(chunk.data, max_log_bytes - log_bytes) : chunk.data;
  if (!data.empty() || !over) {
    {
      SqliteQuery q(*this, "UPDATE jobs SET log_bytes = log_bytes + ? WHERE id = ?");
      BOXCAR_RETURN_IF_ERROR(q.bind(static_cast<int64_t>(data.size())).bind(id).run());
    }
    SqliteQuery q(*this,
                  "INSERT INTO log_chunks (job_id, job_attempt, step, attempt, seq, byte_offset, data, at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind(id).bind(job_attempt).bind(chunk.step).bind(int64_t{chunk.attempt}).bind(chunk.seq).bind(log_bytes);
    q.bind_blob(std::string(data)).bind(chunk.at);
    BOXCAR_RETURN_IF_ERROR(q.run());
  }
  if (over) {
    BOXCAR_RETURN_IF_ERROR(append_note(id, job_attempt, kLogTruncatedNoteSeq,
                                       log_truncated_note(max_log_bytes), chunk.at));
    SqliteQuery q(*this, "UPDATE jobs SET log_truncated = 1 WHERE id = ?");
    BOXCAR_RETURN_IF_ERROR(q.bind(id).run());
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<std::vector<LogChunk>> SqliteStore::logs(int64_t id, const std::string& step,
                                                int64_t offset, int limit) {
  std::lock_guard lock(mu_);
  // Starts at the chunk holding byte `offset` (the index finds it), then keeps the chunks that
  // end past it.
  SqliteQuery q(*this,
                "SELECT step, seq, attempt, data, at, byte_offset FROM log_chunks"
                " WHERE job_id = ?1 AND byte_offset >= (SELECT COALESCE(MAX(byte_offset), 0)"
                "  FROM log_chunks WHERE job_id = ?1 AND byte_offset <= ?2)"
                " AND byte_offset + length(data) > ?2 AND (?3 = '' OR step = ?3)"
                " ORDER BY byte_offset LIMIT ?4");
  q.bind(id).bind(offset).bind(step).bind(int64_t{limit > 0 ? limit : -1});
  std::vector<LogChunk> chunks;
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    LogChunk chunk;
    chunk.step = q.text(0);
    chunk.seq = q.i64(1);
    chunk.attempt = static_cast<int>(q.i64(2));
    chunk.data = q.text(3);
    chunk.at = q.i64(4);
    chunk.offset = q.i64(5);
    if (chunk.offset < offset) {  // the caller asked from the middle of this chunk
      chunk.data.erase(0, static_cast<size_t>(offset - chunk.offset));
      chunk.offset = offset;
    }
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

}  // namespace boxcar::server
