// The agent protocol's part for re-runs of failed steps (docs/api.md "Re-runs"). A claim's
// JobSpec names the job re-run (rerun_of) and its steps' final states; for each step the agent
// reuses instead of running, it asks the server to copy that step's artifacts:
//
//   POST /api/v1/agent/jobs/{id}/reuse        ReuseRequest -> 200 ReuseResponse
//        (lease-checked; 403 unless `from_job` is the job this one re-runs the failed steps of,
//        413 when the copies would pass the job's artifact limit; nothing is copied then)
//   GET  /api/v1/agent/jobs/{id}/artifacts/{path}
//        the bytes of one of the job's own artifacts (lease-checked), which the agent puts in
//        the reused step's layer of the workspace, where its dependents see them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "base/result.h"

namespace boxcar::protocol {

struct ReuseRequest {
  std::string step;      // the step's expanded name
  int64_t from_job = 0;  // the job it is reused from: the claim's rerun_of
};

// One artifact record the job now has: a file (sha256, size) or a link (its target text).
struct ReusedArtifact {
  std::string path;
  std::string sha256;
  int64_t size = 0;
  std::string link;
};

struct ReuseResponse {
  std::vector<ReusedArtifact> artifacts;  // the step's, by path
};

boost::json::value to_json(const ReuseRequest&);
boost::json::value to_json(const ReuseResponse&);
// A field missing or mistyped, a path that is not relative and clean, or a sha256 that is not
// 64 lowercase hex digits is an Error naming it: the agent writes these paths to disk.
Result<ReuseRequest> reuse_request_from_json(const boost::json::value& v);
Result<ReuseResponse> reuse_response_from_json(const boost::json::value& v);

}  // namespace boxcar::protocol
