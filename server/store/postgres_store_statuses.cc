// PostgresStore's forge statuses: the outbox rows migration 10's trigger function queues,
// claimed with FOR UPDATE SKIP LOCKED so servers sharing the database send each row once.
#include <algorithm>

#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {
namespace {

constexpr const char* kStatusColumns =
    "id, job_id, state, description, created_at, attempts, next_attempt_at, delivered_at, "
    "result, last_error, last_http_status";

ForgeStatusRecord read_status(const PgRows& rows, int i) {
  ForgeStatusRecord r;
  r.id = rows.i64(i, 0);
  r.job_id = rows.i64(i, 1);
  r.state = rows.text(i, 2);
  r.description = rows.text(i, 3);
  r.created_at = rows.i64(i, 4);
  r.attempts = static_cast<int>(rows.i64(i, 5));
  r.next_attempt_at = rows.opt_i64(i, 6);
  r.delivered_at = rows.opt_i64(i, 7);
  r.result = rows.text(i, 8);
  r.last_error = rows.text(i, 9);
  r.last_http_status = static_cast<int>(rows.i64(i, 10));
  return r;
}

}  // namespace

Result<std::vector<ForgeStatusRecord>> PostgresStore::forge_statuses(int64_t job_id) {
  auto s = session();
  if (!s) return s.error();
  static const std::string sql = std::string("SELECT ") + kStatusColumns +
                                 " FROM forge_statuses WHERE job_id = $1 ORDER BY id";
  auto rows = s->query(sql.c_str(), job_id);
  if (!rows) return rows.error();
  std::vector<ForgeStatusRecord> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(read_status(*rows, i));
  return out;
}

Result<std::vector<ForgeStatusRecord>> PostgresStore::claim_forge_statuses(const std::string& claimer,
                                                                           int limit, int64_t hold_ms,
                                                                           UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  // SKIP LOCKED: a replica claiming at the same moment takes other rows instead of waiting.
  static const std::string sql =
      std::string("UPDATE forge_statuses SET claim_token = $1, claimed_until = $2 WHERE id IN ("
                  " SELECT f.id FROM forge_statuses f WHERE f.result = 'queued'"
                  " AND f.next_attempt_at <= $3 AND (f.claimed_until IS NULL OR f.claimed_until < $3)"
                  " AND NOT EXISTS (SELECT 1 FROM forge_statuses o WHERE o.job_id = f.job_id"
                  "  AND o.id <> f.id AND o.claimed_until IS NOT NULL AND o.claimed_until >= $3)"
                  " ORDER BY f.next_attempt_at, f.id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING ") +
      kStatusColumns;
  auto rows = s->query(sql.c_str(), claimer, now + hold_ms, now, int64_t{limit});
  if (!rows) return rows.error();
  std::vector<ForgeStatusRecord> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(read_status(*rows, i));
  std::sort(out.begin(), out.end(), [](const ForgeStatusRecord& a, const ForgeStatusRecord& b) {
    return a.next_attempt_at != b.next_attempt_at ? a.next_attempt_at < b.next_attempt_at : a.id < b.id;
  });
  return out;
}

Result<bool> PostgresStore::finish_forge_status(int64_t id, const std::string& claimer,
                                                const ForgeStatusOutcome& outcome, UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  // Every right-hand side reads the row as it was: a row superseded meanwhile stays so.
  auto rows = s->query(
      "UPDATE forge_statuses SET attempts = attempts + $1, last_http_status = $2,"
      " last_error = $3,"
      " delivered_at = CASE WHEN $4::TEXT = 'delivered' THEN $5::BIGINT ELSE delivered_at END,"
      " result = CASE WHEN $4::TEXT = 'delivered' THEN 'delivered'"
      "  WHEN $4::TEXT = 'failed' AND result = 'queued' THEN 'failed' ELSE result END,"
      " next_attempt_at = CASE WHEN $4::TEXT = 'retry' AND result = 'queued' THEN $6::BIGINT ELSE NULL END,"
      " claim_token = '', claimed_until = NULL"
      " WHERE id = $7 AND claim_token = $8 AND claim_token <> ''",
      int64_t{outcome.attempted ? 1 : 0}, int64_t{outcome.http_status}, outcome.error,
      ForgeStatusOutcome::name(outcome.kind), now, outcome.next_attempt_at, id, claimer);
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

Result<int64_t> PostgresStore::undelivered_forge_statuses() {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query("SELECT COUNT(*) FROM forge_statuses WHERE result = 'queued'");
  if (!rows) return rows.error();
  return rows->size() > 0 ? rows->i64(0, 0) : 0;
}

Result<std::string> PostgresStore::last_pipeline_name(const std::string& repo,
                                                      const std::string& file) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "SELECT pipeline_name FROM jobs WHERE repo = $1 AND file = $2 AND pipeline_name <> ''"
      " ORDER BY id DESC LIMIT 1",
      repo, file);
  if (!rows) return rows.error();
  return rows->size() > 0 ? rows->text(0, 0) : std::string();
}

}  // namespace boxcar::server
