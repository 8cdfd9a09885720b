// The subcommands of the boxcar binary, one cmd_*.cc each. Each takes the arguments after its
// name and returns the process exit code (DESIGN.md section 5).
#pragma once

#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace boxcar::cli {


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
int cmd_rerun(const Args& args);
int cmd_artifacts(const Args& args);
int cmd_image(const Args& args);  // image pull|ls|rm|prune
int cmd_secret(const Args& args);  // secret set|ls|rm
int cmd_sandbox(const Args& args);  // sandbox VERB: cmd_sandbox*.cc

}  // namespace boxcar::cli
