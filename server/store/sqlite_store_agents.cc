// SqliteStore's agents: registrations, the hashes of their credentials, revocation.
#include "server/store/migrations.h"
#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

namespace {

constexpr const char* kAgentColumns =
    "id, name, labels, credential_hash, created_at, last_seen_at, revoked_at";

AgentRecord read_agent(const SqliteQuery& q) {
  AgentRecord a;
  a.id = q.i64(0);
  a.name = q.text(1);
  a.labels = labels_from_json(q.text(2));
  a.credential_hash = q.text(3);
  a.created_at = q.i64(4);
  a.last_seen_at = q.opt_i64(5);
  a.revoked_at = q.opt_i64(6);
  return a;
}

}  // namespace

Result<std::optional<AgentRecord>> SqliteStore::add_agent(const std::string& name,
                                                          const std::vector<std::string>& labels,
                                                          const std::string& credential_hash,
                                                          UnixMillis now) {
  std::lock_guard lock(mu_);
  static const std::string sql =
      std::string("INSERT INTO agents (name, labels, credential_hash, created_at, last_seen_at)"
                  " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING ") +
      kAgentColumns;
  SqliteQuery q(*this, sql.c_str());
  auto row = q.bind(name).bind(labels_to_json(labels)).bind(credential_hash).bind(now).bind(now).next();
  if (!row) return row.error();
  if (!*row) return std::optional<AgentRecord>();
  AgentRecord a = read_agent(q);
  BOXCAR_RETURN_IF_ERROR(q.run());  // step to the end, so the insert is done
  return std::optional<AgentRecord>(std::move(a));
}

Result<std::optional<AgentRecord>> SqliteStore::agent(int64_t id) {
  std::lock_guard lock(mu_);
  static const std::string sql = std::string("SELECT ") + kAgentColumns + " FROM agents WHERE id = ?";
  SqliteQuery q(*this, sql.c_str());
  auto row = q.bind(id).next();
  if (!row) return row.error();
  if (!*row) return std::optional<AgentRecord>();
  return std::optional<AgentRecord>(read_agent(q));
}

Result<std::optional<AgentRecord>> SqliteStore::agent_named(const std::string& name) {
  std::lock_guard lock(mu_);
  static const std::string sql = std::string("SELECT ") + kAgentColumns + " FROM agents WHERE name = ?";
  SqliteQuery q(*this, sql.c_str());
  auto row = q.bind(name).next();
  if (!row) return row.error();
  if (!*row) return std::optional<AgentRecord>();
  return std::optional<AgentRecord>(read_agent(q));
}

Result<std::vector<AgentRecord>> SqliteStore::agents() {
  std::lock_guard lock(mu_);
  static const std::string sql = std::string("SELECT ") + kAgentColumns + " FROM agents ORDER BY id";
  SqliteQuery q(*this, sql.c_str());
  std::vector<AgentRecord> out;
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_agent(q));
  }
  return out;
}

Status SqliteStore::agent_seen(int64_t id, const std::vector<std::string>& labels, UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this, "UPDATE agents SET last_seen_at = ?, labels = ? WHERE id = ?");
  return q.bind(now).bind(labels_to_json(labels)).bind(id).run();
}

Result<bool> SqliteStore::revoke_agent(int64_t id, UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  {
    SqliteQuery q(*this, "UPDATE agents SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?");
    BOXCAR_RETURN_IF_ERROR(q.bind(now).bind(id).run());
    if (q.changes() == 0) return false;
  }
  SqliteQuery leases(*this,
                     "UPDATE jobs SET lease_expires_at = ? WHERE state = 'running' AND agent_id = ?");
  BOXCAR_RETURN_IF_ERROR(leases.bind(now).bind(id).run());
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<bool> SqliteStore::forget_agent(int64_t id) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this, "DELETE FROM agents WHERE id = ? AND revoked_at IS NOT NULL");
  BOXCAR_RETURN_IF_ERROR(q.bind(id).run());
  return q.changes() == 1;
}

}  // namespace boxcar::server
