// The PostgreSQL store's connection, result and session helpers, shared by its source files
// (postgres_store.cc: jobs, leases, logs; and postgres_store_*.cc, one per other concern).
// Private to server/store/.
#pragma once

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/store/migrations.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

inline namespace pg_internal {

constexpr const char* kJobColumns =
    "id, state, repo, ref, commit_sha, file, event, env, labels, attempt, max_attempts, "
    "created_at, started_at, finished_at, agent, lease_expires_at, cancel_requested, reason, "
    "log_bytes, log_truncated, fork, base_repo, forge, forge_repo, forge_api, web_url, "
    "default_branch, status_context, rerun_of, rerun_failed, pipeline_name, cancel_superseded, "
    "superseded_by";

// Any number: the key of the advisory lock that lets one replica migrate at a time.
constexpr int64_t kMigrationLock = 0x626f78636172;  // "boxcar"

inline UnixMillis wall_clock_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// libpq's messages end in a newline and may continue on indented lines: one line here.
inline std::string trimmed(const char* message) {
  std::string text;
  for (const char* c = message ? message : ""; *c != '\0'; ++c) {
    if (*c == '\n') {
      while (c[1] == '\t' || c[1] == ' ') ++c;
      text += ' ';
    } else {
      text += *c;
    }
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// One bound parameter, in text format except bytes (binary, so any byte survives).
struct Param {
  std::optional<std::string> value;
  int format = 0;
};
struct Bytes {
  const std::string& data;
};
inline Param param(int64_t value) { return {std::to_string(value), 0}; }
inline Param param(int value) { return {std::to_string(value), 0}; }
inline Param param(const std::string& value) { return {value, 0}; }
inline Param param(std::optional<int64_t> value) {
  return value ? Param{std::to_string(*value), 0} : Param{};
}
inline Param param(Bytes bytes) { return {bytes.data, 1}; }

}  // namespace

// One libpq connection and the statements already prepared on it.
class PgConnection {
 public:
  explicit PgConnection(PGconn* connection) : conn(connection) {}
  ~PgConnection() { PQfinish(conn); }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  PGconn* conn;
  std::unordered_map<std::string, std::string> prepared;  // SQL -> statement name
};

inline namespace pg_internal {

class PgRows {
 public:
  explicit PgRows(PGresult* result) : result_(result, PQclear) {}
  PGresult* get() const { return result_.get(); }
  int size() const { return PQntuples(result_.get()); }
  int64_t affected() const { return std::strtoll(PQcmdTuples(result_.get()), nullptr, 10); }
  bool null(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  std::string text(int row, int column) const {
    return std::string(PQgetvalue(result_.get(), row, column),
                       PQgetlength(result_.get(), row, column));
  }
  int64_t i64(int row, int column) const {
    return std::strtoll(PQgetvalue(result_.get(), row, column), nullptr, 10);
  }
  std::optional<int64_t> opt_i64(int row, int column) const {
    if (null(row, column)) return std::nullopt;
    return i64(row, column);
  }
  std::string bytes(int row, int column) const {
    size_t size = 0;
    unsigned char* raw = PQunescapeBytea(
        reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row, column)), &size);
    if (raw == nullptr) return {};
    std::string data(reinterpret_cast<const char*>(raw), size);
    PQfreemem(raw);
    return data;
  }

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> result_;
};

inline JobRecord read_job(const PgRows& rows, int row) {
  JobRecord job;
  job.id = rows.i64(row, 0);
  job.state = rows.text(row, 1);
  job.repo = rows.text(row, 2);
  job.ref = rows.text(row, 3);
  job.commit = rows.text(row, 4);
  job.file = rows.text(row, 5);
  job.event = rows.text(row, 6);
  job.env = env_from_json(rows.text(row, 7));
  job.labels = labels_from_json(rows.text(row, 8));
  job.attempt = static_cast<int>(rows.i64(row, 9));
  job.max_attempts = static_cast<int>(rows.i64(row, 10));
  job.created_at = rows.i64(row, 11);
  job.started_at = rows.opt_i64(row, 12);
  job.finished_at = rows.opt_i64(row, 13);
  job.agent = rows.text(row, 14);
  job.lease_expires_at = rows.opt_i64(row, 15);
  job.cancel_requested = rows.i64(row, 16) != 0;
  job.reason = rows.text(row, 17);
  job.log_bytes = rows.i64(row, 18);
  job.log_truncated = rows.i64(row, 19) != 0;
  job.fork = rows.i64(row, 20) != 0;
  job.base_repo = rows.text(row, 21);
  job.forge.forge = rows.text(row, 22);
  job.forge.repo = rows.text(row, 23);
  job.forge.api = rows.text(row, 24);
  job.forge.web_url = rows.text(row, 25);
  job.default_branch = rows.text(row, 26);
  job.status_context = rows.text(row, 27);
  job.rerun_of = rows.opt_i64(row, 28);
  job.rerun_failed = rows.i64(row, 29) != 0;
  job.pipeline_name = rows.text(row, 30);
  if (auto v = rows.opt_i64(row, 31)) job.cancel_superseded = *v != 0;
  job.superseded_by = rows.opt_i64(row, 32);
  return job;
}

inline StepRecord read_step(const PgRows& rows, int row, int first) {
  StepRecord step;
  step.name = rows.text(row, first);
  step.state = rows.text(row, first + 1);
  if (auto code = rows.opt_i64(row, first + 2)) step.exit_code = static_cast<int>(*code);
  step.started_at = rows.opt_i64(row, first + 3);
  step.finished_at = rows.opt_i64(row, first + 4);
  step.reason = rows.text(row, first + 5);
  step.needs = labels_from_json(rows.text(row, first + 6));
  return step;
}

#define BOXCAR_RETURN_IF_ERROR(expr)           \
  do {                                         \
    auto status_ = (expr);                     \
    if (!status_.ok()) return status_.error(); \
  } while (0)

}  // namespace

// A connection borrowed from the pool for one store call; given back (rolled back first if a
// transaction was left open) when it goes out of scope.
class PgSession {
 public:
  PgSession(PostgresStore* store, std::unique_ptr<PgConnection> connection)
      : store_(store), connection_(std::move(connection)) {}
  PgSession(PgSession&& other) noexcept = default;
  ~PgSession() {
    if (connection_) store_->give_back(std::move(connection_));
  }

  template <typename... Args>
  Result<PgRows> query(const char* sql, const Args&... args) {
    return run(sql, {param(args)...});
  }

  Status exec(const char* sql) {
    PgRows rows(PQexec(connection_->conn, sql));
    return check(rows, sql);
  }

  // BEGIN now; ROLLBACK when the returned guard goes out of scope without commit().
  class Transaction {
   public:
    explicit Transaction(PgSession& session) : session_(session) {}
    ~Transaction() {
      if (open_) (void)session_.exec("ROLLBACK");
    }
    Status begin() {
      auto status = session_.exec("BEGIN");
      open_ = status.ok();
      return status;
    }
    Status commit() {
      open_ = false;
      return session_.exec("COMMIT");
    }

   private:
    PgSession& session_;
    bool open_ = false;
  };

 private:
  Result<PgRows> run(const char* sql, const std::vector<Param>& params) {
    PGconn* conn = connection_->conn;
    auto [it, inserted] = connection_->prepared.try_emplace(sql);
    if (inserted) {
      it->second = "boxcar_" + std::to_string(connection_->prepared.size());
      PgRows prepared(PQprepare(conn, it->second.c_str(), sql, static_cast<int>(params.size()),
                                nullptr));
      if (auto status = check(prepared, sql); !status) {
        connection_->prepared.erase(it);
        return status.error();
      }
    }
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const auto& p : params) {
      values.push_back(p.value ? p.value->data() : nullptr);
      lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
      formats.push_back(p.format);
    }
    PgRows rows(PQexecPrepared(conn, it->second.c_str(), static_cast<int>(params.size()),
                               values.data(), lengths.data(), formats.data(), 0));
    if (auto status = check(rows, sql); !status) return status.error();
    return rows;
  }

  Status check(const PgRows& rows, const char* sql) {
    ExecStatusType status = rows.get() ? PQresultStatus(rows.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return {};
    std::string message = rows.get() ? trimmed(PQresultErrorMessage(rows.get())) : "";
    if (message.empty()) message = trimmed(PQerrorMessage(connection_->conn));
    std::string statement(sql);
    if (statement.size() > 60) statement = statement.substr(0, 60) + "...";
    return Error{"postgres at " + store_->where_ + ": " + message + " (in \"" + statement + "\")"};
  }

  PostgresStore* store_;
  std::unique_ptr<PgConnection> connection_;
};

inline namespace pg_internal {
// Appends one of the server's notes (log_notes.h) to job `id`'s log, in the caller's
// transaction (postgres_store.cc).
Status append_note(PgSession& s, int64_t id, int64_t job_attempt, int64_t seq,
                   const std::string& text, UnixMillis now);
}  // namespace pg_internal

}  // namespace boxcar::server
