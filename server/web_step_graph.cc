#include "server/web_step_graph.h"

#include <algorithm>
#include <map>
#include <string>

namespace boxcar::server {

std::vector<std::vector<size_t>> step_columns(const std::vector<StepRecord>& steps) {
  // The steps and their needs come from an agent: a topological order (Kahn) keeps the page
  // linear in steps + needs whatever order or shape they were reported in.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < steps.size(); ++i) index.emplace(steps[i].name, i);
  std::vector<std::vector<size_t>> dependents(steps.size());
  std::vector<size_t> waiting(steps.size(), 0);
  for (size_t i = 0; i < steps.size(); ++i) {
    for (const std::string& need : steps[i].needs) {
      auto it = index.find(need);
      if (it == index.end() || it->second == i) continue;
      dependents[it->second].push_back(i);
      ++waiting[i];
    }
  }
  std::vector<size_t> depth(steps.size(), 0), ready;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (waiting[i] == 0) ready.push_back(i);
  }
  size_t deepest = 0;
  for (size_t k = 0; k < ready.size(); ++k) {
    size_t n = ready[k];
    deepest = std::max(deepest, depth[n]);
    for (size_t d : dependents[n]) {
      depth[d] = std::max(depth[d], depth[n] + 1);
      if (--waiting[d] == 0) ready.push_back(d);
    }
  }
  // Steps on a cycle (an agent's report, never a valid pipeline) never became ready: they go
  // in a column after the others.
  for (size_t i = 0; i < steps.size(); ++i) {
    if (waiting[i] > 0) depth[i] = deepest + 1;
  }
  std::vector<std::vector<size_t>> columns;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (depth[i] >= columns.size()) columns.resize(depth[i] + 1);
    columns[depth[i]].push_back(i);
  }
  // A column left empty (depths only skip under a cycle) would draw as a gap.
  std::erase_if(columns, [](const std::vector<size_t>& c) { return c.empty(); });
  return columns;
}

}  // namespace boxcar::server
