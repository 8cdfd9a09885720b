// SqliteStore's sandboxes (migration 11): the sandbox API's records and the agents' data planes.
#include <set>
#include <tuple>

#include "server/store/migrations.h"
#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

namespace {

constexpr const char* kColumns =
    "id, owner, name, state, agent_id, spec, labels, created_at, last_active_at, expires_at,"
    " ttl_ms, sleep_after_ms, stop_after_ms, keep_alive, create_ms, ports, error, idempotency_key";

SandboxRecord read_sandbox(const SqliteQuery& q) {
  SandboxRecord s;
  s.id = q.text(0);
  s.owner = q.text(1);
  s.name = q.text(2);
  s.state = q.text(3);
  s.agent_id = q.i64(4);
  s.spec = q.text(5);
  s.labels = env_from_json(q.text(6));
  s.created_at = q.i64(7);
  s.last_active_at = q.i64(8);
  s.expires_at = q.opt_i64(9);
  s.ttl_ms = q.i64(10);
  s.sleep_after_ms = q.i64(11);
  s.stop_after_ms = q.i64(12);
  s.keep_alive = q.i64(13) != 0;
  s.create_ms = q.i64(14);
  s.ports = q.text(15);
  s.error = q.text(16);
  s.idempotency_key = q.text(17);
  return s;
}

Result<std::vector<SandboxRecord>> read_all(SqliteQuery& q, const SandboxQuery* filter = nullptr) {
  std::vector<SandboxRecord> out;
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    SandboxRecord s = read_sandbox(q);
    if (filter && !filter->label_key.empty()) {
      auto it = s.labels.find(filter->label_key);
      if (it == s.labels.end() || it->second != filter->label_value) continue;
    }
    out.push_back(std::move(s));
    if (filter && out.size() >= static_cast<size_t>(filter->limit)) break;
  }
  return out;
}

}  // namespace

// BEGIN IMMEDIATE takes the write lock before the counts, so no other create (of this process,
// whose threads share mu_, or of another one on the same file) lands between them and the insert.
Result<SandboxInsert> SqliteStore::insert_sandbox(const SandboxRecord& s, const SandboxLimits& limits) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  for (auto [owner, limit, full] : {std::tuple{std::string(), limits.server, SandboxInsert::server_full},
                                    std::tuple{s.owner, limits.owner, SandboxInsert::owner_full}}) {
    if (limit == INT64_MAX) continue;
    SqliteQuery q(*this, "SELECT COUNT(*) FROM sandboxes WHERE ? = '' OR owner = ?");
    auto row = q.bind(owner).bind(owner).next();
    if (!row) return row.error();
    if (q.i64(0) >= limit) return full;
  }
  SqliteQuery q(*this,
                "INSERT INTO sandboxes (id, owner, name, state, agent_id, spec, labels, created_at,"
                " last_active_at, expires_at, ttl_ms, sleep_after_ms, stop_after_ms, keep_alive,"
                " create_ms, ports, error, idempotency_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING");
  q.bind(s.id).bind(s.owner).bind(s.name).bind(s.state).bind(s.agent_id).bind(s.spec);
  q.bind(env_to_json(s.labels)).bind(s.created_at).bind(s.last_active_at).bind(s.expires_at);
  q.bind(s.ttl_ms).bind(s.sleep_after_ms).bind(s.stop_after_ms).bind(int64_t{s.keep_alive});
  q.bind(s.create_ms).bind(s.ports).bind(s.error).bind(s.idempotency_key);
  BOXCAR_RETURN_IF_ERROR(q.run());
  if (q.changes() != 1) return SandboxInsert::exists;
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return SandboxInsert::inserted;
}

Result<std::optional<SandboxRecord>> SqliteStore::sandbox(const std::string& id) {
  std::lock_guard lock(mu_);
  static const std::string sql = std::string("SELECT ") + kColumns + " FROM sandboxes WHERE id = ?";
  SqliteQuery q(*this, sql.c_str());
  auto row = q.bind(id).next();
  if (!row) return row.error();
  if (!*row) return std::optional<SandboxRecord>{};
  return std::optional<SandboxRecord>{read_sandbox(q)};
}

