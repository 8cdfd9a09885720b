// Typed access to one TOML table's keys, reporting every mistake with its position and context.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/duration.h"
#include "pipeline/load.h"
#include "pipeline/toml_tree.h"

namespace boxcar::pipeline {

// Collects the diagnostics of one file.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  void error(SourcePos pos, std::string message);
  const std::string& file() const { return file_; }
  std::vector<Diagnostic>& list() { return list_; }

  // Sorts by position (stable, so errors at one place keep the order they were found in).
  std::vector<Diagnostic> take_sorted();

 private:
  std::string file_;
  std::vector<Diagnostic> list_;
};

// True for [A-Za-z_][A-Za-z0-9_]*: environment variable and matrix axis names.
bool is_identifier(std::string_view s);

// True for [A-Za-z0-9_.-]{1,64}: step and service names.
bool is_step_name(std::string_view s);

// Reads the keys of one table. `context` prefixes every message ("step \"build\"",
// "[defaults]", "step \"build\": resources"); empty for the top level.
// Getters return nullopt both when the key is absent and when it is wrong (then reported).
class TableReader {
 public:
  TableReader(const TomlNode& table, std::string context, Diagnostics& diags);

  // Reports each key not in `known` ("unknown key ... (did you mean ...?)").
  void check_keys(const std::vector<std::string>& known, std::string_view what = "key");

  const TomlNode& node() const { return table_; }
  const std::string& context() const { return context_; }
  Diagnostics& diags() { return diags_; }
  const TomlEntry* entry(std::string_view key) const { return table_.find(key); }
  bool has(std::string_view key) const { return entry(key) != nullptr; }

  // `ctx: message` at pos.
  void error(SourcePos pos, const std::string& message);
  // `ctx: missing required key "key"` at the table itself.
  void missing(std::string_view key);
  // `ctx: "key" must be <expected>, not <kind>` at the value; `what` names the key.
  void wrong_type(const TomlNode& value, std::string_view what, std::string_view expected);

  std::optional<std::string> string(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  // Integers in [min, max]; out of range is reported.
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max);
  // Integer or float, strictly greater than zero.
  std::optional<double> positive_number(std::string_view key);
  std::optional<std::vector<std::string>> strings(std::string_view key, bool allow_single);
  std::optional<Millis> duration(std::string_view key);
  std::optional<uint64_t> size(std::string_view key);
  // One of `choices`, with "did you mean" for a near miss.
  std::optional<std::string> choice(std::string_view key, const std::vector<std::string>& choices);
  // Relative path without "..": workdir, artifacts.
  std::optional<std::string> relative_path(const TomlNode& value, std::string_view what);
  // A nested table (type-checked), or nullptr.
  const TomlNode* table(std::string_view key);

  // Checks a string value against a choice list; used for elements of arrays too.
  bool check_choice(const TomlNode& value, std::string_view what,
                    const std::vector<std::string>& choices);

 private:
  std::string prefix() const;

  const TomlNode& table_;
  std::string context_;
  Diagnostics& diags_;
};

// Why `path` is not a relative path inside the workspace (empty, absolute, or with a ".."),
// naming it `what`; "" when it is one.
std::string relative_path_problem(std::string_view what, std::string_view path);

// `"a", "b" or "c"`: for lists of valid choices in messages.
std::string join_choices(const std::vector<std::string>& choices);

}  // namespace boxcar::pipeline
