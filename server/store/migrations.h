// The store's versioned schema: an ordered list of migrations, each a list of SQL statements
// written once for both backends (with a few dialect placeholders), plus the JSON encoding of
// the job's env and labels columns.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "server/store/store.h"

namespace boxcar::server {

enum class Dialect { kSqlite, kPostgres };

struct Migration {
  int version = 0;           // 1, 2, ...: recorded in schema_migrations once applied
  std::string description;
  std::vector<std::string> statements;  // may use {{id}} and {{bytes}}, see render_sql
  // Run after `statements` on one backend only: what the dialects spell too differently for a
  // placeholder (triggers: SQLite's BEGIN ... END, PostgreSQL's plpgsql functions).
  std::vector<std::string> sqlite_only = {};
  std::vector<std::string> postgres_only = {};
};

// `migration`'s statements for `dialect`, rendered (render_sql), in the order they run.
std::vector<std::string> statements_for(const Migration& migration, Dialect dialect);

// Migration 10 (forge_status_triggers.cc): the commit statuses' outbox, filled by triggers on
// jobs.state, so every path that changes a job's state queues its status in the same transaction.
Migration forge_status_migration();

// Every migration, in version order. Append new ones; never edit an applied one.
const std::vector<Migration>& migrations();
int latest_schema_version();

// The bookkeeping table itself, created before any migration runs.
inline constexpr const char* kCreateSchemaMigrations =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " description TEXT NOT NULL,"
    " applied_at BIGINT NOT NULL)";

// Replaces the dialect placeholders: {{id}} (an auto-increment primary key) and {{bytes}} (a
// binary column: BLOB or BYTEA).
std::string render_sql(const std::string& statement, Dialect dialect);

// env and labels are stored as JSON text: {"K":"V"} and ["a","b"].
std::string env_to_json(const std::map<std::string, std::string>& env);
std::map<std::string, std::string> env_from_json(const std::string& text);
std::string labels_to_json(const std::vector<std::string>& labels);
std::vector<std::string> labels_from_json(const std::string& text);

// The holder's lease token hash as jobs.lease_hash is compared with it. A job without a lease
// has lease_hash '', which no holder may match, so an empty hash becomes one that matches
// nothing. (Comparing hashes in SQL is not constant time: the timing could reveal at most a
// prefix of the hash of a 256-bit random token, which does not help to guess the token.)
inline std::string lease_hash(const LeaseHolder& holder) {
  return holder.lease_hash.empty() ? std::string("-") : holder.lease_hash;
}

}  // namespace boxcar::server
