// The limits of a pipeline file (limits.h): the size of the text, what expanding it costs,
// and the env values it hands to steps. The depth scan is in nesting_scan.cc.
#include <set>
#include <utility>

#include "base/size.h"
#include "pipeline/matrix.h"
#include "pipeline/validate.h"

namespace boxcar::pipeline {
namespace {

// Sums that saturate: a hostile file's totals must compare above the limit, never wrap.
class Bytes {
 public:
  Bytes& add(uint64_t n) {
    total_ = __builtin_add_overflow(total_, n, &total_) ? UINT64_MAX : total_;
    return *this;
  }
  Bytes& add_times(uint64_t n, uint64_t times) {
    uint64_t product;
    return add(__builtin_mul_overflow(n, times, &product) ? UINT64_MAX : product);
  }
  uint64_t total() const { return total_; }

 private:
  uint64_t total_ = 0;
};

using Matrix = std::map<std::string, std::vector<std::string>>;

// `text` as every cell of `matrix` interpolates it, summed over the `cells` cells: each value
// of an axis with n values fills cells / n of them.
uint64_t interpolated(std::string_view text, const Matrix& matrix, uint64_t cells) {
  Bytes sum;
  uint64_t fixed = text.size();
  for (const MatrixRef& ref : find_matrix_refs(text)) {
    auto axis = matrix.find(ref.axis);
    if (axis == matrix.end() || axis->second.empty()) continue;  // stays as written
    fixed -= ref.length;
    uint64_t values = 0;
    for (const std::string& v : axis->second) values += v.size();
    sum.add_times(values, cells / axis->second.size());
  }
  return sum.add_times(fixed, cells).total();
}

uint64_t strings(const std::vector<std::string>& list) {
  uint64_t n = 0;
  for (const std::string& s : list) n += s.size() + kEntryOverhead;
  return n;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Where byte `offset` of `text` is.
SourcePos position_of(std::string_view text, size_t offset) {
  SourcePos pos{1, 1};
  size_t line_start = 0;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] != '\n') continue;
    ++pos.line;
    line_start = i + 1;
  }
  pos.column = static_cast<int>(offset - line_start) + 1;
  return pos;
}

std::string steps_limit(const Limits& limits) {
  return "(limit " + std::to_string(limits.expanded_steps) + " steps after matrix expansion)";
}

std::string bytes_limit(const Limits& limits) {
  return "(limit " + format_size(limits.expanded_bytes) +
         " after matrix expansion): move large values into files of the repository";
}

void check_env(const EnvMap& env, const std::map<std::string, SourcePos>& positions,
               SourcePos fallback, const Limits& limits, std::set<std::pair<int, int>>& reported,
               Diagnostics& diags) {
  for (const auto& [key, value] : env) {
    uint64_t bytes = key.size() + 1 + value.size();
    if (bytes <= limits.env_var_bytes) continue;
    auto it = positions.find(key);
    SourcePos pos = it == positions.end() ? fallback : it->second;
    if (!reported.insert({pos.line, pos.column}).second) continue;  // one layer, many steps
    diags.error(pos, "env " + quoted(key) + ": " + key + "=value is " + std::to_string(bytes) +
                         " bytes, over the limit of " + std::to_string(limits.env_var_bytes) +
                         " for one environment variable (the kernel refuses longer ones at "
                         "exec): put the value in a file of the repository");
  }
}

}  // namespace

uint64_t expanded_bytes(const Step& step) {
  const Matrix& m = step.matrix;
  uint64_t cells = combination_count(m);
  Bytes b;
  // Each cell holds its name twice (the expansion's and the step's), its matrix values, and
  // a copy of the whole step, matrix included.
  b.add_times(interpolated(step.name, m, cells), 2);
  b.add(interpolated(step.run, m, cells)).add(interpolated(step.image, m, cells));
  for (const auto& [key, value] : step.env) {
    b.add_times(key.size() + kEntryOverhead, cells).add(interpolated(value, m, cells));
  }
  for (const Expose& e : step.expose) {
    b.add(interpolated(e.name, m, cells))
        .add_times(kEntryOverhead + e.ready.http.value_or("").size(), cells);
  }
  uint64_t fixed = step.name.size() + step.workdir.size() + strings(step.shell) +
                   strings(step.secrets) + strings(step.needs) + strings(step.artifacts);
  for (const auto& [axis, values] : m) {
    fixed += axis.size() + kEntryOverhead + strings(values);
    if (values.empty()) continue;  // no cells at all
    uint64_t value_bytes = 0;
    for (const std::string& v : values) value_bytes += v.size();
    b.add_times(axis.size() + kEntryOverhead, cells).add_times(value_bytes, cells / values.size());
  }
  for (const Cache& c : step.caches) {
    b.add(interpolated(c.key, m, cells));
    for (const std::string& k : c.restore_keys) b.add(interpolated(k, m, cells));
    fixed += kEntryOverhead + strings(c.paths);
  }
  for (const Service& s : step.services) {
    fixed += s.name.size() + s.run.size() + kEntryOverhead +
             (s.ready && s.ready->http ? s.ready->http->size() : 0);
  }
  return b.add_times(fixed, cells).total();
}

