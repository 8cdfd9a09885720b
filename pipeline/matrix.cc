#include "pipeline/matrix.h"

#include <algorithm>
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

std::optional<CellSelector> parse_cell_selector(std::string_view need) {
  size_t open = need.find(" (");
  if (open == std::string_view::npos || need.size() < open + 3 || need.back() != ')') return std::nullopt;
  CellSelector sel;
  sel.base = std::string(need.substr(0, open));
  std::string_view pairs = need.substr(open + 2, need.size() - open - 3);
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  while (!pairs.empty()) {
    size_t comma = pairs.find(',');
    std::string_view pair = trim(pairs.substr(0, comma));
    pairs = comma == std::string_view::npos ? std::string_view() : pairs.substr(comma + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    sel.values[std::string(trim(pair.substr(0, eq)))] = std::string(trim(pair.substr(eq + 1)));
  }
  if (sel.values.empty()) return std::nullopt;
  return sel;
}

std::vector<size_t> cells_named(const Step& step, std::string_view need) {
  // Too many to expand: check_matrix refuses the step; its name still names it.
  if (combination_count(step.matrix) > kMaxMatrixCombinations) {
    return need == step.name ? std::vector<size_t>{0} : std::vector<size_t>{};
  }
  std::vector<MatrixValues> cells = combinations(step.matrix);
  std::vector<size_t> out;
  if (need == step.name) {
    for (size_t c = 0; c < cells.size(); ++c) out.push_back(c);
    return out;
  }
  auto sel = parse_cell_selector(need);
  for (size_t c = 0; c < cells.size(); ++c) {
    if (cells[c].empty()) continue;
    bool named = expansion_name(step.name, cells[c]) == need;
    if (!named && sel && sel->base == step.name) {
      named = std::all_of(sel->values.begin(), sel->values.end(), [&](const auto& kv) {
        auto it = cells[c].find(kv.first);
        return it != cells[c].end() && it->second == kv.second;
      });
    }
    if (named) out.push_back(c);
  }
  return out;
}

std::optional<NeedTarget> resolve_need(const std::vector<Step>& steps,
                                       const std::map<std::string, size_t>& by_name,
                                       std::string_view need) {
  auto named = [&](size_t s) -> std::optional<NeedTarget> {
    auto cells = cells_named(steps[s], need);
    if (cells.empty()) return std::nullopt;
    return NeedTarget{s, std::move(cells)};
  };
  if (auto it = by_name.find(std::string(need)); it != by_name.end()) return named(it->second);
  if (auto sel = parse_cell_selector(need)) {
    if (auto it = by_name.find(sel->base); it != by_name.end()) return named(it->second);
  }
  // An expansion's own name, for steps whose name interpolates the matrix ("build-gcc").
  for (size_t s = 0; s < steps.size(); ++s) {
    if (find_matrix_refs(steps[s].name).empty()) continue;
    if (auto t = named(s)) return t;
  }
  return std::nullopt;
}

namespace {

// The checks the agent would make when the expansion starts, so that validate fails where run
// would: its workdir (a matrix value can carry a ".." in), its images.
void check_expansion(const Step& step, const StepSource& src, const MatrixValues& values,
                     const ImageCheck& image_check, Diagnostics& diags) {
  auto pos_of = [&](const std::string& key) {
    auto it = src.text.find(key);
    return it == src.text.end() ? src.table : it->second;
  };
  std::string who = src.context;
  if (!values.empty()) who += ": expansion " + quoted(expansion_name(step.name, values));
  std::string workdir = interpolate(step.workdir, values);
  if (std::string why = relative_path_problem("workdir", workdir); !why.empty()) {
    diags.error(pos_of("workdir"), who + ": " + why);
  }
  if (!image_check) return;
  std::string image = interpolate(step.image, values);
  if (image != "host") {
    if (std::string why = image_check(image); !why.empty()) diags.error(pos_of("image"), who + ": " + why);
  }
  for (const Service& svc : step.services) {
    if (svc.image.empty()) continue;
    if (std::string why = image_check(interpolate(svc.image, values)); !why.empty()) {
      diags.error(svc.pos, who + ": service " + quoted(svc.name) + ": " + why);
    }
  }
}

}  // namespace

void check_matrix(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                  const ImageCheck& image_check, Diagnostics& diags) {
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
    check_refs(step, src, "\"workdir\"", step.workdir, pos_of("workdir"), diags);
    // The agent refuses these when the step starts (agent/step_setup.cc): say so now.
    for (const Service& svc : step.services) {
      if (svc.image.empty() || step.network == Network::job) continue;
      std::string mode = step.network == Network::none ? "none" : "host";
      diags.error(pos_of("network"), src.context + ": service " + quoted(svc.name) +
                                         " runs from an image on the job's network, which network = " +
                                         quoted(mode) + " cannot reach (run it without \"image\" or drop network = " +
                                         quoted(mode) + ")");
    }
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
    for (const MatrixValues& values : combinations(step.matrix)) {
      check_expansion(step, src, values, image_check, diags);
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
  std::vector<size_t> first;  // by step: the index of its first expansion
  for (const Step& step : pipeline.steps) {
    first.push_back(out.steps.size());
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
        c.step.workdir = interpolate(step.workdir, values);
        for (auto& [key, value] : c.step.env) value = interpolate(value, values);
        for (Expose& e : c.step.expose) e.name = interpolate(e.name, values);
        for (Service& service : c.step.services) service.image = interpolate(service.image, values);
        for (Cache& cache : c.step.caches) {
          cache.key = interpolate(cache.key, values);
          for (std::string& k : cache.restore_keys) k = interpolate(k, values);
        }
      }
      out.steps.push_back(std::move(c));
    }
  }
  std::map<std::string, size_t> by_name;
  for (size_t s = 0; s < pipeline.steps.size(); ++s) by_name.emplace(pipeline.steps[s].name, s);
  for (ConcreteStep& c : out.steps) {
    for (const std::string& need : c.step.needs) {
      auto target = resolve_need(pipeline.steps, by_name, need);
      if (!target) continue;
      for (size_t cell : target->cells) {
        size_t index = first[target->step] + cell;
        if (std::find(c.needs.begin(), c.needs.end(), index) == c.needs.end()) c.needs.push_back(index);
      }
    }
  }
  return out;
}

}  // namespace boxcar::pipeline
