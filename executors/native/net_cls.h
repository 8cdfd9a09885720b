// net_cls: the cgroup v1 hierarchy whose class ids tag a step's sockets, so the job network's
// nftables rules (`meta cgroup`) tell steps apart (network/job_network.h). It has no cgroup v2
// counterpart: hybrid hosts often leave it unmounted, and a pure v2 host can still mount it.
#pragma once

#include <string>

#include "base/result.h"

namespace boxcar::executors::native {

// Where boxcar mounts the hierarchy when the machine has no mount of it.
inline constexpr const char* kNetClsMountPoint = "/run/boxcar/cgroup/net_cls";

// The mount point of the net_cls hierarchy: kNetClsMountPoint when it is mounted there, else the
// machine's own under /sys/fs/cgroup (alone or with net_prio), else one made at kNetClsMountPoint. An Error saying why when the
// kernel has no net_cls or it cannot be mounted.
Result<std::string> net_cls_mount();

}  // namespace boxcar::executors::native
