// The limits of a repository's pipeline file as flags of `boxcar serve` and `boxcar agent`
// (pipeline::Limits; docs/pipeline.md, "Limits").
#pragma once

#include <vector>

#include "base/result.h"
#include "cli/flags.h"
#include "pipeline/limits.h"

namespace boxcar::cli {

// For the usage text of both commands.
inline constexpr const char* kPipelineLimitsUsage =
    "  --max-pipeline-steps N, --max-pipeline-bytes SIZE, --max-pipeline-depth N,\n"
    "  --max-pipeline-file SIZE: what a repository's pipeline file may ask for: steps and\n"
    "  bytes after matrix expansion, nesting depth, file size (defaults 1000, 16MiB, 32,\n"
    "  1MiB); a file over one fails its job with a file:line:col error\n";

std::vector<FlagSpec> pipeline_limit_flag_specs();

// Sets `limits` from the flags given; an Error names the flag, the value and what it takes.
Status read_pipeline_limit_flags(const ParsedFlags& flags, pipeline::Limits& limits);

}  // namespace boxcar::cli