Result<std::optional<SandboxRecord>> SqliteStore::sandbox_named(const std::string& owner,
                                                                const std::string& name) {
  std::lock_guard lock(mu_);
  static const std::string sql =
      std::string("SELECT ") + kColumns + " FROM sandboxes WHERE owner = ? AND name = ? AND name <> ''";
  SqliteQuery q(*this, sql.c_str());
  auto row = q.bind(owner).bind(name).next();
  if (!row) return row.error();
  if (!*row) return std::optional<SandboxRecord>{};
  return std::optional<SandboxRecord>{read_sandbox(q)};
}

Result<std::optional<SandboxRecord>> SqliteStore::sandbox_by_key(const std::string& owner,
                                                                 const std::string& key) {
  std::lock_guard lock(mu_);
  static const std::string sql = std::string("SELECT ") + kColumns +
                                 " FROM sandboxes WHERE owner = ? AND idempotency_key = ?"
                                 " AND idempotency_key <> ''";
  SqliteQuery q(*this, sql.c_str());
  auto row = q.bind(owner).bind(key).next();
  if (!row) return row.error();
  if (!*row) return std::optional<SandboxRecord>{};
  return std::optional<SandboxRecord>{read_sandbox(q)};
}

Result<std::vector<SandboxRecord>> SqliteStore::sandboxes(const SandboxQuery& query) {
  std::lock_guard lock(mu_);
  // The label filter reads the JSON column here, so the SQL has no LIMIT when it is set.
  static const std::string sql =
      std::string("SELECT ") + kColumns +
      " FROM sandboxes WHERE (? = '' OR owner = ?) AND (? = '' OR state = ?)"
      " AND (? = '' OR name = ?) AND id > ? ORDER BY id LIMIT ?";
  SqliteQuery q(*this, sql.c_str());
  q.bind(query.owner).bind(query.owner).bind(query.state).bind(query.state);
  q.bind(query.name).bind(query.name).bind(query.after_id);
  q.bind(int64_t{query.label_key.empty() ? query.limit : -1});
  return read_all(q, &query);
}

Result<bool> SqliteStore::update_sandbox(const SandboxRecord& s) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "UPDATE sandboxes SET state = ?, agent_id = ?, labels = ?, last_active_at = ?,"
                " expires_at = ?, ttl_ms = ?, sleep_after_ms = ?, stop_after_ms = ?,"
                " keep_alive = ?, create_ms = ?, ports = ?, error = ? WHERE id = ?");
  q.bind(s.state).bind(s.agent_id).bind(env_to_json(s.labels)).bind(s.last_active_at);
  q.bind(s.expires_at).bind(s.ttl_ms).bind(s.sleep_after_ms).bind(s.stop_after_ms);
  q.bind(int64_t{s.keep_alive}).bind(s.create_ms).bind(s.ports).bind(s.error).bind(s.id);
  BOXCAR_RETURN_IF_ERROR(q.run());
  return q.changes() == 1;
}

Result<bool> SqliteStore::delete_sandbox(const std::string& id) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this, "DELETE FROM sandboxes WHERE id = ?");
  BOXCAR_RETURN_IF_ERROR(q.bind(id).run());
  return q.changes() == 1;
}

Result<int64_t> SqliteStore::count_sandboxes(const std::string& owner) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this, "SELECT COUNT(*) FROM sandboxes WHERE ? = '' OR owner = ?");
  auto row = q.bind(owner).bind(owner).next();
  if (!row) return row.error();
  return q.i64(0);
}

