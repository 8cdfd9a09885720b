// Superseded builds (issue 15): a newer push to a ref, or a newer update of a pull request,
// cancels the queued and running jobs of the older ones (Store::supersede says which), so a
// branch builds its newest commit instead of queueing behind every push before it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "server/store/store.h"

namespace boxcar::server {

struct ApiContext;

// "superseded by job #12 (push of abc1234)": what a superseded job says.
std::string superseded_reason(int64_t newer, const NewJob& job);

// True when `ref` ("refs/heads/main" or "main") is the branch `default_branch` names.
bool is_default_branch(const std::string& ref, const std::string& default_branch);

// After webhook job `id` (`job`) was queued: cancels the older jobs it supersedes, unless the
// server keeps them on the repository's default branch (--keep-superseded-on-default) and `job`
// is on it. Returns the ids cancelled or asked to stop. Wakes log followers of them.
Result<std::vector<int64_t>> supersede_older(ApiContext& ctx, int64_t id, const NewJob& job);

}  // namespace boxcar::server
