// PostgresStore's sandboxes (migration 11): the sandbox API's records and the agents' data planes.
#include "server/store/migrations.h"
#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

namespace {

#define BOXCAR_SANDBOX_COLUMNS                                                                   \
  "id, owner, name, state, agent_id, spec, labels, created_at, last_active_at, expires_at,"     \
  " ttl_ms, sleep_after_ms, stop_after_ms, keep_alive, create_ms, ports, error, idempotency_key"

SandboxRecord read_sandbox(const PgRows& rows, int row) {
  SandboxRecord s;
  s.id = rows.text(row, 0);
  s.owner = rows.text(row, 1);
  s.name = rows.text(row, 2);
  s.state = rows.text(row, 3);
  s.agent_id = rows.i64(row, 4);
  s.spec = rows.text(row, 5);
  s.labels = env_from_json(rows.text(row, 6));
  s.created_at = rows.i64(row, 7);
  s.last_active_at = rows.i64(row, 8);
  s.expires_at = rows.opt_i64(row, 9);
  s.ttl_ms = rows.i64(row, 10);
  s.sleep_after_ms = rows.i64(row, 11);
  s.stop_after_ms = rows.i64(row, 12);
  s.keep_alive = rows.i64(row, 13) != 0;
  s.create_ms = rows.i64(row, 14);
  s.ports = rows.text(row, 15);
  s.error = rows.text(row, 16);
  s.idempotency_key = rows.text(row, 17);
  return s;
}

std::optional<SandboxRecord> first(const PgRows& rows) {
  if (rows.size() == 0) return std::nullopt;
  return read_sandbox(rows, 0);
}

SandboxAgentRecord read_agent(const PgRows& rows, int row) {
  SandboxAgentRecord a;
  a.agent_id = rows.i64(row, 0);
  a.endpoint = rows.text(row, 1);
  a.key = rows.text(row, 2);
  a.slots_free = rows.i64(row, 3);
  a.memory_free_bytes = rows.i64(row, 4);
  a.synced_at = rows.i64(row, 5);
  a.labels = labels_from_json(rows.text(row, 6));
  return a;
}

}  // namespace

// Under READ COMMITTED two transactions could both count K-1 and both insert: the advisory lock
// makes creates take turns (across servers sharing the database too), and the insert's own
// snapshot, taken after the lock, sees every create that went before. Syncs, updates and deletes
// do not take it: a delete can only make room.
Result<SandboxInsert> PostgresStore::insert_sandbox(const SandboxRecord& s, const SandboxLimits& limits) {
  auto session = this->session();
  if (!session) return session.error();
  PgSession::Transaction tx(*session);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  BOXCAR_RETURN_IF_ERROR(session->query("SELECT pg_advisory_xact_lock(hashtext('boxcar:sandbox-insert'))"));
  auto rows = session->query(
      "INSERT INTO sandboxes (id, owner, name, state, agent_id, spec, labels, created_at,"
      " last_active_at, expires_at, ttl_ms, sleep_after_ms, stop_after_ms, keep_alive,"
      " create_ms, ports, error, idempotency_key)"
      " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18"
      " WHERE (SELECT COUNT(*) FROM sandboxes) < $19"
      " AND (SELECT COUNT(*) FROM sandboxes WHERE owner = $2) < $20"
      " ON CONFLICT DO NOTHING",
      s.id, s.owner, s.name, s.state, s.agent_id, s.spec, env_to_json(s.labels), s.created_at,
      s.last_active_at, s.expires_at, s.ttl_ms, s.sleep_after_ms, s.stop_after_ms,
      int64_t{s.keep_alive}, s.create_ms, s.ports, s.error, s.idempotency_key, limits.server, limits.owner);
  if (!rows) return rows.error();
  if (rows->affected() == 1) {
    BOXCAR_RETURN_IF_ERROR(tx.commit());
    return SandboxInsert::inserted;
  }
  // Nothing inserted: say which limit held it back, else the unique indexes did. The lock is
  // still held, so the counts are the ones the insert saw.
  auto counts = session->query("SELECT (SELECT COUNT(*) FROM sandboxes),"
                               " (SELECT COUNT(*) FROM sandboxes WHERE owner = $1)",
                               s.owner);
  if (!counts) return counts.error();
  if (counts->i64(0, 0) >= limits.server) return SandboxInsert::server_full;
  if (counts->i64(0, 1) >= limits.owner) return SandboxInsert::owner_full;
  return SandboxInsert::exists;
}

