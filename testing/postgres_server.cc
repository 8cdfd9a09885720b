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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
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

// Waits for a child spawn() started; true when it exited 0.
bool exited_cleanly(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

const std::vector<std::string> kInitdbOptions = {"-U",         "postgres", "--auth=trust", "--no-sync",
                                                 "-E",         "UTF8",     "--locale=C"};

// initdb costs over a second of CPU (several under load), and ctest runs every test in a process
// of its own, so each PostgreSQL test paid for one. The first server on the machine keeps its
// freshly made data directory, never started, as a template that later servers copy (tens of
// milliseconds). The template is published by an atomic rename, so a reader never sees half of
// one; it is trusted only when owned by the server's user and writable by nobody else (it is in
// /tmp). Returns its data directory, or "" when there is none to use: the caller runs initdb.
std::string template_data(const std::string& bin, const Identity& identity, const std::string& log) {
  uid_t owner = identity.drop ? identity.uid : geteuid();
  std::string key = bin;
  for (const auto& option : kInitdbOptions) key += " " + option;
  char name[128];
  std::snprintf(name, sizeof name, "/tmp/boxcar-pg-template-%u-%zx", static_cast<unsigned>(owner),
                std::hash<std::string>{}(key));
  auto usable = [&] {
    struct stat st{};
    return lstat(name, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == owner &&
           (st.st_mode & 022) == 0 && fs::exists(fs::path(name) / "data" / "PG_VERSION");
  };
  if (usable()) return std::string(name) + "/data";
  if (fs::exists(name)) return "";  // someone else's, or broken: ignore it

  char staging[] = "/tmp/boxcar-pg-template-new-XXXXXX";
  if (mkdtemp(staging) == nullptr) return "";
  if (identity.drop && chown(staging, identity.uid, identity.gid) != 0) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    return "";
  }
  std::vector<std::string> argv = {bin + "/initdb", "-D", std::string(staging) + "/data"};
  argv.insert(argv.end(), kInitdbOptions.begin(), kInitdbOptions.end());
  auto initdb = spawn(argv, identity, staging, log);
  // A concurrent test may publish first: then its template is used and ours is dropped.
  if (!initdb || !exited_cleanly(*initdb) || rename(staging, name) != 0) {
    std::error_code ec;
    fs::remove_all(staging, ec);
  }
  return usable() ? std::string(name) + "/data" : "";
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

  // cp -a as the server's user: postgres wants its data directory to be its own, mode 0700.
  bool copied = false;
  if (std::string from = template_data(*bin, *identity, log); !from.empty()) {
    auto cp = spawn({"/bin/cp", "-a", from, data}, *identity, server->dir_, log);
    copied = cp && exited_cleanly(*cp);
  }
  if (!copied) {
    std::error_code ec;
    fs::remove_all(data, ec);
    std::vector<std::string> argv = {*bin + "/initdb", "-D", data};
    argv.insert(argv.end(), kInitdbOptions.begin(), kInitdbOptions.end());
    auto initdb = spawn(argv, *identity, server->dir_, log);
    if (!initdb) return initdb.error();
    if (!exited_cleanly(*initdb)) return Error{"initdb failed:\n" + tail(log)};
  }
  int status = 0;

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