Result<std::vector<std::string>> SqliteStore::sync_sandboxes(const SandboxAgentRecord& agent,
                                                             const std::vector<SandboxSyncItem>& items,
                                                             UnixMillis now) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  {
    SqliteQuery q(*this,
                  "INSERT INTO sandbox_agents (agent_id, endpoint, data_key, slots_free,"
                  " memory_free_bytes, synced_at) VALUES (?, ?, ?, ?, ?, ?)"
                  " ON CONFLICT (agent_id) DO UPDATE SET endpoint = excluded.endpoint,"
                  " data_key = excluded.data_key, slots_free = excluded.slots_free,"
                  " memory_free_bytes = excluded.memory_free_bytes, synced_at = excluded.synced_at");
    q.bind(agent.agent_id).bind(agent.endpoint).bind(agent.key).bind(agent.slots_free);
    BOXCAR_RETURN_IF_ERROR(q.bind(agent.memory_free_bytes).bind(now).run());
  }
  std::vector<std::string> deleted;
  for (const auto& item : items) {
    SqliteQuery q(*this,
                  "UPDATE sandboxes SET state = CASE WHEN state = 'creating' THEN state ELSE ? END,"
                  " last_active_at = MAX(last_active_at, ?), ports = ?, error = ?"
                  " WHERE id = ? AND agent_id = ?");
    q.bind(item.state).bind(item.last_active_at).bind(item.ports).bind(item.error);
    BOXCAR_RETURN_IF_ERROR(q.bind(item.id).bind(agent.agent_id).run());
    if (q.changes() == 0) {
      // Not this agent's (or not there at all): unless it is being created on this agent right
      // now, the agent holds a sandbox nobody owns.
      deleted.push_back(item.id);
    }
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return deleted;
}

namespace {

SandboxAgentRecord read_agent(const SqliteQuery& q) {
  SandboxAgentRecord a;
  a.agent_id = q.i64(0);
  a.endpoint = q.text(1);
  a.key = q.text(2);
  a.slots_free = q.i64(3);
  a.memory_free_bytes = q.i64(4);
  a.synced_at = q.i64(5);
  a.labels = labels_from_json(q.text(6));
  return a;
}

}  // namespace

Result<std::optional<SandboxAgentRecord>> SqliteStore::sandbox_agent(int64_t agent_id) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "SELECT s.agent_id, s.endpoint, s.data_key, s.slots_free, s.memory_free_bytes,"
                " s.synced_at, COALESCE(a.labels, '[]') FROM sandbox_agents s"
                " LEFT JOIN agents a ON a.id = s.agent_id WHERE s.agent_id = ?");
  auto row = q.bind(agent_id).next();
  if (!row) return row.error();
  if (!*row) return std::optional<SandboxAgentRecord>{};
  return std::optional<SandboxAgentRecord>{read_agent(q)};
}

Result<std::vector<SandboxAgentRecord>> SqliteStore::sandbox_agents(UnixMillis since) {
  std::lock_guard lock(mu_);
  // A revoked agent hosts nothing new.
  SqliteQuery q(*this,
                "SELECT s.agent_id, s.endpoint, s.data_key, s.slots_free, s.memory_free_bytes,"
                " s.synced_at, a.labels FROM sandbox_agents s JOIN agents a ON a.id = s.agent_id"
                " WHERE s.synced_at >= ? AND a.revoked_at IS NULL ORDER BY s.agent_id");
  q.bind(since);
  std::vector<SandboxAgentRecord> out;
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_agent(q));
  }
  return out;
}

Result<std::vector<SandboxRecord>> SqliteStore::expired_sandboxes(UnixMillis now, int limit) {
  std::lock_guard lock(mu_);
  static const std::string sql = std::string("SELECT ") + kColumns +
                                 " FROM sandboxes WHERE expires_at IS NOT NULL AND expires_at <= ?"
                                 " ORDER BY expires_at LIMIT ?";
  SqliteQuery q(*this, sql.c_str());
  q.bind(now).bind(int64_t{limit});
  return read_all(q);
}

}  // namespace boxcar::server
