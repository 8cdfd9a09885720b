// Re-runs on the server (docs/api.md "Re-runs"): what a claim of a re-run of failed steps
// carries. The route and rerun_job() are declared in api.h.
#pragma once

#include "protocol/agent_protocol.h"
#include "server/api.h"

namespace boxcar::server {

// For a re-run of `job.rerun_of`'s failed steps: sets spec.rerun_of and spec.previous_steps
// (the old job's steps' final states by name), from which the agent decides what it reuses.
// Leaves `spec` as it is for any other job, or when the old job is gone (then every step runs).
void describe_rerun(ApiContext& ctx, const JobRecord& job, protocol::JobSpec& spec);

// Whether a re-run of `job`'s failed steps has anything to do: a step that ended neither
// success nor skipped (a step skipped by its own `when` would only be skipped again).
bool has_failed_steps(const JobRecord& job);

}  // namespace boxcar::server
