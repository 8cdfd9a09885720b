#include "testing/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace boxcar::testing {

namespace {

namespace fs = std::filesystem;

// The newest installed server, e.g. /usr/lib/postgresql/15/bin.
Result<std::string> find_bin_dir() {
  if (const char* dir = std::getenv("BOXCAR_PG_BIN"); dir != nullptr && *dir != '\0') return std::string(dir);
  glob_t found{};
  std::string best;
  int best_version = -1;
  if (glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &found) == 0) {
    for (size_t i = 0; i < found.gl_pathc; ++i) {
      fs::path bin = fs::path(found.gl_pathv[i]).parent_path();
      int version = std::atoi(bin.parent_path().filename().c_str());
      if (version > best_version && fs::exists(bin / "initdb")) {
        best_version = version;
        best = bin.string();
      }
    }
  }
  globfree(&found);
  if (best.empty()) {
    return Error{"no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
                 "(apt-get install postgresql, or set BOXCAR_PG_BIN)"};
  }
  return best;
}

struct Identity {
  bool drop = false;  // switch to uid/gid in the child: we are root
  uid_t uid = 0;
  gid_t gid = 0;
};

Result<Identity> server_identity() {
  Identity identity;
  if (geteuid() != 0) return identity;
  struct passwd* pw = getpwnam("postgres");
  if (pw == nullptr) {
    return Error{"running as root, and there is no `postgres` user to run the server as "
                 "(initdb refuses root)"};
  }
  identity.drop = true;
  identity.uid = pw->pw_uid;
  identity.gid = pw->pw_gid;
  return identity;
}

// fork + exec `argv` as `identity`, in `cwd`, output appended to `log`.
Result<pid_t> spawn(const std::vector<std::string>& argv, const Identity& identity,
                    const std::string& cwd, const std::string& log) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Error{"cannot open " + log + ": " + std::strerror(errno), errno};
  if (identity.drop && fchown(log_fd, identity.uid, identity.gid) != 0) {
    // Not fatal: the child writes through the inherited fd.
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    return Error{std::string("fork: ") + std::strerror(err), err};
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here: the parent may have threads.
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    if (identity.drop) {
      if (setgroups(0, nullptr) != 0 || setgid(identity.gid) != 0 || setuid(identity.uid) != 0) {
        _exit(126);
      }
    }
    // After setuid, which clears it: a test binary that dies takes its server along.
    prctl(PR_SET_PDEATHSIG, SIGINT);
    if (getppid() != parent) _exit(125);
    if (chdir(cwd.c_str()) != 0) _exit(124);
    execv(args[0], args.data());
    _exit(127);
  }
  ::close(log_fd);
  return pid;
}

std::string tail(const std::string& path, size_t max_bytes = 2000) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

Result<std::string> PostgresServer::bin_dir() { return find_bin_dir(); }

Result<std::unique_ptr<PostgresServer>> PostgresServer::start() {
  auto bin = find_bin_dir();
  if (!bin) return bin.error();
  auto identity = server_identity();
  if (!identity) return identity.error();

  std::unique_ptr<PostgresServer> server(new PostgresServer());
  char dir_template[] = "/tmp/boxcar-pg-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    return Error{std::string("mkdtemp: ") + std::strerror(errno), errno};
  }
  server->dir_ = dir_template;
  if (identity->drop && chown(dir_template, identity->uid, identity->gid) != 0) {
    return Error{"chown " + server->dir_ + ": " + std::strerror(errno), errno};
  }
  std::string data = server->dir_ + "/data";
  std::string log = server->dir_ + "/server.log";

  auto initdb = spawn({*bin + "/initdb", "-D", data, "-U", "postgres", "--auth=trust",
                       "--no-sync", "-E", "UTF8", "--locale=C"},
                      *identity, server->dir_, log);
  if (!initdb) return initdb.error();
  int status = 0;
  while (waitpid(*initdb, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error{"initdb failed:\n" + tail(log)};
  }

  // The port is free when chosen, but someone may take it first: try a few.
  for (int tries = 0; tries < 5; ++tries) {
    server->port_ = free_port();
    auto pid = spawn({*bin + "/postgres", "-D", data, "-k", server->dir_, "-h", "127.0.0.1", "-p",
                      std::to_string(server->port_), "-c", "fsync=off", "-c",
                      "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                      "shared_buffers=32MB", "-c", "max_connections=100"},
                     *identity, server->dir_, log);
    if (!pid) return pid.error();
    server->pid_ = *pid;
    std::string conninfo =
        "host=127.0.0.1 port=" + std::to_string(server->port_) + " user=postgres dbname=postgres";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (PQping(conninfo.c_str()) == PQPING_OK) return server;
      if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
        exited = true;
        server->pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!exited) return Error{"postgres did not start within 30s:\n" + tail(log)};
  }
  return Error{"postgres would not start:\n" + tail(log)};
}

PostgresServer::~PostgresServer() {
  if (pid_ > 0) {
    kill(pid_, SIGINT);  // fast shutdown: disconnects clients, no checkpoint wait for them
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PostgresServer::url(const std::string& database) const {
  return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

Result<std::string> PostgresServer::create_database(const std::string& name) {
  if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
                          std::string::npos) {
    return Error{"bad database name \"" + name + "\": use [a-z0-9_]+"};
  }
  PGconn* conn = PQconnectdb(url().c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    // An identifier cannot be a bound parameter; the name was checked above.
    PGresult* result = PQexec(conn, ("CREATE DATABASE " + name).c_str());
    if (PQresultStatus(result) != PGRES_COMMAND_OK) error = PQresultErrorMessage(result);
    PQclear(result);
  }
  PQfinish(conn);
  if (!error.empty()) return Error{"CREATE DATABASE " + name + ": " + error};
  return url(name);
}

}  // namespace boxcar::testing
