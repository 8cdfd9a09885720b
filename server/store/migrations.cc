#include "server/store/migrations.h"

#include <boost/json.hpp>

namespace boxcar::server {

namespace json = boost::json;

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "jobs, steps, log chunks, webhook deliveries",
       {
           "CREATE TABLE jobs ("
           " id {{id}},"
           " state TEXT NOT NULL,"
           " repo TEXT NOT NULL,"
           " ref TEXT NOT NULL DEFAULT '',"
           " commit_sha TEXT NOT NULL DEFAULT '',"
           " file TEXT NOT NULL DEFAULT '',"
           " event TEXT NOT NULL DEFAULT 'manual',"
           " env TEXT NOT NULL DEFAULT '{}',"
           " labels TEXT NOT NULL DEFAULT '[]',"
           " attempt INTEGER NOT NULL DEFAULT 1,"
           " max_attempts INTEGER NOT NULL DEFAULT 3,"
           " created_at BIGINT NOT NULL,"
           " started_at BIGINT,"
           " finished_at BIGINT,"
           " agent TEXT NOT NULL DEFAULT '',"
           " lease_expires_at BIGINT,"
           " cancel_requested INTEGER NOT NULL DEFAULT 0,"
           " reason TEXT NOT NULL DEFAULT '',"
           // Total bytes of log stored so far: the next chunk's offset.
           " log_bytes BIGINT NOT NULL DEFAULT 0)",
           "CREATE INDEX jobs_queue ON jobs (id) WHERE state = 'queued'",
           "CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running'",
           "CREATE INDEX jobs_state ON jobs (state, id)",
           "CREATE TABLE steps ("
           " job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
           " name TEXT NOT NULL,"
           " position INTEGER NOT NULL,"
           " state TEXT NOT NULL,"
           " exit_code INTEGER,"
           " started_at BIGINT,"
           " finished_at BIGINT,"
           " reason TEXT NOT NULL DEFAULT '',"
           " PRIMARY KEY (job_id, name))",
           "CREATE TABLE log_chunks ("
           " job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
           " job_attempt INTEGER NOT NULL,"
           " step TEXT NOT NULL,"
           " attempt INTEGER NOT NULL,"
           " seq BIGINT NOT NULL,"
           " byte_offset BIGINT NOT NULL,"
           " data {{bytes}} NOT NULL,"
           " at BIGINT NOT NULL)",
           "CREATE UNIQUE INDEX log_chunks_seq ON log_chunks (job_id, job_attempt, step, attempt, seq)",
           "CREATE INDEX log_chunks_offset ON log_chunks (job_id, byte_offset)",
           "CREATE TABLE deliveries ("
           " provider TEXT NOT NULL,"
           " delivery_id TEXT NOT NULL,"
           " result TEXT NOT NULL DEFAULT '',"
           " received_at BIGINT NOT NULL,"
           " PRIMARY KEY (provider, delivery_id))",
       }},
      {2,
       "artifacts",
       {
           "CREATE TABLE artifacts ("
           " job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
           " path TEXT NOT NULL,"
           " sha256 TEXT NOT NULL,"
           " size BIGINT NOT NULL,"
           " step TEXT NOT NULL DEFAULT '',"
           " created_at BIGINT NOT NULL,"
           " PRIMARY KEY (job_id, path))",
           "CREATE INDEX artifacts_sha256 ON artifacts (sha256)",
           "CREATE INDEX artifacts_created ON artifacts (created_at)",
       }},
      {3,
       "previews",
       {
           "CREATE TABLE previews ("
           " job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
           " step TEXT NOT NULL,"
           " name TEXT NOT NULL,"
           " port INTEGER NOT NULL,"
           " url TEXT NOT NULL,"
           " path_url TEXT NOT NULL,"
           // The agent serving it: after complete() the job row no longer names one.
           " agent TEXT NOT NULL,"
           " opened_at BIGINT NOT NULL,"
           " expires_at BIGINT,"
           " seen_at BIGINT NOT NULL,"
           " closed_at BIGINT,"
           " PRIMARY KEY (job_id, step, name))",
       }},
      {4,
       "agents and lease tokens",
       {
           // Only a hash of each agent's credential is kept; a revoked agent keeps its row
           // (and so its name) until it is forgotten, so it cannot come back by registering.
           "CREATE TABLE agents ("
           " id {{id}},"
           " name TEXT NOT NULL UNIQUE,"
           " labels TEXT NOT NULL DEFAULT '[]',"
           " credential_hash TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " last_seen_at BIGINT,"
           " revoked_at BIGINT)",
           // The lease's holder by id, and the sha256 of the claim's lease token; both stay
           // after complete() (for the previews the agent still serves) until a new claim.
           "ALTER TABLE jobs ADD COLUMN agent_id BIGINT",
           "ALTER TABLE jobs ADD COLUMN lease_hash TEXT NOT NULL DEFAULT ''",
           "CREATE INDEX jobs_agent ON jobs (agent_id) WHERE state = 'running'",
       }},
      {5,
       "job retention and the log size cap",
       {
           // Set once the job's log reached --max-job-log (the rest was dropped).
           "ALTER TABLE jobs ADD COLUMN log_truncated INTEGER NOT NULL DEFAULT 0",
           // Retention deletes the oldest finished jobs and deliveries in batches.
           "CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL",
           "CREATE INDEX deliveries_received ON deliveries (received_at)",
       }},
      {6,
       "secrets kept by the server, and jobs from forks",
       {
           // scope '' is server-wide, else a repository as jobs.repo holds it. The value is
           // AES-256-GCM ciphertext (with its tag) under the server's secrets key; scope and
           // name are its additional data, so a row moved elsewhere does not decrypt.
           "CREATE TABLE secrets ("
           " scope TEXT NOT NULL,"
           " name TEXT NOT NULL,"
           " nonce {{bytes}} NOT NULL,"
           " ciphertext {{bytes}} NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " PRIMARY KEY (scope, name))",
           // A pull request whose head is another repository: its job gets no secrets.
           "ALTER TABLE jobs ADD COLUMN fork INTEGER NOT NULL DEFAULT 0",
       }},
      {7,
       "artifact links",
       {
           // Non-empty: the artifact is a symlink to this target, inside the job's artifacts.
           "ALTER TABLE artifacts ADD COLUMN link_target TEXT NOT NULL DEFAULT ''",
       }},
      {8,
       "the base repository of a fork's pull request",
       {
           // A fork's job restores the caches its base repository saved (and saves none).
           "ALTER TABLE jobs ADD COLUMN base_repo TEXT NOT NULL DEFAULT ''",
       }},
      {9,
       "forge links, re-runs and superseded jobs",
       {
           // Where the job's commit statuses go (from the webhook; '' for API jobs).
           "ALTER TABLE jobs ADD COLUMN forge TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE jobs ADD COLUMN forge_repo TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE jobs ADD COLUMN forge_api TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE jobs ADD COLUMN web_url TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE jobs ADD COLUMN default_branch TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE jobs ADD COLUMN status_context TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE jobs ADD COLUMN rerun_of BIGINT",
           "ALTER TABLE jobs ADD COLUMN rerun_failed INTEGER NOT NULL DEFAULT 0",
           // Reported by the agent once it parsed the pipeline; NULL until then.
           "ALTER TABLE jobs ADD COLUMN pipeline_name TEXT NOT NULL DEFAULT ''",
           "ALTER TABLE jobs ADD COLUMN cancel_superseded INTEGER",
           "ALTER TABLE jobs ADD COLUMN superseded_by BIGINT",
           // A push looks up the older jobs of its repository and ref; the UI filters by them.
           "CREATE INDEX jobs_repo_ref ON jobs (repo, ref, id)",
           // A step's needs, as JSON ["a","b"] (the UI's graph).
           "ALTER TABLE steps ADD COLUMN needs TEXT NOT NULL DEFAULT '[]'",
       }},
      forge_status_migration(),
      {11,
       "sandboxes of the sandbox API and the agents' data planes",
       {
           // spec: the create request (protocol::SandboxCreate as JSON); ports: as the agent
           // last reported them. Named sandboxes and idempotency keys are unique per owner: the
           // row goes in as 'creating' before the agent is called, so concurrent creates of one
           // name cannot both reach an agent.
           "CREATE TABLE sandboxes ("
           " id TEXT PRIMARY KEY,"
           " owner TEXT NOT NULL,"
           " name TEXT NOT NULL DEFAULT '',"
           " state TEXT NOT NULL,"
           " agent_id BIGINT NOT NULL,"
           " spec TEXT NOT NULL,"
           " labels TEXT NOT NULL DEFAULT '{}',"
           " created_at BIGINT NOT NULL,"
           " last_active_at BIGINT NOT NULL,"
           " expires_at BIGINT,"
           " ttl_ms BIGINT NOT NULL DEFAULT 0,"
           " sleep_after_ms BIGINT NOT NULL DEFAULT 0,"
           " stop_after_ms BIGINT NOT NULL DEFAULT 0,"
           " keep_alive INTEGER NOT NULL DEFAULT 0,"
           " create_ms BIGINT NOT NULL DEFAULT 0,"
           " ports TEXT NOT NULL DEFAULT '[]',"
           " error TEXT NOT NULL DEFAULT '',"
           " idempotency_key TEXT NOT NULL DEFAULT '')",
           "CREATE UNIQUE INDEX sandboxes_owner_name ON sandboxes (owner, name) WHERE name <> ''",
           "CREATE UNIQUE INDEX sandboxes_owner_key ON sandboxes (owner, idempotency_key)"
           " WHERE idempotency_key <> ''",
           "CREATE INDEX sandboxes_owner ON sandboxes (owner, id)",
           "CREATE INDEX sandboxes_agent ON sandboxes (agent_id)",
           "CREATE INDEX sandboxes_expiry ON sandboxes (expires_at) WHERE expires_at IS NOT NULL",
           // key: the data plane's bearer secret, which the server sends with every request
           // to the agent (it is the agent's own random secret, not its credential).
           "CREATE TABLE sandbox_agents ("
           " agent_id BIGINT PRIMARY KEY,"
           " endpoint TEXT NOT NULL,"
           " data_key TEXT NOT NULL,"
           " slots_free BIGINT NOT NULL,"
           " memory_free_bytes BIGINT NOT NULL,"
           " synced_at BIGINT NOT NULL)",
       }},
  };
  return kMigrations;
}

