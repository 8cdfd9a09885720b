#include "agent/step_reuse.h"

namespace boxcar::agent {

std::vector<bool> reused_steps(const pipeline::ExpandedPipeline& pipeline,
                               const std::map<std::string, std::string>& previous) {
  const auto& steps = pipeline.steps;
  std::vector<bool> rerun(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    auto it = previous.find(steps[i].name);
    rerun[i] = it == previous.end() || it->second != "success";
  }
  // Until nothing changes (a few passes: a pipeline's steps are bounded): a step that needs a
  // re-run one re-runs; an exposing step that a re-run one needs (its preview env reaches every
  // dependent, directly or not) re-runs, and so then does what needs it.
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (rerun[i]) continue;
      for (size_t j : steps[i].needs) {
        if (rerun[j]) rerun[i] = changed = true;
      }
    }
    for (size_t i = 0; i < steps.size(); ++i) {
      if (!rerun[i]) continue;
      std::vector<size_t> todo = steps[i].needs;
      std::vector<bool> seen(steps.size());
      while (!todo.empty()) {
        size_t j = todo.back();
        todo.pop_back();
        if (seen[j]) continue;
        seen[j] = true;
        if (!rerun[j] && !steps[j].step.expose.empty()) rerun[j] = changed = true;
        for (size_t k : steps[j].needs) todo.push_back(k);
      }
    }
  }
  std::vector<bool> reused(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) reused[i] = !rerun[i];
  return reused;
}

}  // namespace boxcar::agent
