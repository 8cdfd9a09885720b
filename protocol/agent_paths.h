// The agent protocol's paths (agent_protocol.h lists what each one takes and answers): named
// here once for the server's router, the agent's client and the tests' fake server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace boxcar::protocol {

inline constexpr std::string_view kAgentRegisterPath = "/api/v1/agent/register";
inline constexpr std::string_view kAgentClaimPath = "/api/v1/agent/claim";
// An agent's sandboxes (protocol/sandbox_api.h: SandboxSync -> SandboxSyncAnswer).
inline constexpr std::string_view kAgentSandboxSyncPath = "/api/v1/agent/sandboxes/sync";
// Every report for a job is a POST to kAgentJobsPrefix + "{id}/" + one of the names below.
inline constexpr std::string_view kAgentJobsPrefix = "/api/v1/agent/jobs/";

inline constexpr std::string_view kHeartbeat = "heartbeat";
inline constexpr std::string_view kLogs = "logs";
inline constexpr std::string_view kSteps = "steps";
inline constexpr std::string_view kComplete = "complete";
inline constexpr std::string_view kPipeline = "pipeline";
inline constexpr std::string_view kPreviews = "previews";
inline constexpr std::string_view kSecrets = "secrets";
inline constexpr std::string_view kArtifacts = "artifacts";  // ?path=&sha256=&step= or ?path=&link=&step=
// [[step.cache]] entries kept by the server for the job's repository (docs/api.md): POST
// "caches?key=&sha256=" uploads one (a tar), POST "caches/lookup" finds one, GET
// "caches/<sha256>" fetches it.
inline constexpr std::string_view kCaches = "caches";
inline constexpr std::string_view kCacheLookup = "caches/lookup";
// A re-run of failed steps (protocol/rerun_protocol.h): POST "reuse" copies a reused step's
// artifact records from the job re-run; GET "artifacts/<path>" fetches one of the job's own.
inline constexpr std::string_view kReuse = "reuse";

// "/api/v1/agent/jobs/{id}/{report}", as an agent sends it.
inline std::string agent_job_path(int64_t id, std::string_view report) {
  return std::string(kAgentJobsPrefix) + std::to_string(id) + "/" + std::string(report);
}

// "/api/v1/agent/jobs/{id}/{report}" with "{id}" left in, as the server's router takes it.
inline std::string agent_job_route(std::string_view report) {
  return std::string(kAgentJobsPrefix) + "{id}/" + std::string(report);
}

}  // namespace boxcar::protocol
