// RuntimeCommand: one run of the OCI runtime's CLI (`runc run`, `runc delete`), waited for.
// Used by the keeper program and, for a dead agent's leftovers, by the executor itself.
#pragma once

#include <string>
#include <vector>

namespace boxcar::executors::oci {

// Runs `argv` (argv[0] a path) with an environment of only PATH and waits for it: stdin and
// stdout /dev/null, stderr `err_fd` (or /dev/null when -1), and `ctl` as fd 3 when >= 0.
// `err_fd` and `ctl` must not be 0-3. Returns the wait status, or -1.
int run_command(const std::vector<std::string>& argv, int err_fd = -1, int ctl = -1);

}  // namespace boxcar::executors::oci
