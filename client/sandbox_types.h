// The values of the sandbox API as the client reads them (docs/sandboxes.md): what a call
// returns, each with the answer's JSON kept in `raw`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "base/result.h"

namespace boxcar::client {

struct SandboxInfo {
  std::string id, name, state, created_at, expires_at;
  boost::json::object raw;
};

// A command: an argv run as is, or a shell command line (`bash -c`, with the session's cwd and
// exports persisting). Exactly one of the two is set.
struct Command {
  std::vector<std::string> argv;
  std::string shell;
  static Command of_argv(std::vector<std::string> a) { return Command{std::move(a), {}}; }
  static Command of_shell(std::string s) { return Command{{}, std::move(s)}; }
};

struct ExecOptions {
  std::string cwd;
  std::map<std::string, std::optional<std::string>> env;  // nullopt: unset it
  std::optional<std::string> session;  // the session to run in; unset: the default one
  std::optional<std::string> stdin_data;
  std::optional<std::chrono::milliseconds> timeout, grace;
  std::string max_output;  // "16MiB"; empty: the server's default
};

struct ExecResult {
  std::string outcome;  // ok | failed | timeout | oom | signaled | cancelled | setup_error
  std::optional<int> exit_code, signal;
  std::string stdout_text, stderr_text;
  bool stdout_truncated = false, stderr_truncated = false;
  double duration_ms = 0;
  int64_t pid = 0;
  boost::json::object raw;
};

// One event of an exec stream or a process's log stream.
struct OutputEvent {
  std::string kind;  // start | stdout | stderr | exit | (anything else the server adds)
  std::string data;  // stdout/stderr: the bytes (decoded from data_b64 when sent so)
  std::string id;    // the SSE id (a log offset) when the stream is resumable
  boost::json::object raw;
};

// Reads the API's JSON values; a value of the wrong shape is an Error naming what.
Result<SandboxInfo> sandbox_info_from_json(const boost::json::value& v);
Result<ExecResult> exec_result_from_json(const boost::json::value& v);
// The "signal" field: the agent names signals ("SIGTERM"); a number is read as well.
std::optional<int> signal_field(const boost::json::object& o);
// An SSE event's JSON data as an OutputEvent of `kind` (data or data_b64 decoded).
Result<OutputEvent> output_event_from_json(const std::string& kind, const std::string& id,
                                           const std::string& data);

// The exit code a CLI passes on for a command's end: its own code; 124 on a timeout; 128+N after
// signal N (oom: 137); 3 when it could not be started (setup_error).
int exit_code_of(const ExecResult& r);

}  // namespace boxcar::client
