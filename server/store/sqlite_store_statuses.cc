// SqliteStore's forge statuses: the outbox rows migration 10's triggers queue, claimed and
// finished by the server's status sender.
#include <algorithm>

#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {
namespace {

constexpr const char* kStatusColumns =
    "id, job_id, state, description, created_at, attempts, next_attempt_at, delivered_at, "
    "result, last_error, last_http_status";

ForgeStatusRecord read_status(const SqliteQuery& q) {
  ForgeStatusRecord r;
  r.id = q.i64(0);
  r.job_id = q.i64(1);
  r.state = q.text(2);
  r.description = q.text(3);
  r.created_at = q.i64(4);
  r.attempts = static_cast<int>(q.i64(5));
  r.next_attempt_at = q.opt_i64(6);
  r.delivered_at = q.opt_i64(7);
  r.result = q.text(8);
  r.last_error = q.text(9);
  r.last_http_status = static_cast<int>(q.i64(10));
  return r;
}

}  // namespace

Result<std::vector<ForgeStatusRecord>> SqliteStore::forge_statuses(int64_t job_id) {
  std::lock_guard lock(mu_);
  static const std::string sql =
      std::string("SELECT ") + kStatusColumns + " FROM forge_statuses WHERE job_id = ? ORDER BY id";
  SqliteQuery q(*this, sql.c_str());
  q.bind(job_id);
  std::vector<ForgeStatusRecord> out;
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_status(q));
  }
  return out;
}

Result<std::vector<ForgeStatusRecord>> SqliteStore::claim_forge_statuses(const std::string& claimer,
                                                                         int limit, int64_t hold_ms,
                                                                         UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  std::vector<int64_t> ids;
  {
    SqliteQuery q(*this,
                  "SELECT f.id FROM forge_statuses f WHERE f.result = 'queued'"
                  " AND f.next_attempt_at <= ?1 AND (f.claimed_until IS NULL OR f.claimed_until < ?1)"
                  " AND NOT EXISTS (SELECT 1 FROM forge_statuses o WHERE o.job_id = f.job_id"
                  "  AND o.id <> f.id AND o.claimed_until IS NOT NULL AND o.claimed_until >= ?1)"
                  " ORDER BY f.next_attempt_at, f.id LIMIT ?2");
    q.bind(now).bind(int64_t{limit});
    for (;;) {
      auto row = q.next();
      if (!row) return row.error();
      if (!*row) break;
      ids.push_back(q.i64(0));
    }
  }
  std::vector<ForgeStatusRecord> out;
  for (int64_t id : ids) {
    {
      SqliteQuery q(*this, "UPDATE forge_statuses SET claim_token = ?, claimed_until = ? WHERE id = ?");
      BOXCAR_RETURN_IF_ERROR(q.bind(claimer).bind(now + hold_ms).bind(id).run());
    }
    static const std::string sql =
        std::string("SELECT ") + kStatusColumns + " FROM forge_statuses WHERE id = ?";
    SqliteQuery q(*this, sql.c_str());
    auto row = q.bind(id).next();
    if (!row) return row.error();
    if (*row) out.push_back(read_status(q));
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return out;
}

Result<bool> SqliteStore::finish_forge_status(int64_t id, const std::string& claimer,
                                              const ForgeStatusOutcome& outcome, UnixMillis now) {
  std::lock_guard lock(mu_);
  // Every right-hand side reads the row as it was: a row superseded meanwhile stays so.
  SqliteQuery q(*this,
                "UPDATE forge_statuses SET attempts = attempts + ?1, last_http_status = ?2,"
                " last_error = ?3,"
                " delivered_at = CASE WHEN ?4 = 'delivered' THEN ?5 ELSE delivered_at END,"
                " result = CASE WHEN ?4 = 'delivered' THEN 'delivered'"
                "  WHEN ?4 = 'failed' AND result = 'queued' THEN 'failed' ELSE result END,"
                " next_attempt_at = CASE WHEN ?4 = 'retry' AND result = 'queued' THEN ?6 ELSE NULL END,"
                " claim_token = '', claimed_until = NULL"
                " WHERE id = ?7 AND claim_token = ?8 AND claim_token <> ''");
  q.bind(int64_t{outcome.attempted ? 1 : 0}).bind(int64_t{outcome.http_status}).bind(outcome.error);
  q.bind(std::string(ForgeStatusOutcome::name(outcome.kind))).bind(now).bind(outcome.next_attempt_at);
  BOXCAR_RETURN_IF_ERROR(q.bind(id).bind(claimer).run());
  return q.changes() == 1;
}

Result<int64_t> SqliteStore::undelivered_forge_statuses() {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this, "SELECT COUNT(*) FROM forge_statuses WHERE result = 'queued'");
  auto row = q.next();
  if (!row) return row.error();
  return *row ? q.i64(0) : 0;
}

Result<std::string> SqliteStore::last_pipeline_name(const std::string& repo,
                                                    const std::string& file) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "SELECT pipeline_name FROM jobs WHERE repo = ? AND file = ? AND pipeline_name <> ''"
                " ORDER BY id DESC LIMIT 1");
  auto row = q.bind(repo).bind(file).next();
  if (!row) return row.error();
  return *row ? q.text(0) : std::string();
}

}  // namespace boxcar::server
