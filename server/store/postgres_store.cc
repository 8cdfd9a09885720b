#include "server/store/postgres_store.h"

#include "base/run_state.h"
#include "server/store/pg_session.h"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <unordered_map>

#include "protocol/agent_protocol.h"
#include "server/store/log_notes.h"
#include "server/store/migrations.h"

namespace boxcar::server {


namespace {

// "host:port" from the URL, for messages; libpq's defaults when the URL leaves them out.
std::string describe_server(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return "?";
  }
  std::string host, port;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    std::string key = o->keyword;
    if (key == "host" && o->val) host = o->val;
    if (key == "port" && o->val) port = o->val;
  }
  PQconninfoFree(options);
  if (host.empty()) host = "localhost";
  if (port.empty()) port = "5432";
  return host + ":" + port;
}

}  // namespace

// A note already there is not an error, which would stop every later sweep.
Status pg_internal::append_note(PgSession& s, int64_t id, int64_t job_attempt, int64_t seq,
                                const std::string& text, UnixMillis now) {
  auto inserted = s.query(
      "INSERT INTO log_chunks (job_id, job_attempt, step, attempt, seq, byte_offset, data, at)"
      " SELECT id, $2::integer, $3::text, 0, $4::bigint, log_bytes, $5::bytea, $6::bigint"
      " FROM jobs WHERE id = $1"
      " ON CONFLICT DO NOTHING",
      id, job_attempt, std::string(protocol::kJobLogStep), seq, Bytes{text}, now);
  if (!inserted) return inserted.error();
  if (inserted->affected() == 0) return {};
  auto grown = s.query("UPDATE jobs SET log_bytes = log_bytes + $1 WHERE id = $2",
                       static_cast<int64_t>(text.size()), id);
  if (!grown) return grown.error();
  return {};
}

PostgresStore::PostgresStore(std::string url, std::string where, int max_connections)
    : url_(std::move(url)), where_(std::move(where)), max_connections_(max_connections) {}

PostgresStore::~PostgresStore() = default;

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(const std::string& url,
                                                           int max_connections) {
  std::unique_ptr<PostgresStore> store(
      new PostgresStore(url, describe_server(url), std::max(max_connections, 1)));
  auto session = store->session();  // connects now, so the caller hears about a bad URL
  if (!session) return session.error();
  return store;
}

Result<PgSession> PostgresStore::session() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
  if (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    return PgSession(this, std::move(connection));
  }
  ++open_;
  lock.unlock();
  PGconn* conn = PQconnectdb(url_.c_str());
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    std::string message = conn ? trimmed(PQerrorMessage(conn)) : "out of memory";
    PQfinish(conn);
    lock.lock();
    --open_;
    idle_cv_.notify_one();
    return Error{"cannot connect to PostgreSQL at " + where_ + ": " + message};
  }
  // Notices ("relation already exists, skipping") would go to stderr; they are expected.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return PgSession(this, std::make_unique<PgConnection>(conn));
}

void PostgresStore::give_back(std::unique_ptr<PgConnection> connection) {
  if (PQstatus(connection->conn) == CONNECTION_OK &&
      PQtransactionStatus(connection->conn) != PQTRANS_IDLE) {
    PQclear(PQexec(connection->conn, "ROLLBACK"));
  }
  bool healthy = PQstatus(connection->conn) == CONNECTION_OK &&
                 PQtransactionStatus(connection->conn) == PQTRANS_IDLE;
  if (!healthy) connection.reset();  // closed outside the lock is nicer, but rare
  std::lock_guard lock(mu_);
  if (healthy) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;
  }
  idle_cv_.notify_one();
}

Status PostgresStore::migrate() {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  // Replicas starting together: one migrates, the others then find nothing to do.
  BOXCAR_RETURN_IF_ERROR(s->query("SELECT pg_advisory_xact_lock($1)", kMigrationLock));
  BOXCAR_RETURN_IF_ERROR(s->exec(kCreateSchemaMigrations));
  auto current = s->query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!current) return current.error();
  int64_t version = current->i64(0, 0);
  for (const auto& migration : migrations()) {
    if (migration.version <= version) continue;
    for (const auto& sql : statements_for(migration, Dialect::kPostgres)) {
      if (auto status = s->exec(sql.c_str()); !status) {
        return Error{"migration " + std::to_string(migration.version) + " (" +
                     migration.description + "): " + status.error().message};
      }
    }
    BOXCAR_RETURN_IF_ERROR(s->query(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
        migration.version, migration.description, wall_clock_now()));
  }
  return tx.commit();
}

