// The checks across steps: unique names, needs naming existing steps (or some of a matrix
// step's expansions: "build (cc=gcc)"), and no cycles.
#include <algorithm>
#include <functional>
#include <map>

#include "base/suggest.h"
#include "pipeline/matrix.h"
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

// Why a "base (a=x)" need names no expansion of the step `base` names, or "" when `need` is
// not of that form or names no step at all.
std::string no_cell(const std::string& need, const std::vector<Step>& steps,
                    const std::map<std::string, size_t>& by_name) {
  auto sel = parse_cell_selector(need);
  if (!sel) return "";
  auto it = by_name.find(sel->base);
  if (it == by_name.end()) return "";
  const Step& step = steps[it->second];
  std::string head = "needs " + quoted(need) + ", but step " + quoted(step.name);
  if (step.matrix.empty()) return head + " has no matrix (write needs = [" + quoted(step.name) + "])";
  if (combination_count(step.matrix) > kMaxMatrixCombinations) return head + " has too many expansions";
  std::vector<std::string> axes;
  for (const auto& [axis, values] : step.matrix) axes.push_back(axis);
  for (const auto& [axis, value] : sel->values) {
    if (step.matrix.count(axis)) continue;
    auto match = closest_match(axis, axes);
    std::string all;
    for (const auto& a : axes) all += (all.empty() ? "" : ", ") + a;
    return head + " has no matrix axis " + quoted(axis) + " (its axes: " + all + ")" +
           (match ? "; did you mean " + quoted(*match) + "?" : "");
  }
  std::vector<std::string> cells;
  std::string listed;
  for (const MatrixValues& values : combinations(step.matrix)) {
    cells.push_back(expansion_name(step.name, values));
    if (cells.size() <= 8) listed += (listed.empty() ? "" : ", ") + quoted(cells.back());
  }
  if (cells.size() > 8) listed += ", ... (" + std::to_string(cells.size()) + " in all)";
  auto match = closest_match(need, cells);
  return head + " has no expansion with those values; it has " + listed +
         (match ? " (did you mean " + quoted(*match) + "?)" : "");
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
      auto target = resolve_need(steps, by_name, need);
      if (!target) {
        if (std::string why = no_cell(need, steps, by_name); !why.empty()) {
          diags.error(pos, sources[i].context + ": " + why);
          continue;
        }
        auto match = closest_match(need, names);
        diags.error(pos, sources[i].context + ": needs unknown step " + quoted(need) +
                             (match ? " (did you mean " + quoted(*match) + "?)" : ""));
      } else if (target->step == i) {
        diags.error(pos, sources[i].context + ": a step cannot need itself");
      } else if (std::find(edges[i].begin(), edges[i].end(), target->step) == edges[i].end()) {
        edges[i].push_back(target->step);
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
