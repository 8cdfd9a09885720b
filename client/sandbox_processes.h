// A sandbox's sessions (env and cwd that persist between commands) and its background
// processes (start, list, logs, follow, stdin, signal, kill, wait): docs/sandboxes.md
// "Sessions" and "Processes". Handles bound to one sandbox; SandboxClient hands them out.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "base/result.h"
#include "client/api_connection.h"
#include "client/sandbox_types.h"

namespace boxcar::client {

struct SessionInfo {
  std::string id, cwd;
  boost::json::object raw;
};

class Sessions {
 public:
  Sessions(std::shared_ptr<ApiConnection> api, std::string sandbox)
      : api_(std::move(api)), sandbox_(std::move(sandbox)) {}
  // `id` empty: the server names it.
  Result<SessionInfo> create(const std::string& id = {}, const std::map<std::string, std::string>& env = {},
                             const std::string& cwd = {});
  Result<std::vector<SessionInfo>> list();
  Result<SessionInfo> get(const std::string& id);
  Result<SessionInfo> patch(const std::string& id,
                            const std::map<std::string, std::optional<std::string>>& env,
                            const std::string& cwd = {});
  Status remove(const std::string& id, bool kill_processes = false);

 private:
  std::shared_ptr<ApiConnection> api_;
  std::string sandbox_;
};

struct ProcessSpec {
  Command command;
  ExecOptions options;  // stdin_data is not used: see stdin_pipe
  std::string id;       // empty: the server names it (p1, p2, ...)
  bool stdin_pipe = false;  // keep a pipe to its stdin open (write_stdin)
};

struct ProcessInfo {
  std::string id, status;  // running | completed | failed | killed | timeout | oom | error
  int64_t pid = 0;
  std::optional<int> exit_code, signal;
  boost::json::object raw;
};

// What wait() waits for: the process's exit, a log line matching `pattern` (RE2), or `port`
// answering (with `http`, an HTTP GET of that path answering 2xx/3xx).
struct WaitSpec {
  std::string for_what = "exit";  // exit | log | port
  std::string pattern;
  int port = 0;
  std::string http;
  std::chrono::milliseconds timeout{30000};
};

struct WaitResult {
  bool met = false;
  std::string reason;  // when not met: timeout | exited
  std::string line;
  std::optional<int> exit_code;
  boost::json::object raw;
};

class Processes {
 public:
  Processes(std::shared_ptr<ApiConnection> api, std::string sandbox)
      : api_(std::move(api)), sandbox_(std::move(sandbox)) {}
  Result<ProcessInfo> start(const ProcessSpec& spec);
  Result<std::vector<ProcessInfo>> list();
  Result<ProcessInfo> get(const std::string& id);
  // The log so far (stdout and stderr as written), from byte `offset`.
  Result<std::string> logs(const std::string& id, uint64_t offset = 0);
  // Follows the log live from `offset`: stdout/stderr events, then exit; false from `on_event`
  // stops. Returns when the stream ends.
  Status follow(const std::string& id, uint64_t offset,
                const std::function<bool(const OutputEvent&)>& on_event);
  // Writes to the process's stdin pipe (`eof`: then closes it). Returns the bytes written.
  Result<uint64_t> write_stdin(const std::string& id, std::string data, bool eof = false);
  // `signal` like "SIGTERM", "TERM" or "15"; `tree`: every process of its tree, else its leader.
  Status signal(const std::string& id, const std::string& signal, bool tree = true);
  // TERM to its tree, then after `grace` the tree is killed; the final state.
  Result<ProcessInfo> kill(const std::string& id, std::optional<std::chrono::milliseconds> grace = {});
  Result<WaitResult> wait(const std::string& id, const WaitSpec& spec);

 private:
  std::string path(const std::string& id = {}) const;
  std::shared_ptr<ApiConnection> api_;
  std::string sandbox_;
};

Result<ProcessInfo> process_info_from_json(const boost::json::value& v);

}  // namespace boxcar::client
