// The SQLite store's statement and transaction helpers, shared by its source files
// (sqlite_store.cc: jobs, leases, logs; sqlite_store_artifacts.cc). Private to server/.
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>

#include "base/result.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

// One use of a cached prepared statement: binds in order, steps, reads columns, and resets the
// statement when it goes out of scope. A failed prepare surfaces as the error of next()/run().
class SqliteQuery {
 public:
  SqliteQuery(SqliteStore& store, const char* sql)
      : db_(store.db_), sql_(sql), stmt_(store.statement(sql)) {
    if (stmt_ == nullptr) prepare_error_ = sqlite3_errmsg(db_);
  }
  ~SqliteQuery() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  SqliteQuery(const SqliteQuery&) = delete;
  SqliteQuery& operator=(const SqliteQuery&) = delete;

  SqliteQuery& bind(int64_t value) {
    if (stmt_) sqlite3_bind_int64(stmt_, ++index_, value);
    return *this;
  }
  SqliteQuery& bind(const std::string& value) {
    if (stmt_) sqlite3_bind_text(stmt_, ++index_, value.data(), static_cast<int>(value.size()),
                                 SQLITE_TRANSIENT);
    return *this;
  }
  SqliteQuery& bind(std::optional<int64_t> value) {
    if (!value) {
      if (stmt_) sqlite3_bind_null(stmt_, ++index_);
      return *this;
    }
    return bind(*value);
  }
  SqliteQuery& bind_blob(const std::string& value) {
    if (stmt_) sqlite3_bind_blob(stmt_, ++index_, value.data(), static_cast<int>(value.size()),
                                 SQLITE_TRANSIENT);
    return *this;
  }

  // True when a row is ready to read, false when the statement is done.
  Result<bool> next() {
    if (stmt_ == nullptr) return error(prepare_error_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return error(sqlite3_errmsg(db_));
  }
  Status run() {
    for (;;) {
      auto row = next();
      if (!row) return row.error();
      if (!*row) return {};
    }
  }
  int changes() const { return sqlite3_changes(db_); }

  int64_t i64(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::optional<int64_t> opt_i64(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
    return i64(column);
  }
  std::string text(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    return data ? std::string(static_cast<const char*>(data), size) : std::string();
  }

 private:
  Error error(const std::string& message) const {
    std::string sql(sql_);
    if (sql.size() > 60) sql = sql.substr(0, 60) + "...";
    return Error{"sqlite: " + message + " (in \"" + sql + "\")"};
  }

  sqlite3* db_;
  const char* sql_;
  sqlite3_stmt* stmt_;
  std::string prepare_error_;
  int index_ = 0;
};

inline Status sqlite_exec(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    Error error{"sqlite: " + std::string(message ? message : sqlite3_errmsg(db))};
    sqlite3_free(message);
    return error;
  }
  return {};
}

// BEGIN IMMEDIATE takes the write lock up front, so a read-then-write (claim) cannot interleave
// with another writer, even one in another process.
class SqliteTransaction {
 public:
  explicit SqliteTransaction(sqlite3* db) : db_(db) {}
  ~SqliteTransaction() {
    if (open_) (void)sqlite_exec(db_, "ROLLBACK");
  }
  Status begin() {
    auto status = sqlite_exec(db_, "BEGIN IMMEDIATE");
    open_ = status.ok();
    return status;
  }
  Status commit() {
    auto status = sqlite_exec(db_, "COMMIT");
    if (status.ok()) open_ = false;
    return status;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

}  // namespace boxcar::server

#ifndef BOXCAR_RETURN_IF_ERROR
#define BOXCAR_RETURN_IF_ERROR(expr)          \
  do {                                        \
    auto status_ = (expr);                    \
    if (!status_.ok()) return status_.error(); \
  } while (0)
#endif
