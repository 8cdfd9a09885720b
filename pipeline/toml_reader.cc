#include "pipeline/toml_reader.h"

#include <algorithm>
#include <limits>

#include "base/size.h"
#include "base/suggest.h"

namespace boxcar::pipeline {
namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  auto match = closest_match(word, candidates);
  return match ? " (did you mean " + quoted(*match) + "?)" : "";
}

// The size regex of the schema, ^[0-9]+(\.[0-9]+)?<unit>?$, is stricter than parse_size about
// the number ("1." and ".5" are refused there); keep the two in agreement.
bool size_number_is_strict(std::string_view s) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  size_t dot = s.find('.');
  return dot == std::string_view::npos || (dot + 1 < s.size() && s[dot + 1] >= '0' &&
                                           s[dot + 1] <= '9');
}

bool has_dotdot_component(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

void Diagnostics::error(SourcePos pos, std::string message) {
  list_.push_back(Diagnostic{file_, pos, std::move(message)});
}

std::vector<Diagnostic> Diagnostics::take_sorted() {
  std::stable_sort(list_.begin(), list_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.pos.line != b.pos.line) return a.pos.line < b.pos.line;
    return a.pos.column < b.pos.column;
  });
  return std::move(list_);
}

bool is_identifier(std::string_view s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (!alpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

bool is_step_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  });
}

std::string join_choices(const std::vector<std::string>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
    out += quoted(choices[i]);
  }
  return out;
}

TableReader::TableReader(const TomlNode& table, std::string context, Diagnostics& diags)
    : table_(table), context_(std::move(context)), diags_(diags) {}

std::string TableReader::prefix() const { return context_.empty() ? "" : context_ + ": "; }

void TableReader::error(SourcePos pos, const std::string& message) {
  diags_.error(pos, prefix() + message);
}

void TableReader::missing(std::string_view key) {
  error(table_.pos, "missing required key " + quoted(key));
}

void TableReader::wrong_type(const TomlNode& value, std::string_view what,
                             std::string_view expected) {
  error(value.pos, quoted(what) + " must be " + std::string(expected) + ", not " +
                       kind_name(value.kind));
}

void TableReader::check_keys(const std::vector<std::string>& known, std::string_view what) {
  for (const TomlEntry& e : table_.table) {
    if (std::find(known.begin(), known.end(), e.key) != known.end()) continue;
    error(e.key_pos, "unknown " + std::string(what) + " " + quoted(e.key) +
                         did_you_mean(e.key, known));
  }
}

std::optional<std::string> TableReader::string(std::string_view key) {
  const TomlEntry* e = entry(key);
  if (!e) return std::nullopt;
  if (!e->value.is_string()) {
    wrong_type(e->value, key, "a string");
    return std::nullopt;
  }
  return e->value.str;
}

std::optional<bool> TableReader::boolean(std::string_view key) {
  const TomlEntry* e = entry(key);
  if (!e) return std::nullopt;
  if (e->value.kind != TomlNode::Kind::boolean) {
    wrong_type(e->value, key, "a boolean");
    return std::nullopt;
  }
  return e->value.boolean;
}

std::optional<int64_t> TableReader::integer(std::string_view key, int64_t min, int64_t max) {
  const TomlEntry* e = entry(key);
  if (!e) return std::nullopt;
  if (e->value.kind != TomlNode::Kind::integer) {
    wrong_type(e->value, key, "an integer");
    return std::nullopt;
  }
  int64_t v = e->value.integer;
  if (v < min || v > max) {
    std::string range = max == std::numeric_limits<int64_t>::max()
                            ? "at least " + std::to_string(min)
                            : "between " + std::to_string(min) + " and " + std::to_string(max);
    error(e->value.pos, quoted(key) + " must be " + range + ", not " + std::to_string(v));
    return std::nullopt;
  }
  return v;
}

std::optional<double> TableReader::positive_number(std::string_view key) {
  const TomlEntry* e = entry(key);
  if (!e) return std::nullopt;
  double v;
  if (e->value.kind == TomlNode::Kind::integer) {
    v = static_cast<double>(e->value.integer);
  } else if (e->value.kind == TomlNode::Kind::floating) {
    v = e->value.floating;
  } else {
    wrong_type(e->value, key, "a number");
    return std::nullopt;
  }
  if (!(v > 0) || v > 1e6) {
    error(e->value.pos, quoted(key) + " must be a number greater than 0");
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<std::string>> TableReader::strings(std::string_view key,
                                                             bool allow_single) {
  const TomlEntry* e = entry(key);
  if (!e) return std::nullopt;
  if (allow_single && e->value.is_string()) return std::vector<std::string>{e->value.str};
  if (!e->value.is_array()) {
    wrong_type(e->value, key, allow_single ? "a string or an array of strings" : "an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const TomlNode& item : e->value.array) {
    if (!item.is_string()) {
      error(item.pos, quoted(key) + " must contain strings, not " + kind_name(item.kind));
      ok = false;
      continue;
    }
    out.push_back(item.str);
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<Millis> TableReader::duration(std::string_view key) {
  auto text = string(key);
  if (!text) return std::nullopt;
  auto d = parse_duration(*text);
  if (!d) {
    error(entry(key)->value.pos, quoted(key) + " must be a duration like \"90s\", \"10m\" or " +
                                     "\"1h30m\", not " + quoted(*text));
  }
  return d;
}

std::optional<uint64_t> TableReader::size(std::string_view key) {
  auto text = string(key);
  if (!text) return std::nullopt;
  auto s = size_number_is_strict(*text) ? parse_size(*text) : std::nullopt;
  if (!s) {
    error(entry(key)->value.pos,
          quoted(key) + " must be a size like \"512MiB\" or \"2GiB\", not " + quoted(*text));
  }
  return s;
}

bool TableReader::check_choice(const TomlNode& value, std::string_view what,
                               const std::vector<std::string>& choices) {
  if (!value.is_string()) {
    wrong_type(value, what, "a string");
    return false;
  }
  if (std::find(choices.begin(), choices.end(), value.str) != choices.end()) return true;
  error(value.pos, quoted(what) + " must be " + join_choices(choices) + ", not " +
                       quoted(value.str) + did_you_mean(value.str, choices));
  return false;
}

std::optional<std::string> TableReader::choice(std::string_view key,
                                               const std::vector<std::string>& choices) {
  const TomlEntry* e = entry(key);
  if (!e || !check_choice(e->value, key, choices)) return std::nullopt;
  return e->value.str;
}

std::optional<std::string> TableReader::relative_path(const TomlNode& value,
                                                      std::string_view what) {
  if (!value.is_string()) {
    wrong_type(value, what, "a string");
    return std::nullopt;
  }
  std::string problem = relative_path_problem(what, value.str);
  if (problem.empty()) return value.str;
  error(value.pos, problem);
  return std::nullopt;
}

std::string relative_path_problem(std::string_view what, std::string_view p) {
  if (p.empty()) return quoted(what) + " must not be empty";
  if (p[0] == '/') return quoted(what) + " must be relative to the workspace, not " + quoted(p);
  if (has_dotdot_component(p)) {
    return quoted(what) + " must stay inside the workspace (no \"..\"), not " + quoted(p);
  }
  return "";
}

const TomlNode* TableReader::table(std::string_view key) {
  const TomlEntry* e = entry(key);
  if (!e) return nullptr;
  if (!e->value.is_table()) {
    wrong_type(e->value, key, "a table");
    return nullptr;
  }
  return &e->value;
}

}  // namespace boxcar::pipeline