std::optional<Diagnostic> check_text(std::string_view text, const std::string& file,
                                     const Limits& limits) {
  if (text.size() > limits.file_bytes) {
    return Diagnostic{file, position_of(text, limits.file_bytes),
                      "the file is larger than " + format_size(limits.file_bytes) + " (" +
                          std::to_string(limits.file_bytes) +
                          " bytes, the limit for a pipeline file): keep long scripts in the "
                          "repository and call them from \"run\""};
  }
  NestingScan scan = scan_nesting(text, limits.depth);
  if (scan.depth > limits.depth) {
    return Diagnostic{file, scan.where,
                      "tables, arrays and dotted keys nest deeper than " +
                          std::to_string(limits.depth) +
                          " levels here (the limit for a pipeline file; a pipeline needs about "
                          "6)"};
  }
  return std::nullopt;
}

bool check_step_tables(const TomlNode& steps, const Step& defaults, const Limits& limits,
                       Diagnostics& diags) {
  size_t n = steps.array.size();
  if (n > limits.expanded_steps) {
    diags.error(steps.array[limits.expanded_steps].pos,
                "step #" + std::to_string(limits.expanded_steps + 1) + ": the file has " +
                    std::to_string(n) + " [[step]] tables " + steps_limit(limits));
    return false;
  }
  uint64_t each = expanded_bytes(defaults);
  uint64_t total = Bytes().add_times(each, n).total();
  if (total <= limits.expanded_bytes) return true;
  size_t first_over = static_cast<size_t>(limits.expanded_bytes / each);  // 0-based
  diags.error(steps.array[first_over].pos,
              "step #" + std::to_string(first_over + 1) + ": [env] and [defaults], copied into "
              "each of the " + std::to_string(n) + " steps, come to " + format_size(total) +
                  " " + bytes_limit(limits));
  return false;
}

void check_limits(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                  const Step& defaults, const StepSource& defaults_src, const Limits& limits,
                  Diagnostics& diags) {
  std::set<std::pair<int, int>> reported;
  check_env(defaults.env, defaults_src.env, SourcePos{1, 1}, limits, reported, diags);
  for (size_t i = 0; i < steps.size(); ++i) {
    check_env(steps[i].env, sources[i].env, sources[i].table, limits, reported, diags);
    if (steps[i].env.size() > limits.env_vars) {
      diags.error(sources[i].table,
                  sources[i].context + ": " + std::to_string(steps[i].env.size()) +
                      " environment variables with [env] and [defaults].env (limit " +
                      std::to_string(limits.env_vars) + " per step)");
    }
  }

  // Totals first, then the error at the step that passes the limit, with the total.
  Bytes step_count, byte_count;
  std::vector<std::pair<uint64_t, uint64_t>> running;  // after each step
  for (const Step& step : steps) {
    step_count.add(combination_count(step.matrix));
    byte_count.add(expanded_bytes(step));
    running.emplace_back(step_count.total(), byte_count.total());
  }
  bool steps_over = step_count.total() > limits.expanded_steps;
  bool bytes_over = byte_count.total() > limits.expanded_bytes;
  for (size_t i = 0; i < steps.size() && (steps_over || bytes_over); ++i) {
    if (steps_over && running[i].first > limits.expanded_steps) {
      diags.error(sources[i].table, sources[i].context + ": with its matrix the pipeline has " +
                                        std::to_string(step_count.total()) + " steps " +
                                        steps_limit(limits));
      steps_over = false;
    }
    if (bytes_over && running[i].second > limits.expanded_bytes) {
      diags.error(sources[i].table,
                  sources[i].context + ": with this step the pipeline's names, scripts and env "
                                       "come to " + format_size(byte_count.total()) + " " +
                      bytes_limit(limits));
      bytes_over = false;
    }
  }
}

}  // namespace boxcar::pipeline