Result<std::optional<SandboxRecord>> PostgresStore::sandbox(const std::string& id) {
  auto session = this->session();
  if (!session) return session.error();
  auto rows = session->query("SELECT " BOXCAR_SANDBOX_COLUMNS " FROM sandboxes WHERE id = $1", id);
  if (!rows) return rows.error();
  return first(*rows);
}

Result<std::optional<SandboxRecord>> PostgresStore::sandbox_named(const std::string& owner,
                                                                  const std::string& name) {
  auto session = this->session();
  if (!session) return session.error();
  auto rows = session->query("SELECT " BOXCAR_SANDBOX_COLUMNS
                             " FROM sandboxes WHERE owner = $1 AND name = $2 AND name <> ''",
                             owner, name);
  if (!rows) return rows.error();
  return first(*rows);
}

Result<std::optional<SandboxRecord>> PostgresStore::sandbox_by_key(const std::string& owner,
                                                                   const std::string& key) {
  auto session = this->session();
  if (!session) return session.error();
  auto rows = session->query(
      "SELECT " BOXCAR_SANDBOX_COLUMNS
      " FROM sandboxes WHERE owner = $1 AND idempotency_key = $2 AND idempotency_key <> ''",
      owner, key);
  if (!rows) return rows.error();
  return first(*rows);
}

