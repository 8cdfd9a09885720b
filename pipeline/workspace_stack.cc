#include "pipeline/workspace_stack.h"

#include <algorithm>

namespace boxcar::pipeline {

namespace {

// `memo` holds each step's (deduplicated) stack once worked out, so a
// diamond-shaped graph costs its size, not its number of paths.
const std::vector<size_t>& stack_of(const ExpandedPipeline& p, size_t step, std::vector<std::vector<size_t>>& memo,
                                    std::vector<bool>& done) {
  if (done[step]) return memo[step];
  // With repeats first; then each step keeps its lowest place, so a step's layer is always above
  // every layer it saw itself (a need's writes over what that need started from).
  std::vector<size_t> all;
  const auto& needs = p.steps[step].needs;
  for (auto it = needs.rbegin(); it != needs.rend(); ++it) {
    all.push_back(*it);
    const auto& below = stack_of(p, *it, memo, done);
    all.insert(all.end(), below.begin(), below.end());
  }
  std::vector<size_t> out;
  std::vector<bool> seen(p.steps.size());
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (!seen[*it]) {
      seen[*it] = true;
      out.push_back(*it);
    }
  }
  std::reverse(out.begin(), out.end());
  memo[step] = std::move(out);
  done[step] = true;
  return memo[step];
}

}  // namespace

std::vector<size_t> workspace_stack(const ExpandedPipeline& pipeline, size_t step) {
  std::vector<std::vector<size_t>> memo(pipeline.steps.size());
  std::vector<bool> done(pipeline.steps.size());
  return stack_of(pipeline, step, memo, done);
}

}  // namespace boxcar::pipeline
