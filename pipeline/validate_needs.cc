// The checks across steps: unique names, needs naming existing steps, and no cycles.
#include <algorithm>
#include <functional>
#include <map>

#include "base/suggest.h"
#include "pipeline/validate.h"

namespace boxcar::pipeline {
namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Strongly connected components (Tarjan), each in discovery order.
std::vector<std::vector<size_t>> components(const std::vector<std::vector<size_t>>& edges) {
  const size_t n = edges.size();
  std::vector<int> index(n, -1), low(n, 0);
  std::vector<bool> on_stack(n, false);
  std::vector<size_t> stack;
  std::vector<std::vector<size_t>> out;
  int counter = 0;
  std::function<void(size_t)> visit = [&](size_t v) {
    index[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = true;
    for (size_t w : edges[v]) {
      if (index[w] < 0) {
        visit(w);
        low[v] = std::min(low[v], low[w]);
      } else if (on_stack[w]) {
        low[v] = std::min(low[v], index[w]);
      }
    }
    if (low[v] == index[v]) {
      std::vector<size_t> component;
      size_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        component.push_back(w);
      } while (w != v);
      out.push_back(std::move(component));
    }
  };
  for (size_t v = 0; v < n; ++v) {
    if (index[v] < 0) visit(v);
  }
  return out;
}

// The shortest path from `start` back to itself inside one component (breadth first, so the
// path is deterministic: edges are followed in the order the needs are written).
std::vector<size_t> cycle_through(size_t start, const std::vector<size_t>& component,
                                  const std::vector<std::vector<size_t>>& edges) {
  std::map<size_t, size_t> parent;
  std::vector<size_t> queue = {start};
  for (size_t i = 0; i < queue.size(); ++i) {
    size_t v = queue[i];
    for (size_t w : edges[v]) {
      if (std::find(component.begin(), component.end(), w) == component.end()) continue;
      if (w == start) {
        std::vector<size_t> path = {start};
        for (size_t u = v; u != start; u = parent[u]) path.insert(path.begin() + 1, u);
        path.push_back(start);
        return path;
      }
      if (parent.count(w) == 0) {
        parent[w] = v;
        queue.push_back(w);
      }
    }
  }
  return {start, start};
}

}  // namespace

void check_needs(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                 Diagnostics& diags) {
  std::map<std::string, size_t> by_name;
  std::vector<std::string> names;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].name.empty()) continue;
    auto [it, inserted] = by_name.emplace(steps[i].name, i);
    if (inserted) {
      names.push_back(steps[i].name);
    } else {
      diags.error(sources[i].name, sources[i].context + ": duplicate name (first used at line " +
                                       std::to_string(sources[it->second].name.line) + ")");
    }
  }

  std::vector<std::vector<size_t>> edges(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    for (size_t k = 0; k < steps[i].needs.size(); ++k) {
      const std::string& need = steps[i].needs[k];
      SourcePos pos = sources[i].needs[k];
      auto it = by_name.find(need);
      if (it == by_name.end()) {
        auto match = closest_match(need, names);
        diags.error(pos, sources[i].context + ": needs unknown step " + quoted(need) +
                             (match ? " (did you mean " + quoted(*match) + "?)" : ""));
      } else if (it->second == i) {
        diags.error(pos, sources[i].context + ": a step cannot need itself");
      } else if (std::find(edges[i].begin(), edges[i].end(), it->second) == edges[i].end()) {
        edges[i].push_back(it->second);
      }
    }
  }

  // One error per cycle, told from its first step in file order.
  for (const auto& component : components(edges)) {
    if (component.size() < 2) continue;
    size_t first = *std::min_element(component.begin(), component.end());
    std::string path;
    for (size_t v : cycle_through(first, component, edges)) {
      path += (path.empty() ? "" : " -> ") + steps[v].name;
    }
    diags.error(sources[first].table, "cycle in needs: " + path);
  }
}

}  // namespace boxcar::pipeline
