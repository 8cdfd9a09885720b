// Finding, reading and validating the pipeline file for the CLI's commands.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "pipeline/pipeline.h"

namespace boxcar::cli {

struct LoadedPipeline {
  std::filesystem::path path;
  std::string text;
  pipeline::Pipeline pipeline;
};

// `file` when given (relative to the current directory), else `.boxcar.toml`, then
// `boxcar.toml` in `dir`. Prints errors to stderr (a missing file in one line; an invalid
// pipeline as file:line:col errors with the source line and a caret) and returns nullopt.
std::optional<LoadedPipeline> load_pipeline_file(const std::optional<std::string>& file,
                                                 const std::filesystem::path& dir);

}  // namespace boxcar::cli
