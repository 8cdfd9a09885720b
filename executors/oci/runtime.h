// Runtime: which OCI runtime binary runs the bundles (runc by default; crun or runsc when
// named, or any path), found once when the executor is made.
// Errors carry the subject "oci_runtime" (the CLI names its flag).
#pragma once

#include <string>

#include "base/result.h"

namespace boxcar::executors::oci {

// `requested` is a name looked up in PATH ("runc", "crun", "runsc") or a path to an
// executable. Returns the absolute path, or an error saying what was looked for, where, and
// what to do (install it, or give its path).
Result<std::string> find_runtime(const std::string& requested);

}  // namespace boxcar::executors::oci
