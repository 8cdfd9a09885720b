// The passes of parse_pipeline: reading steps and their tables, then the checks across steps.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pipeline/pipeline.h"
#include "pipeline/toml_reader.h"

namespace boxcar::pipeline {

// Where the parts of one step are written, for the checks that come after reading.
struct StepSource {
  SourcePos table;                         // the [[step]] header
  SourcePos name;                          // the name's value (table when absent)
  std::vector<SourcePos> needs;            // parallel to Step::needs
  std::map<std::string, SourcePos> text;   // "run", "image", "name" -> value position
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

// validate_needs.cc: unique names, needs that name existing steps (not themselves), no cycles.
void check_needs(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                 Diagnostics& diags);

// matrix.cc: ${matrix.x} references name axes of the step; expanded names are unique.
void check_matrix(const std::vector<Step>& steps, const std::vector<StepSource>& sources,
                  Diagnostics& diags);

}  // namespace boxcar::pipeline
