// The step limit flags of `boxcar run`, `agent` and `serve`: what a step without `resources`
// gets (--default-memory, --default-pids, --default-cpus, --default-tmp), what no step may ask
// past (--max-memory, --max-pids, --max-cpus, --max-tmp) and --max-preview-ttl. Parsed and
// checked in one place, so the three commands agree.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "agent/step_limits.h"
#include "base/result.h"
#include "cli/flags.h"

namespace boxcar::cli {

// For the commands' usage texts.
inline constexpr const char* kStepLimitsUsage =
    "  step limits (a step's `resources` may ask up to the --max-* ceilings; more is an error):\n"
    "  --default-memory SIZE (4GiB) --default-pids N (4096) --default-cpus N (the machine's)\n"
    "  --default-tmp SIZE (1GiB) --max-memory SIZE (the machine's) --max-pids N (32768)\n"
    "  --max-cpus N (the machine's) --max-tmp SIZE (the machine's memory)\n"
    "  --max-preview-ttl DURATION (2h; a longer preview_ttl is cut to it)\n"
    "  --max-image-write SIZE (10GiB): what a step in an image may write to its root (it gets\n"
    "  \"no space left on device\" past it); 0 for no limit\n";

std::vector<FlagSpec> step_limit_flag_specs();
// `specs` and the step limit flags: what a command passes to parse_flags.
std::vector<FlagSpec> with_step_limit_flags(std::vector<FlagSpec> specs);

// The limits the flags give, on top of agent::StepLimits' defaults. Errors name the flag and
// what it takes: a malformed or out-of-range value, a --default-* over its --max-*. A --max-*
// under the default lowers the default with it.
Result<agent::StepLimits> read_step_limits(const ParsedFlags& flags);

// --max-image-write: nullopt when absent (the executor's default), 0 for no limit, else a
// size of at least 16MiB (an ext4 smaller than that leaves a step almost nothing).
Result<std::optional<uint64_t>> read_max_image_write(const ParsedFlags& flags);

}  // namespace boxcar::cli
