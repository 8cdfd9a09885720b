// Triggers: whether a pipeline's [on] table admits the event a job was made for.
#pragma once

#include <string>

#include "pipeline/pipeline.h"

namespace boxcar::agent {

// "" when `on` admits `event` on `ref`, else why not, e.g.
// "[on] does not match push to refs/heads/feature/x". An absent [on] admits every push;
// manual jobs (boxcar submit, the API) are never filtered. push: refs/heads/X is matched
// against push.branches, refs/tags/T (or event "tag") against push.tags; pull_request: the
// branch against pull_request.branches (an empty list admits every branch).
std::string trigger_rejection(const pipeline::Triggers& on, const std::string& event,
                              const std::string& ref);

// "main" for refs/heads/main, "" for a tag or another ref.
std::string branch_of(const std::string& ref);

}  // namespace boxcar::agent