Result<int64_t> PostgresStore::insert_job(const NewJob& job, const std::string& state,
                                          const std::string& reason) {
  auto s = session();
  if (!s) return s.error();
  UnixMillis now = wall_clock_now();
  std::optional<int64_t> finished;
  if (state != to_string(JobState::queued)) finished = now;
  auto rows = s->query(
      "INSERT INTO jobs (state, repo, ref, commit_sha, file, event, env, labels, max_attempts,"
      " created_at, finished_at, reason, fork, base_repo, forge, forge_repo, forge_api, web_url,"
      " default_branch, status_context, rerun_of, rerun_failed)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
      " $19, $20, $21, $22) RETURNING id",
      state, job.repo, job.ref, job.commit, job.file, job.event, env_to_json(job.env),
      labels_to_json(job.labels), std::max(job.max_attempts, 1), now, finished, reason,
      int64_t{job.fork ? 1 : 0}, job.base_repo, job.forge.forge, job.forge.repo, job.forge.api,
      job.forge.web_url, job.default_branch, job.status_context, job.rerun_of,
      int64_t{job.rerun_failed ? 1 : 0});
  if (!rows) return rows.error();
  return rows->i64(0, 0);
}

Result<int64_t> PostgresStore::enqueue(const NewJob& job) { return insert_job(job, to_string(JobState::queued), ""); }

Result<int64_t> PostgresStore::record_final(const NewJob& job, const std::string& state,
                                            const std::string& reason) {
  if (!is_final_job_state(state)) {
    return Error{"record_final: \"" + state + "\" is not a final job state"};
  }
  return insert_job(job, state, reason);
}

Result<bool> PostgresStore::record_delivery(const std::string& provider,
                                            const std::string& delivery_id,
                                            const std::string& result) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "INSERT INTO deliveries (provider, delivery_id, result, received_at)"
      " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
      provider, delivery_id, result, wall_clock_now());
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

Result<bool> PostgresStore::record_webhook_content(const std::string& key, UnixMillis now,
                                                   int64_t window_ms) {
  auto s = session();
  if (!s) return s.error();
  // One statement: two replicas receiving the same push at once cannot both see it as new.
  auto rows = s->query(
      "INSERT INTO deliveries (provider, delivery_id, result, received_at)"
      " VALUES ('content', $1, 'queued', $2) ON CONFLICT (provider, delivery_id) DO UPDATE"
      " SET received_at = excluded.received_at WHERE deliveries.received_at <= $3",
      key, now, now - window_ms);
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

Result<std::optional<JobRecord>> PostgresStore::job(int64_t id) {
  auto s = session();
  if (!s) return s.error();
  static const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = $1";
  auto rows = s->query(sql.c_str(), id);
  if (!rows) return rows.error();
  if (rows->size() == 0) return std::optional<JobRecord>();
  JobRecord job = read_job(*rows, 0);
  auto steps = s->query(
      "SELECT name, state, exit_code, started_at, finished_at, reason, needs FROM steps"
      " WHERE job_id = $1 ORDER BY position, name",
      id);
  if (!steps) return steps.error();
  for (int i = 0; i < steps->size(); ++i) job.steps.push_back(read_step(*steps, i, 0));
  return std::optional<JobRecord>(std::move(job));
}

// jobs(): postgres_store_lists.cc.

Result<std::map<std::string, int64_t>> PostgresStore::count_by_state() {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query("SELECT state, COUNT(*) FROM jobs GROUP BY state");
  if (!rows) return rows.error();
  std::map<std::string, int64_t> counts;
  for (const char* state : kJobStates) counts[state] = 0;
  for (int i = 0; i < rows->size(); ++i) counts[rows->text(i, 0)] = rows->i64(i, 1);
  return counts;
}

Result<std::optional<JobRecord>> PostgresStore::claim(const LeaseHolder& holder,
                                                      const std::vector<std::string>& agent_labels,
                                                      int64_t lease_ms, UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  // One statement, so one transaction: the subquery locks the oldest matching queued row,
  // skipping rows other claimers hold locked right now; a row claimed and committed meanwhile
  // fails the re-check of state = 'queued' and the scan moves on. A claimed job has no steps
  // yet (a re-queued one had them deleted), so none are loaded.
  static const std::string sql =
      std::string(
          "UPDATE jobs SET state = 'running', agent = $1, lease_expires_at = $2,"
          " started_at = COALESCE(started_at, $3), agent_id = $5, lease_hash = $6"
          " WHERE id = (SELECT id FROM jobs WHERE state = 'queued'"
          "  AND labels::jsonb <@ $4::jsonb ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
          " RETURNING ") +
      kJobColumns;
  auto rows = s->query(sql.c_str(), holder.agent, now + lease_ms, now, labels_to_json(agent_labels),
                       holder.agent_id, holder.lease_hash);
  if (!rows) return rows.error();
  if (rows->size() == 0) return std::optional<JobRecord>();
  return std::optional<JobRecord>(read_job(*rows, 0));
}

Result<HeartbeatResult> PostgresStore::heartbeat(int64_t id, const LeaseHolder& holder,
                                                 int64_t lease_ms, UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "UPDATE jobs SET lease_expires_at = $1"
      " WHERE id = $2 AND state = 'running' AND agent_id = $3 AND lease_hash = $4"
      " RETURNING cancel_requested, lease_expires_at",
      now + lease_ms, id, holder.agent_id, lease_hash(holder));
  if (!rows) return rows.error();
  HeartbeatResult result;
  if (rows->size() == 1) {
    result.lease_held = true;
    result.cancel_requested = rows->i64(0, 0) != 0;
    result.lease_expires_at = rows->opt_i64(0, 1);
  }
  return result;
}