int latest_schema_version() { return migrations().back().version; }

namespace {

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
}

}  // namespace

std::string render_sql(const std::string& statement, Dialect dialect) {
  std::string sql = statement;
  bool sqlite = dialect == Dialect::kSqlite;
  // AUTOINCREMENT: SQLite would otherwise reuse the id of a deleted newest job.
  replace_all(sql, "{{id}}", sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY");
  replace_all(sql, "{{bytes}}", sqlite ? "BLOB" : "BYTEA");
  return sql;
}

std::vector<std::string> statements_for(const Migration& migration, Dialect dialect) {
  std::vector<std::string> out;
  for (const auto& s : migration.statements) out.push_back(render_sql(s, dialect));
  for (const auto& s : dialect == Dialect::kSqlite ? migration.sqlite_only : migration.postgres_only) {
    out.push_back(render_sql(s, dialect));
  }
  return out;
}

std::string env_to_json(const std::map<std::string, std::string>& env) {
  json::object object;
  for (const auto& [key, value] : env) object[key] = value;
  return json::serialize(object);
}

std::map<std::string, std::string> env_from_json(const std::string& text) {
  std::map<std::string, std::string> env;
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) return env;
  for (const auto& [key, item] : value.as_object()) {
    if (item.is_string()) env[std::string(key)] = std::string(item.as_string());
  }
  return env;
}

std::string labels_to_json(const std::vector<std::string>& labels) {
  json::array array;
  for (const auto& label : labels) array.emplace_back(label);
  return json::serialize(array);
}

std::vector<std::string> labels_from_json(const std::string& text) {
  std::vector<std::string> labels;
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_array()) return labels;
  for (const auto& item : value.as_array()) {
    if (item.is_string()) labels.emplace_back(item.as_string());
  }
  return labels;
}

}  // namespace boxcar::server
