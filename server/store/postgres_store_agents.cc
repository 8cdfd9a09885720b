// PostgresStore's agents: registrations, the hashes of their credentials, revocation.
#include "server/store/migrations.h"
#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

namespace {

constexpr const char* kAgentColumns =
    "id, name, labels, credential_hash, created_at, last_seen_at, revoked_at";

AgentRecord read_agent(const PgRows& rows, int row) {
  AgentRecord a;
  a.id = rows.i64(row, 0);
  a.name = rows.text(row, 1);
  a.labels = labels_from_json(rows.text(row, 2));
  a.credential_hash = rows.text(row, 3);
  a.created_at = rows.i64(row, 4);
  a.last_seen_at = rows.opt_i64(row, 5);
  a.revoked_at = rows.opt_i64(row, 6);
  return a;
}

Result<std::optional<AgentRecord>> first_agent(Result<PgRows> rows) {
  if (!rows) return rows.error();
  if (rows->size() == 0) return std::optional<AgentRecord>();
  return std::optional<AgentRecord>(read_agent(*rows, 0));
}

}  // namespace

Result<std::optional<AgentRecord>> PostgresStore::add_agent(const std::string& name,
                                                            const std::vector<std::string>& labels,
                                                            const std::string& credential_hash,
                                                            UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  static const std::string sql =
      std::string("INSERT INTO agents (name, labels, credential_hash, created_at, last_seen_at)"
                  " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING ") +
      kAgentColumns;
  return first_agent(s->query(sql.c_str(), name, labels_to_json(labels), credential_hash, now));
}

Result<std::optional<AgentRecord>> PostgresStore::agent(int64_t id) {
  auto s = session();
  if (!s) return s.error();
  static const std::string sql = std::string("SELECT ") + kAgentColumns + " FROM agents WHERE id = $1";
  return first_agent(s->query(sql.c_str(), id));
}

Result<std::optional<AgentRecord>> PostgresStore::agent_named(const std::string& name) {
  auto s = session();
  if (!s) return s.error();
  static const std::string sql = std::string("SELECT ") + kAgentColumns + " FROM agents WHERE name = $1";
  return first_agent(s->query(sql.c_str(), name));
}

Result<std::vector<AgentRecord>> PostgresStore::agents() {
  auto s = session();
  if (!s) return s.error();
  static const std::string sql = std::string("SELECT ") + kAgentColumns + " FROM agents ORDER BY id";
  auto rows = s->query(sql.c_str());
  if (!rows) return rows.error();
  std::vector<AgentRecord> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(read_agent(*rows, i));
  return out;
}

Status PostgresStore::agent_seen(int64_t id, const std::vector<std::string>& labels, UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query("UPDATE agents SET last_seen_at = $1, labels = $2 WHERE id = $3", now,
                       labels_to_json(labels), id);
  if (!rows) return rows.error();
  return {};
}

Result<bool> PostgresStore::revoke_agent(int64_t id, UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  auto revoked = s->query("UPDATE agents SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
                          now, id);
  if (!revoked) return revoked.error();
  if (revoked->affected() == 0) return false;
  BOXCAR_RETURN_IF_ERROR(s->query(
      "UPDATE jobs SET lease_expires_at = $1 WHERE state = 'running' AND agent_id = $2", now, id));
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<bool> PostgresStore::forget_agent(int64_t id) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query("DELETE FROM agents WHERE id = $1 AND revoked_at IS NOT NULL", id);
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

}  // namespace boxcar::server
