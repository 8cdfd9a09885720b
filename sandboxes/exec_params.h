// ExecParams: the body of POST /exec and POST /processes (SANDBOXES.md §2.2, §2.4) read and checked
// as data before anything runs. A bad value is an Error whose `subject` names its field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "base/duration.h"
#include "base/result.h"

namespace boxcar::sandboxes {

inline constexpr uint64_t kDefaultMaxOutput = 16ull << 20;
inline constexpr uint64_t kMaxMaxOutput = 64ull << 20;
inline constexpr size_t kMaxPathBytes = 4096;

struct ExecParams {
  std::vector<std::string> argv;           // exactly one of argv and command
  std::optional<std::string> command;      // the shell form (bash -c)
  std::map<std::string, std::optional<std::string>> env;  // nullopt: removed
  std::optional<std::string> cwd;          // relative to the session's cwd
  std::optional<std::string> session{"default"};  // nullopt: sessionless ("session": null)
  std::optional<std::string> stdin_data;   // exec: stdin | stdin_b64
  bool stdin_pipe = false;                 // processes: "stdin": "pipe"
  std::string id;                          // processes: a custom id
  Millis timeout{0};                       // 0: none
  Millis grace{2000};
  uint64_t max_output = kDefaultMaxOutput;
  bool stream = false;
};

enum class ExecBody { exec, process };

// An Error names the field in `subject` ("did you mean" for an unknown one).
Result<ExecParams> parse_exec_params(const boost::json::value& body, ExecBody kind);

// A session or custom process id: [A-Za-z0-9_.-]{1,64}.
bool valid_custom_id(std::string_view id);
// A path of the API (§2.0): not empty, no NUL, no "." or ".." segment, no "//", <= 4096 bytes.
// Returns what is wrong, or "" when it is fine.
std::string path_problem(std::string_view path);
// `path` against `base` when relative ("app" in "/workspace" -> "/workspace/app").
std::string resolve_path(const std::string& base, const std::string& path);

}  // namespace boxcar::sandboxes