Result<std::vector<SandboxRecord>> PostgresStore::sandboxes(const SandboxQuery& query) {
  auto session = this->session();
  if (!session) return session.error();
  // The label filter reads the JSON column here, so the SQL has no LIMIT when it is set.
  std::optional<int64_t> limit;
  if (query.label_key.empty()) limit = query.limit;
  auto rows = session->query(
      "SELECT " BOXCAR_SANDBOX_COLUMNS
      " FROM sandboxes WHERE ($1 = '' OR owner = $1) AND ($2 = '' OR state = $2)"
      " AND ($3 = '' OR name = $3) AND id > $4 ORDER BY id LIMIT $5::bigint",
      query.owner, query.state, query.name, query.after_id, limit);
  if (!rows) return rows.error();
  std::vector<SandboxRecord> out;
  for (int i = 0; i < rows->size() && out.size() < static_cast<size_t>(query.limit); ++i) {
    SandboxRecord s = read_sandbox(*rows, i);
    if (!query.label_key.empty()) {
      auto it = s.labels.find(query.label_key);
      if (it == s.labels.end() || it->second != query.label_value) continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<bool> PostgresStore::update_sandbox(const SandboxRecord& s) {
  auto session = this->session();
  if (!session) return session.error();
  auto rows = session->query(
      "UPDATE sandboxes SET state = $1, agent_id = $2, labels = $3, last_active_at = $4,"
      " expires_at = $5, ttl_ms = $6, sleep_after_ms = $7, stop_after_ms = $8, keep_alive = $9,"
      " create_ms = $10, ports = $11, error = $12 WHERE id = $13",
      s.state, s.agent_id, env_to_json(s.labels), s.last_active_at, s.expires_at, s.ttl_ms,
      s.sleep_after_ms, s.stop_after_ms, int64_t{s.keep_alive}, s.create_ms, s.ports, s.error, s.id);
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

Result<bool> PostgresStore::delete_sandbox(const std::string& id) {
  auto session = this->session();
  if (!session) return session.error();
  auto rows = session->query("DELETE FROM sandboxes WHERE id = $1", id);
  if (!rows) return rows.error();
  return rows->affected() == 1;
}

Result<int64_t> PostgresStore::count_sandboxes(const std::string& owner) {
  auto session = this->session();
  if (!session) return session.error();
  auto rows = session->query("SELECT COUNT(*) FROM sandboxes WHERE $1 = '' OR owner = $1", owner);
  if (!rows) return rows.error();
  return rows->i64(0, 0);
}

Result<std::vector<std::string>> PostgresStore::sync_sandboxes(
    const SandboxAgentRecord& agent, const std::vector<SandboxSyncItem>& items, UnixMillis now) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  BOXCAR_RETURN_IF_ERROR(s->query(
      "INSERT INTO sandbox_agents (agent_id, endpoint, data_key, slots_free, memory_free_bytes,"
      " synced_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agent_id) DO UPDATE SET"
      " endpoint = excluded.endpoint, data_key = excluded.data_key,"
      " slots_free = excluded.slots_free, memory_free_bytes = excluded.memory_free_bytes,"
      " synced_at = excluded.synced_at",
      agent.agent_id, agent.endpoint, agent.key, agent.slots_free, agent.memory_free_bytes, now));
  std::vector<std::string> deleted;
  for (const auto& item : items) {
    auto rows = s->query(
        "UPDATE sandboxes SET state = CASE WHEN state = 'creating' THEN state ELSE $1 END,"
        " last_active_at = GREATEST(last_active_at, $2), ports = $3, error = $4"
        " WHERE id = $5 AND agent_id = $6",
        item.state, item.last_active_at, item.ports, item.error, item.id, agent.agent_id);
    if (!rows) return rows.error();
    if (rows->affected() == 0) deleted.push_back(item.id);
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return deleted;
}

Result<std::optional<SandboxAgentRecord>> PostgresStore::sandbox_agent(int64_t agent_id) {
  auto session = this->session();
  if (!session) return session.error();
  auto rows = session->query(
      "SELECT s.agent_id, s.endpoint, s.data_key, s.slots_free, s.memory_free_bytes, s.synced_at,"
      " COALESCE(a.labels, '[]') FROM sandbox_agents s LEFT JOIN agents a ON a.id = s.agent_id"
      " WHERE s.agent_id = $1",
      agent_id);
  if (!rows) return rows.error();
  if (rows->size() == 0) return std::optional<SandboxAgentRecord>{};
  return std::optional<SandboxAgentRecord>{read_agent(*rows, 0)};
}

Result<std::vector<SandboxAgentRecord>> PostgresStore::sandbox_agents(UnixMillis since) {
  auto session = this->session();
  if (!session) return session.error();
  // A revoked agent hosts nothing new.
  auto rows = session->query(
      "SELECT s.agent_id, s.endpoint, s.data_key, s.slots_free, s.memory_free_bytes, s.synced_at,"
      " a.labels FROM sandbox_agents s JOIN agents a ON a.id = s.agent_id"
      " WHERE s.synced_at >= $1 AND a.revoked_at IS NULL ORDER BY s.agent_id",
      since);
  if (!rows) return rows.error();
  std::vector<SandboxAgentRecord> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(read_agent(*rows, i));
  return out;
}

Result<std::vector<SandboxRecord>> PostgresStore::expired_sandboxes(UnixMillis now, int limit) {
  auto session = this->session();
  if (!session) return session.error();
  auto rows = session->query("SELECT " BOXCAR_SANDBOX_COLUMNS
                             " FROM sandboxes WHERE expires_at IS NOT NULL AND expires_at <= $1"
                             " ORDER BY expires_at LIMIT $2",
                             now, int64_t{limit});
  if (!rows) return rows.error();
  std::vector<SandboxRecord> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(read_sandbox(*rows, i));
  return out;
}

}  // namespace boxcar::server
