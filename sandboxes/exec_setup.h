// From ExecParams to the ExecRequest the executor runs: the environment (the sandbox's base, the
// session's changes, the request's), the working directory (relative to the session's cwd) and,
// for the shell form in a session, the trailer that brings back cwd and env; and the outcome as
// the API shows it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/json/object.hpp>

#include "executors/executor.h"
#include "sandboxes/exec_params.h"
#include "sandboxes/sessions.h"

namespace boxcar::sandboxes {

class ApiSandbox;

struct CommandSetup {
  executors::ExecRequest request;
  std::optional<std::string> session_id;
  std::shared_ptr<ShellTrailer> trailer;  // the shell form in a session (with_trailer)
};

CommandSetup command_setup(const ApiSandbox& sandbox, const ExecParams& params, const Session* session,
                           bool with_trailer);

// The session after a shell-form command that completed: cwd and env as the trailer found them.
void apply_session_state(Session& session, const ShellTrailer& trailer,
                         const std::vector<std::string>& env_before);

// {outcome, exit_code, signal}: exit_code null unless the command exited; signal a name or null.
boost::json::object outcome_json(const executors::Outcome& outcome);
std::string signal_name(int sig);
// "SIGTERM", "TERM", "15" -> 15; 0 when not a signal.
int parse_signal(std::string_view text);

}  // namespace boxcar::sandboxes
