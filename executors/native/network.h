// Network namespaces: one per job shared by its steps (the agent's, with its route out, or one of
// the executor's own with loopback up and no route out); a fresh
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
// Agent side: the job's namespace made by the agent (JobSpec::netns_fd, borrowed): a dup of it,
// once it is checked to be a network namespace.
Result<unique_fd> adopt_job_netns(int netns_fd);
// First child, before the user namespace: joins the job's network namespace (mode job).
Failure enter_job_network(NetworkMode mode, int netns_fd);
// Inside a fresh network namespace (mode none): brings loopback up.
Failure loopback_up();

}  // namespace boxcar::executors::native
