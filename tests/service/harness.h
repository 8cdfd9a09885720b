// Helpers for the CI service's end-to-end suite: real `boxcar serve` and `boxcar agent`
// processes, a small HTTP client, git repositories made on the fly, webhook signatures.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "base/hmac.h"  // hmac_sha256_hex: the webhook signatures tests send

namespace boxcar::service_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A fresh directory under /tmp, removed (recursively) by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, const std::string& content);
std::string read_file(const fs::path& path);  // "" when missing

// A child process: the boxcar binary (or any program) with stdout/stderr sent to files.
// The destructor SIGKILLs it if it still runs. Children also die with the test process.
class Process {
 public:
  // argv[0] is the program path; env is the whole environment.
  Process(std::vector<std::string> argv, std::vector<std::string> env, fs::path log_dir,
          std::string label, fs::path cwd = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig);
  // Waits for exit; returns the exit code (128 + signal when killed), or nullopt at the deadline.
  std::optional<int> wait(std::chrono::milliseconds deadline);
  bool running();  // reaps it when it has exited
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }
  // A short description with the tail of stdout/stderr, for failure messages.
  std::string describe() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string label_;
  fs::path out_path_, err_path_;
};

// BOXCAR_BINARY, or $BOXCAR_TEST_BINARY when set (to test another build of boxcar).
std::string boxcar_binary();

// The environment boxcar children get: PATH, LANG, HOME=home, plus extra.
std::vector<std::string> child_env(const fs::path& home, const std::vector<std::string>& extra = {});

// Starts BOXCAR_BINARY with args.
std::unique_ptr<Process> start_boxcar(const std::vector<std::string>& args, const fs::path& log_dir,
                                      const std::string& label,
                                      const std::vector<std::string>& extra_env = {});

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs a command to completion (deadline 120 s, then SIGKILL and exit_code -1).
CommandResult run_command(const std::vector<std::string>& argv, const fs::path& cwd = {},
                          const std::vector<std::string>& env = {});
CommandResult run_boxcar(const std::vector<std::string>& args, const fs::path& home,
                         const std::vector<std::string>& extra_env = {});

// A tiny synchronous HTTP/1.1 client for 127.0.0.1.
struct HttpResult {
  int status = 0;  // 0: no answer (connection refused, timeout); see error
  std::string body;
  std::string error;
  std::map<std::string, std::string> headers;  // lower-case names
};
HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::map<std::string, std::string>& headers = {},
                        const std::string& body = "",
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

int free_port();

// git init + .boxcar.toml (when pipeline is non-empty) + extra files + commit. Returns the sha.
std::string make_git_repo(const fs::path& dir, const std::string& pipeline,
                          const std::map<std::string, std::string>& files = {},
                          const std::string& branch = "main");

// Polls `pred` every 50 ms until it is true (returns true) or `deadline` passes: then records a
// test failure naming `what` and returns false. Use as ASSERT_TRUE(wait_until(...)).
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds deadline,
                const std::string& what);

// --- the service -------------------------------------------------------------------------

bool is_final_state(const std::string& state);

// A `boxcar serve` process plus API shortcuts.
class Server {
 public:
  // Starts `boxcar serve --listen 127.0.0.1:port --data data_dir <extra>` and waits for /healthz.
  // port 0 picks a free one. On failure, records a test failure and ok() is false. The API
  // token is --api-token's when `extra` gives one, else the one serve wrote to its data
  // directory (none with --api-tokens). A `launcher` runs serve through another program
  // (e.g. {"/usr/bin/prlimit", "--nofile=1024:1024"}); it must exec serve in its own process.
  Server(const fs::path& work, const std::vector<std::string>& extra, int port = 0,
         const std::string& label = "serve", const std::vector<std::string>& launcher = {});
  bool ok() const { return ok_; }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *proc_; }
  const fs::path& data_dir() const { return data_; }
  const std::string& token() const { return token_; }
  // {"Authorization": "Bearer <token>"} plus `extra`.
  std::map<std::string, std::string> auth(std::map<std::string, std::string> extra = {}) const;
  // http_request with the token (and a JSON body's Content-Type when there is a body).
  HttpResult api(const std::string& method, const std::string& target, const std::string& body = "",
                 std::map<std::string, std::string> headers = {});
  // run_boxcar with BOXCAR_API_TOKEN set to the token, as a user of the CLI would.
  CommandResult cli(const std::vector<std::string>& args, const fs::path& home);

  // POST /api/v1/jobs; returns the id or -1 (a test failure recorded).
  long submit(const boost::json::object& body);
  std::optional<boost::json::object> job(long id);
  std::vector<boost::json::object> jobs(const std::string& query = "");
  std::string logs(long id, const std::string& step = "");
  // Waits (deadline) until the job is final; returns it, or nullopt with a failure recorded.
  std::optional<boost::json::object> wait_final(long id, std::chrono::milliseconds deadline = 120s);

 private:
  fs::path data_;
  int port_ = 0;
  bool ok_ = false;
  std::string token_;
  std::unique_ptr<Process> proc_;
};

// Reads a string member ("" if missing or not a string) / an integer member (-1).
std::string str(const boost::json::object& o, const char* key);
long num(const boost::json::object& o, const char* key);

}  // namespace boxcar::service_test
