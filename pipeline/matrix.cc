#include "pipeline/matrix.h"

#include <set>

#include "base/suggest.h"
#include "pipeline/load.h"
#include "pipeline/validate.h"

namespace boxcar::pipeline {
namespace {

constexpr std::string_view kRefStart = "${matrix.";

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

void check_refs(const Step& step, const StepSource& src, std::string_view what,
                const std::string& text, SourcePos pos, Diagnostics& diags) {
  std::vector<std::string> axes;
  for (const auto& [axis, values] : step.matrix) axes.push_back(axis);
  std::set<std::string> reported;
  for (const MatrixRef& ref : find_matrix_refs(text)) {
    if (step.matrix.count(ref.axis) || !reported.insert(ref.axis).second) continue;
    std::string message = src.context + ": " + std::string(what) + " refers to ${matrix." +
                          ref.axis + "}";
    if (axes.empty()) {
      message += " but the step has no matrix";
    } else {
      auto match = closest_match(ref.axis, axes);
      message += ", not an axis of the step's matrix" +
                 (match ? " (did you mean " + quoted(*match) + "?)" : std::string());
    }
    diags.error(pos, message);
  }
}

}  // namespace

std::vector<MatrixRef> find_matrix_refs(std::string_view text) {
  std::vector<MatrixRef> refs;
  size_t at = 0;
  while ((at = text.find(kRefStart, at)) != std::string_view::npos) {
    size_t close = text.find('}', at + kRefStart.size());
    if (close == std::string_view::npos) break;
    size_t name_start = at + kRefStart.size();
    refs.push_back(MatrixRef{std::string(text.substr(name_start, close - name_start)), at,
                             close + 1 - at});
    at = close + 1;
  }
  return refs;
}

std::string strip_matrix_refs(std::string_view text) {
  std::string out;
  size_t copied = 0;
  for (const MatrixRef& ref : find_matrix_refs(text)) {
    out += text.substr(copied, ref.offset - copied);
    copied = ref.offset + ref.length;
  }
  return out += text.substr(copied);
}

std::string interpolate(std::string_view text, const MatrixValues& values) {
  std::string out;
  size_t copied = 0;
  for (const MatrixRef& ref : find_matrix_refs(text)) {
    out += text.substr(copied, ref.offset - copied);
    copied = ref.offset + ref.length;
    auto it = values.find(ref.axis);
    out += it != values.end() ? std::string_view(it->second) : text.substr(ref.offset, ref.length);
  }
  return out += text.substr(copied);
}

size_t combination_count(const std::map<std::string, std::vector<std::string>>& matrix) {
  constexpr size_t kCap = 1'000'000'000;
  size_t n = 1;
  for (const auto& [axis, values] : matrix) {
    n = values.empty() ? 0 : (n > kCap / values.size() ? kCap : n * values.size());
  }
  return n;
}

std::vector<MatrixValues> combinations(
    const std::map<std::string, std::vector<std::string>>& matrix) {
  std::vector<MatrixValues> out = {{}};
  for (const auto& [axis, values] : matrix) {
    std::vector<MatrixValues> next;
    for (const MatrixValues& partial : out) {
      for (const std::string& v : values) {
        MatrixValues combo = partial;
        combo[axis] = v;
        next.push_back(std::move(combo));
      }
    }
    out = std::move(next);
  }
  return out;
}

std::string expansion_name(const std::string& base, const MatrixValues& values) {
  if (values.empty()) return base;
  if (!find_matrix_refs(base).empty()) return interpolate(base, values);
  std::string name = base + " (";
  bool first = true;
  for (const auto& [axis, value] : values) {
    name += (first ? "" : ", ") + axis + "=" + value;
    first = false;
  }
  return name + ")";
}

void check_matrix(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                  Diagnostics& diags) {
  std::map<std::string, size_t> owner;  // expanded name -> step index
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    const StepSource& src = sources[i];
    auto pos_of = [&](const std::string& key) {
      auto it = src.text.find(key);
      return it == src.text.end() ? src.table : it->second;
    };
    check_refs(step, src, "\"name\"", step.name, pos_of("name"), diags);
    check_refs(step, src, "\"run\"", step.run, pos_of("run"), diags);
    check_refs(step, src, "\"image\"", step.image, pos_of("image"), diags);
    for (const Cache& cache : step.caches) {
      check_refs(step, src, "cache \"key\"", cache.key, cache.pos, diags);
      for (const std::string& k : cache.restore_keys) {
        check_refs(step, src, "cache \"restore_keys\"", k, cache.pos, diags);
      }
    }
    for (const auto& [key, value] : step.env) {
      auto it = src.env.find(key);
      check_refs(step, src, "env " + quoted(key), value, it == src.env.end() ? src.table : it->second,
                 diags);
    }

    size_t count = combination_count(step.matrix);
    if (count > kMaxMatrixCombinations) {
      diags.error(src.table, src.context + ": matrix has " + std::to_string(count) +
                                 " combinations (at most " +
                                 std::to_string(kMaxMatrixCombinations) + ")");
      continue;
    }
    if (step.name.empty()) continue;
    for (const MatrixValues& values : combinations(step.matrix)) {
      std::string name = expansion_name(step.name, values);
      auto [it, inserted] = owner.emplace(name, i);
      if (inserted) continue;
      if (it->second == i) {
        diags.error(src.name, src.context + ": two expansions are named " + quoted(name) +
                                  " (use every matrix axis in the name)");
      } else if (step.name != steps[it->second].name) {  // same base names: check_needs says so
        diags.error(src.name, src.context + ": expansion " + quoted(name) +
                                  " has the same name as step " +
                                  quoted(steps[it->second].name));
      }
      break;
    }
  }
}

ExpandedPipeline expand(const Pipeline& pipeline) {
  ExpandedPipeline out;
  out.name = pipeline.name;
  out.file = pipeline.file;
  std::map<std::string, std::vector<size_t>> by_base;
  for (const Step& step : pipeline.steps) {
    for (const MatrixValues& values : combinations(step.matrix)) {
      ConcreteStep c;
      c.name = expansion_name(step.name, values);
      c.base_name = step.name;
      c.matrix_values = values;
      c.step = step;
      if (!values.empty()) {
        c.step.name = interpolate(step.name, values);
        c.step.run = interpolate(step.run, values);
        c.step.image = interpolate(step.image, values);
        for (auto& [key, value] : c.step.env) value = interpolate(value, values);
        for (Expose& e : c.step.expose) e.name = interpolate(e.name, values);
        for (Service& service : c.step.services) service.image = interpolate(service.image, values);
        for (Cache& cache : c.step.caches) {
          cache.key = interpolate(cache.key, values);
          for (std::string& k : cache.restore_keys) k = interpolate(k, values);
        }
      }
      by_base[step.name].push_back(out.steps.size());
      out.steps.push_back(std::move(c));
    }
  }
  for (ConcreteStep& c : out.steps) {
    for (const std::string& need : c.step.needs) {
      auto it = by_base.find(need);
      if (it == by_base.end()) continue;
      c.needs.insert(c.needs.end(), it->second.begin(), it->second.end());
    }
  }
  return out;
}

}  // namespace boxcar::pipeline
