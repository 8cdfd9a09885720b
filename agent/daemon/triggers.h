// Triggers: the branch a job runs for, and whether a pipeline's [on] table admits its event.
#pragma once

#include <map>
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

struct JobBranch {
  std::string ref;        // what [on] is matched against: a pull request's base as refs/heads/X
  std::string branch;     // BOXCAR_BRANCH and when.branch; "" when none
  std::string no_branch;  // why the job has no branch ("" when it has one, or it is a tag)
};

// The branch of a job from the server. A pull request's is its base (BOXCAR_PR_BASE in `env`),
// never its head, which a fork names as it likes. Otherwise the ref's branch, but only when the
// checkout found the commit on it (`off_ref` empty): a commit named without a ref, or not on
// its ref, has no branch. `checked_ref` is the full ref the checkout resolved.
JobBranch job_branch(const std::string& event, const std::string& spec_ref,
                     const std::string& checked_ref, const std::string& commit,
                     const std::map<std::string, std::string>& env, const std::string& off_ref);

}  // namespace boxcar::agent
