// PostgresServer: a throwaway PostgreSQL server for tests and benchmarks. It runs the
// distribution's binaries (found under /usr/lib/postgresql/*/bin, or $BOXCAR_PG_BIN) on a
// fresh data directory in /tmp, listening on 127.0.0.1 at a free port, with durability off
// for speed; the destructor stops it and deletes everything. Started as root, it runs the
// server as the `postgres` OS user, since initdb and postgres refuse to run as root. The data
// directory is a copy of one initdb made once per machine and user, kept in
// /tmp/boxcar-pg-template-<uid>-<hash> (see template_data in the .cc).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "base/result.h"

namespace boxcar::testing {

class PostgresServer {
 public:
  // copy of the template (or initdb) + start + wait until it accepts connections.
  static Result<std::unique_ptr<PostgresServer>> start();
  // Where the server binaries are, or an Error saying how to install them.
  static Result<std::string> bin_dir();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The superuser's URL for database `database` ("postgres" always exists).
  std::string url(const std::string& database = "postgres") const;
  // CREATE DATABASE `name` ([a-z0-9_]+); returns its URL.
  Result<std::string> create_database(const std::string& name);

  int port() const { return port_; }
  const std::string& directory() const { return dir_; }

 private:
  PostgresServer() = default;

  std::string dir_;    // holds data/ and the unix socket; removed by the destructor
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace boxcar::testing
