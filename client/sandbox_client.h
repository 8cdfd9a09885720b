// SandboxClient: the C++ client of boxcar's sandbox API (docs/sandboxes.md; the design is
// shared/SANDBOXES.md §3). Synchronous: each call is one request (or one stream, whose events
// go to a callback as they arrive) and returns a Result; an error answer is an Error whose
// message is the server's text and whose `subject` keeps the answer's code. Every value keeps the
// answer's JSON in `raw`, so fields this client does not model yet are not lost (the CLI's --json
// prints it).
//
//   auto api = SandboxClient::connect("http://127.0.0.1:8080", token);
//   auto sb  = (*api)->create({.name = "user-123", .reuse = true});
//   auto r   = sb->exec(Command::argv({"python3", "-c", "print(6*7)"}), {.timeout = 10s});
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "base/result.h"
#include "client/api_connection.h"
#include "client/sandbox_files.h"
#include "client/sandbox_processes.h"
#include "client/sandbox_types.h"

namespace boxcar::client {

struct CreateOptions {
  std::string name;
  bool reuse = false;  // a sandbox of this name already there is answered instead of 409
  // Sizes as the server reads them: bytes or "512MiB"; empty/unset: the server's default.
  std::string memory, tmp, disk;
  std::optional<double> cpus;   // 1.5 is one and a half CPUs
  std::optional<int64_t> pids;
  std::optional<std::chrono::milliseconds> ttl;  // 0: none
  std::map<std::string, std::string> labels, env;
  std::string network;  // "job" | "none"; empty: the server's default
  std::string idempotency_key;
};

struct ListFilter {
  std::string state, name;
  std::vector<std::string> labels;  // "k=v"
};

struct PatchOptions {
  std::optional<std::chrono::milliseconds> ttl;
  std::optional<bool> keep_alive;
  std::map<std::string, std::optional<std::string>> labels;  // nullopt removes one
};

// GET /sandboxes/{id}/metrics.
struct SandboxMetrics {
  int64_t cpu_ms = 0, memory_bytes = 0, memory_peak_bytes = 0, pids = 0, disk_bytes = 0, oom_kills = 0,
          processes = 0;
  boost::json::object raw;
};

// One sandbox: its routes, bound to its id.
class Sandbox {
 public:
  Sandbox(std::shared_ptr<ApiConnection> api, SandboxInfo info)
      : api_(std::move(api)), info_(std::move(info)) {}
  const SandboxInfo& info() const { return info_; }
  const std::string& id() const { return info_.id; }

  // Runs a command to its end. A failing command is a result (outcome, exit_code), not an Error.
  Result<ExecResult> exec(const Command& command, const ExecOptions& options = {}) const;
  // Runs a command with its output handed to `on_event` as the server streams it (start,
  // stdout, stderr, exit); false from the callback stops (the server kills the command).
  // Returns the exit event's result (output fields empty).
  Result<ExecResult> exec_stream(const Command& command, const ExecOptions& options,
                                 const std::function<bool(const OutputEvent&)>& on_event) const;

  // POST /pause, /resume (also starts a stopped one), /stop: the sandbox's state afterwards.
  Result<SandboxInfo> pause() const;
  Result<SandboxInfo> resume() const;
  Result<SandboxInfo> stop() const;
  // Read without waking a paused sandbox.
  Result<SandboxMetrics> metrics() const;

  Sessions sessions() const { return Sessions(api_, info_.id); }
  Processes processes() const { return Processes(api_, info_.id); }
  Files files() const { return Files(api_, info_.id); }
  Ports ports() const { return Ports(api_, info_.id); }

 private:
  std::shared_ptr<ApiConnection> api_;
  SandboxInfo info_;
};

// What `boxcar sandbox git` sends (SANDBOXES.md §2.6); empty fields are left out.
struct GitCheckoutOptions {
  std::string url, ref, commit, dir, token;
  bool replace = false;
  int64_t timeout_ms = 0;  // 0: the server's default (10 minutes)
};

class SandboxClient {
 public:
  // See ApiConnection::open for the errors (all usage errors: nothing is sent yet).
  static Result<std::unique_ptr<SandboxClient>> connect(const std::string& server, std::string token,
                                                        const ConnectOptions& options = {});
  explicit SandboxClient(std::shared_ptr<ApiConnection> api) : api_(std::move(api)) {}

  Result<Sandbox> create(const CreateOptions& options = {});
  Result<std::vector<SandboxInfo>> list(const ListFilter& filter = {});
  Result<Sandbox> get(const std::string& id);
  Result<Sandbox> patch(const std::string& id, const PatchOptions& options);
  Status remove(const std::string& id);
  // A handle without a request (its info holds only the id): for routes of a known sandbox.
  Sandbox sandbox(const std::string& id) const;
  // POST /sandboxes/{id}/git/checkout (client/sandbox_git.cc): the answer as the server sent it
  // ({url, dir, ref, commit, fetched, duration_ms, shallow}).
  Result<boost::json::object> git_checkout(const std::string& id, const GitCheckoutOptions& options);

  ApiConnection& connection() { return *api_; }

 private:
  std::shared_ptr<ApiConnection> api_;
};

// The body of POST /sandboxes for `options` (exposed for tests of the request's shape).
boost::json::object create_body(const CreateOptions& options);
// The body of POST /exec (and of POST /processes, with its extra fields added by the caller).
boost::json::object exec_body(const Command& command, const ExecOptions& options);
// "/api/v1/sandboxes/{id}" (the id percent-encoded: it comes from a user).
std::string sandbox_path(const std::string& id);

}  // namespace boxcar::client
