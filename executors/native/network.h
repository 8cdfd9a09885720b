// Network namespaces: one per job (loopback up, no route out) shared by its steps; a fresh
// empty one per step for network = "none"; the host's only when the agent allows it.
#pragma once

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/native/facility.h"
#include "executors/spec.h"

namespace boxcar::executors::native {

// Agent side: a new network namespace with loopback up, unprivileged low ports and ping
// allowed. Owned by the host's user namespace, so no step can reconfigure it.
Result<unique_fd> make_job_netns();
// First child, before the user namespace: joins the job's network namespace (mode job).
Failure enter_job_network(NetworkMode mode, int netns_fd);
// Inside a fresh network namespace (mode none): brings loopback up.
Failure loopback_up();

}  // namespace boxcar::executors::native
