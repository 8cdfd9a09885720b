// The step graph of a job page: the job's steps in columns by depth in their `needs` graph
// (StepRecord::needs), so that a step stands to the right of everything it waits for.
#pragma once

#include <cstddef>
#include <vector>

#include "server/store/store.h"

namespace boxcar::server {

// Column 0 holds the steps that need nothing (or only names the job has no step for); any
// other step sits one column right of the deepest step it needs. Each column lists indexes
// into `steps` in their order. A cycle (the agent never reports one) cannot loop: depths stop
// growing after steps.size() rounds.
std::vector<std::vector<size_t>> step_columns(const std::vector<StepRecord>& steps);

}  // namespace boxcar::server
