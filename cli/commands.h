// The subcommands of the boxcar binary, one cmd_*.cc each. Each takes the arguments after its
// name and returns the process exit code (DESIGN.md section 5).
#pragma once

#include <string>
#include <vector>

namespace boxcar::cli {

// Exit codes (contract).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInfra = 3;
inline constexpr int kExitInterrupted = 130;

using Args = std::vector<std::string>;

int cmd_run(const Args& args);
int cmd_validate(const Args& args);
int cmd_plan(const Args& args);
int cmd_serve(const Args& args);
int cmd_agent(const Args& args);
int cmd_agents(const Args& args);                                      // cmd_agents.cc
int cmd_agent_admin(const std::string& action, const Args& args);      // agent revoke|forget
int cmd_submit(const Args& args);
int cmd_jobs(const Args& args);
int cmd_logs(const Args& args);
int cmd_cancel(const Args& args);
int cmd_artifacts(const Args& args);

// Prints "boxcar <command>: <message>" to stderr and returns kExitUsage.
int usage_error(const std::string& command, const std::string& message);

}  // namespace boxcar::cli