Result<std::vector<int64_t>> PostgresStore::expire_leases(UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  // SKIP LOCKED: a row being heartbeated or completed right now is not expired by this sweep;
  // another replica sweeping at the same time takes the other rows.
  auto expired = s->query(
      "SELECT id, attempt, max_attempts, cancel_requested, agent FROM jobs"
      " WHERE state = 'running' AND lease_expires_at <= $1 ORDER BY id FOR UPDATE SKIP LOCKED",
      now);
  if (!expired) return expired.error();
  std::vector<int64_t> ids;
  for (int i = 0; i < expired->size(); ++i) {
    int64_t id = expired->i64(i, 0);
    int64_t attempt = expired->i64(i, 1);
    int64_t max_attempts = expired->i64(i, 2);
    bool cancel_requested = expired->i64(i, 3) != 0;
    LeaseLostOutcome outcome = cancel_requested         ? LeaseLostOutcome::cancelled
                               : attempt < max_attempts ? LeaseLostOutcome::requeued
                                                        : LeaseLostOutcome::gave_up;
    // Written first, under the lost attempt: whatever the attempt logged comes before it.
    BOXCAR_RETURN_IF_ERROR(append_note(
        *s, id, attempt, kLeaseLostNoteSeq,
        lease_lost_note(attempt, max_attempts, expired->text(i, 4), outcome), now));
    if (outcome == LeaseLostOutcome::requeued) {
      // A new attempt reports its steps afresh.
      BOXCAR_RETURN_IF_ERROR(s->query(
          "UPDATE jobs SET state = 'queued', attempt = attempt + 1, agent = '',"
          " agent_id = NULL, lease_hash = '', lease_expires_at = NULL WHERE id = $1",
          id));
      BOXCAR_RETURN_IF_ERROR(s->query("DELETE FROM steps WHERE job_id = $1", id));
    } else {
      std::string state = cancel_requested ? to_string(JobState::cancelled) : to_string(JobState::error);
      std::string reason = cancel_requested ? "cancelled; the agent was lost before it stopped"
                                            : lease_lost_reason(attempt, max_attempts);
      BOXCAR_RETURN_IF_ERROR(s->query(
          "UPDATE jobs SET state = $1, reason = $2, finished_at = $3, agent = '',"
          " agent_id = NULL, lease_hash = '', lease_expires_at = NULL WHERE id = $4",
          state, reason, now, id));
      BOXCAR_RETURN_IF_ERROR(s->query(
          "UPDATE steps SET state = $1, reason = 'agent lost', finished_at = $2"
          " WHERE job_id = $3 AND state IN ('pending', 'running')",
          state, now, id));
    }
    // The lost agent's sandboxes, and the ports they exposed, are gone.
    BOXCAR_RETURN_IF_ERROR(s->query(
        "UPDATE previews SET closed_at = $1 WHERE job_id = $2 AND closed_at IS NULL", now, id));
    ids.push_back(id);
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return ids;
}

Result<bool> PostgresStore::request_cancel(int64_t id, UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  auto rows = s->query("SELECT state FROM jobs WHERE id = $1 FOR UPDATE", id);
  if (!rows) return rows.error();
  if (rows->size() == 0) return false;
  std::string state = rows->text(0, 0);
  if (state == to_string(JobState::queued)) {
    BOXCAR_RETURN_IF_ERROR(s->query(
        "UPDATE jobs SET state = 'cancelled', finished_at = $1,"
        " reason = 'cancelled before it started' WHERE id = $2",
        now, id));
  } else if (state == to_string(JobState::running)) {
    BOXCAR_RETURN_IF_ERROR(s->query("UPDATE jobs SET cancel_requested = 1 WHERE id = $1", id));
  } else if (is_final_job_state(state)) {
    // Its agent may still serve previews: the next sync's answer tells it to close them.
    BOXCAR_RETURN_IF_ERROR(s->query(
        "UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND EXISTS ("
        " SELECT 1 FROM previews WHERE job_id = $1 AND closed_at IS NULL)",
        id));
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<bool> PostgresStore::complete(int64_t id, const LeaseHolder& holder,
                                     const std::string& state, const std::string& reason,
                                     UnixMillis now) {
  if (!is_final_job_state(state)) {
    return Error{"complete: \"" + state + "\" is not a final state an agent can report"};
  }
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "UPDATE jobs SET state = $1, finished_at = $3, agent = '', lease_expires_at = NULL,"
      // A superseded job that stops as cancelled keeps saying by which; one that finished
      // otherwise first was not superseded.
      " reason = CASE WHEN superseded_by IS NOT NULL AND $1 = 'cancelled' THEN reason ELSE $2 END,"
      " superseded_by = CASE WHEN $1 = 'cancelled' THEN superseded_by END"
      " WHERE id = $4 AND state = 'running' AND agent_id = $5 AND lease_hash = $6",
      state, reason, now, id, holder.agent_id, lease_hash(holder));
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

Result<bool> PostgresStore::update_step(int64_t id, const LeaseHolder& holder,
                                        const StepRecord& step) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  // The row lock keeps the lease ours until commit and numbers the job's steps one at a time.
  auto held = s->query(
      "SELECT 1 FROM jobs WHERE id = $1 AND state = 'running' AND agent_id = $2 AND lease_hash = $3"
      " FOR NO KEY UPDATE",
      id, holder.agent_id, lease_hash(holder));
  if (!held) return held.error();
  if (held->size() == 0) return false;
  std::optional<int64_t> exit_code;
  if (step.exit_code) exit_code = *step.exit_code;
  BOXCAR_RETURN_IF_ERROR(s->query(
      "INSERT INTO steps (job_id, name, position, state, exit_code, started_at, finished_at,"
      " reason, needs)"
      " VALUES ($1, $2, (SELECT COUNT(*) FROM steps WHERE job_id = $1), $3, $4, $5, $6, $7, $8)"
      " ON CONFLICT (job_id, name) DO UPDATE SET state = excluded.state,"
      // A step that starts again (a retry) drops its previous outcome.
      " exit_code = CASE WHEN excluded.state IN ('pending', 'running')"
      "  THEN excluded.exit_code ELSE COALESCE(excluded.exit_code, steps.exit_code) END,"
      " finished_at = CASE WHEN excluded.state IN ('pending', 'running')"
      "  THEN excluded.finished_at ELSE COALESCE(excluded.finished_at, steps.finished_at) END,"
      " started_at = COALESCE(excluded.started_at, steps.started_at),"
      " reason = CASE WHEN excluded.reason = '' AND excluded.state NOT IN ('pending', 'running')"
      "  THEN steps.reason ELSE excluded.reason END,"
      " needs = CASE WHEN excluded.needs = '[]' THEN steps.needs ELSE excluded.needs END",
      id, step.name, step.state, exit_code, step.started_at, step.finished_at, step.reason,
      labels_to_json(step.needs)));
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<bool> PostgresStore::set_job_pipeline(int64_t id, const LeaseHolder& holder,
                                             const std::string& name, bool cancel_superseded) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "UPDATE jobs SET pipeline_name = $1, cancel_superseded = $2"
      " WHERE id = $3 AND state = 'running' AND agent_id = $4 AND lease_hash = $5",
      name, int64_t{cancel_superseded ? 1 : 0}, id, holder.agent_id, lease_hash(holder));
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

Result<bool> PostgresStore::append_log(int64_t id, const LeaseHolder& holder,
                                       const LogChunk& chunk, int64_t max_log_bytes) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  // The job row's lock orders concurrent appends, so offsets are contiguous.
  auto job = s->query(
      "SELECT log_bytes, attempt, log_truncated FROM jobs"
      " WHERE id = $1 AND state = 'running' AND agent_id = $2 AND lease_hash = $3"
      " FOR NO KEY UPDATE",
      id, holder.agent_id, lease_hash(holder));
  if (!job) return job.error();
  if (job->size() == 0) return false;
  int64_t log_bytes = job->i64(0, 0), job_attempt = job->i64(0, 1);
  bool truncated = job->i64(0, 2) != 0;
  // Keyed by the job's attempt too: a re-queued job's agent numbers its chunks from 0 again.
  auto seen = s->query(
      "SELECT 1 FROM log_chunks WHERE job_id = $1 AND job_attempt = $2 AND step = $3"
      " AND attempt = $4 AND seq = $5",
      id, job_attempt, chunk.step, chunk.attempt, chunk.seq);
  if (!seen) return seen.error();
  if (seen->size() > 0) return false;  // a retried upload
  auto size = static_cast<int64_t>(chunk.data.size());
  bool over = max_log_bytes > 0 && log_bytes + size > max_log_bytes;
  if (over && truncated) return false;
  // Past the cap, the chunk's whole lines that still fit are kept, then the note says the rest
  // is dropped (from this chunk on).
  std::string data(over ? head_within(chunk.data, max_log_bytes - log_bytes)
                        : std::string_view(chunk.data));
  if (!data.empty() || !over) {
    BOXCAR_RETURN_IF_ERROR(s->query("UPDATE jobs SET log_bytes = log_bytes + $1 WHERE id = $2",
                                    static_cast<int64_t>(data.size()), id));
    BOXCAR_RETURN_IF_ERROR(s->query(
        "INSERT INTO log_chunks (job_id, job_attempt, step, attempt, seq, byte_offset, data, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id, job_attempt, chunk.step, chunk.attempt, chunk.seq, log_bytes, Bytes{data}, chunk.at));
  }
  if (over) {
    BOXCAR_RETURN_IF_ERROR(append_note(*s, id, job_attempt, kLogTruncatedNoteSeq,
                                       log_truncated_note(max_log_bytes), chunk.at));
    BOXCAR_RETURN_IF_ERROR(s->query("UPDATE jobs SET log_truncated = 1 WHERE id = $1", id));
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<std::vector<LogChunk>> PostgresStore::logs(int64_t id, const std::string& step,
                                                  int64_t offset, int limit) {
  auto s = session();
  if (!s) return s.error();
  std::optional<int64_t> max_rows;
  if (limit > 0) max_rows = limit;
  // Starts at the chunk holding byte `offset` (the index finds it), then keeps the chunks that
  // end past it.
  auto rows = s->query(
      "SELECT step, seq, attempt, data, at, byte_offset FROM log_chunks"
      " WHERE job_id = $1 AND byte_offset >= (SELECT COALESCE(MAX(byte_offset), 0)"
      "  FROM log_chunks WHERE job_id = $1 AND byte_offset <= $2)"
      " AND byte_offset + length(data) > $2 AND ($3 = '' OR step = $3)"
      " ORDER BY byte_offset LIMIT $4",
      id, offset, step, max_rows);
  if (!rows) return rows.error();
  std::vector<LogChunk> chunks;
  for (int i = 0; i < rows->size(); ++i) {
    LogChunk chunk;
    chunk.step = rows->text(i, 0);
    chunk.seq = rows->i64(i, 1);
    chunk.attempt = static_cast<int>(rows->i64(i, 2));
    chunk.data = rows->bytes(i, 3);
    chunk.at = rows->i64(i, 4);
    chunk.offset = rows->i64(i, 5);
    if (chunk.offset < offset) {  // the caller asked from the middle of this chunk
      chunk.data.erase(0, static_cast<size_t>(offset - chunk.offset));
      chunk.offset = offset;
    }
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

}  // namespace boxcar::server
