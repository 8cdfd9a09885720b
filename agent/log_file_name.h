// The file a step attempt's log is written to, inside whatever log directory the run has (the run
// directory of `boxcar run`, a job's scratch directory on an agent).
#pragma once

#include <string>
#include <string_view>

namespace boxcar::agent {

// A step name as a file name: [A-Za-z0-9_.=-] kept, everything else '_'; never empty, never
// starting with '.'.
std::string safe_file_name(std::string_view name);

// "<safe name>.log", or "<safe name>.attemptN.log" for a retry.
std::string log_file_name(std::string_view step_name, int attempt);

}  // namespace boxcar::agent
