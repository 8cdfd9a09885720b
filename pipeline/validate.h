// The passes of parse_pipeline: reading steps and their tables, then the checks across steps.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pipeline/limits.h"
#include "pipeline/load.h"
#include "pipeline/pipeline.h"
#include "pipeline/toml_reader.h"

namespace boxcar::pipeline {

// Where the parts of one step are written, for the checks that come after reading.
struct StepSource {
  SourcePos table;                         // the [[step]] header
  SourcePos name;                          // the name's value (table when absent)
  std::vector<SourcePos> needs;            // parallel to Step::needs
  std::map<std::string, SourcePos> text;   // "run", "image", "name", "workdir", "network" -> value position
  std::map<std::string, SourcePos> env;    // env name -> value position (any layer)
  std::string context;                     // `step "build"` or `step #3`
};

// Reads the keys of the `number`th (1-based) [[step]] onto `step`, which starts as the
// defaults, so env layers and resources merge per key.
void read_step(const TomlNode& table, int number, Step& step, StepSource& src,
               Diagnostics& diags);

// Reads [defaults] onto `step`, refusing the keys that cannot have a default.
void read_defaults(const TomlNode& table, Step& step, StepSource& src, Diagnostics& diags);

// An env table: names must be identifiers, values strings. Adds to `env` (later layers win).
void read_env(TableReader& env_table, EnvMap& env, std::map<std::string, SourcePos>& positions);

// validate_step_tables.cc: the nested tables of a step.
std::optional<When> read_when(TableReader& step);
void read_resources(TableReader& step, Resources& resources);
std::optional<ReadyCheck> read_ready(TableReader& owner);
std::vector<Service> read_services(TableReader& step);
std::vector<Expose> read_expose(TableReader& step, const std::string& step_name);
std::vector<Cache> read_caches(TableReader& step);

// validate_needs.cc: unique names, needs that name existing steps (not themselves), no cycles.
void check_needs(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                 Diagnostics& diags);

// matrix.cc: ${matrix.x} references name axes of the step; expanded names are unique; each
// expansion's workdir stays in the workspace and its images pass `image_check`; a service
// with an image is on the job's network.
void check_matrix(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                  const ImageCheck& image_check, Diagnostics& diags);

// limits.cc: the checks that need only the text, made before toml++ sees it: its size, then
// its nesting depth (scan_nesting). The error points where the limit is passed.
std::optional<Diagnostic> check_text(std::string_view text, const std::string& file,
                                     const Limits& limits);

// limits.cc: before the [[step]] tables are read, each onto a copy of `defaults`: their
// number and those copies against the expansion limits. False (reported) when reading them
// would already pass one.
bool check_step_tables(const TomlNode& steps, const Step& defaults, const Limits& limits,
                       Diagnostics& diags);

// limits.cc: env values and counts, then steps and bytes after matrix expansion.
void check_limits(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                  const Step& defaults, const StepSource& defaults_src, const Limits& limits,
                  Diagnostics& diags);

}  // namespace boxcar::pipeline
