#include "server/web_step_graph.h"

#include <algorithm>
#include <map>
#include <string>

namespace boxcar::server {

std::vector<std::vector<size_t>> step_columns(const std::vector<StepRecord>& steps) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < steps.size(); ++i) index.emplace(steps[i].name, i);
  std::vector<size_t> depth(steps.size(), 0);
  // Relaxation in rounds: a graph of n steps settles within n rounds (its longest path).
  for (size_t round = 0; round < steps.size(); ++round) {
    bool changed = false;
    for (size_t i = 0; i < steps.size(); ++i) {
      for (const std::string& need : steps[i].needs) {
        auto it = index.find(need);
        if (it == index.end() || it->second == i) continue;
        size_t d = std::min(depth[it->second] + 1, steps.size());
        if (d > depth[i]) {
          depth[i] = d;
          changed = true;
        }
      }
    }
    if (!changed) break;
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
