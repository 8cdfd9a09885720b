// The limits of `boxcar agent` (and of `serve`'s in-process agents) beyond single steps: a job's
// workspace (--max-workspace SIZE, default 10GiB; --max-workspace-inodes N, default 1000000;
// 0 turns one off) and the completed jobs whose previews stay open (--max-previews N, default
// the agent's concurrency).
#pragma once

#include <cstddef>
#include <vector>

#include "agent/daemon/workspace_watch.h"
#include "base/result.h"
#include "cli/flags.h"

namespace boxcar::cli {

inline constexpr const char* kAgentLimitsUsage =
    "  --max-workspace SIZE (10GiB) --max-workspace-inodes N (1000000): a job whose workspace\n"
    "  grows past either fails its running steps (checked about once a second; 0 = no limit)\n"
    "  --max-previews N (the concurrency): completed jobs whose previews stay open; past it,\n"
    "  the oldest one's previews close\n";

struct AgentLimits {
  agent::WorkspaceLimits workspace;
  size_t max_previews = 0;  // 0: the agent's concurrency
};

std::vector<FlagSpec> agent_limit_flag_specs();

// Errors name the flag and what it takes.
Result<AgentLimits> read_agent_limits(const ParsedFlags& flags);

}  // namespace boxcar::cli
