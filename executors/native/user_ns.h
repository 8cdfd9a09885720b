// User namespace: uid/gid 0 inside is an unprivileged host id range; nobody inside is host root.
#pragma once

#include <sys/types.h>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/native/facility.h"

namespace boxcar::executors::native {

struct IdRange {
  uid_t base = 100000;
  uid_t count = 65536;
};

// Agent side: maps uid/gid 0..count-1 of `pid`'s (new) user namespace to base..base+count-1.
Status write_id_maps(pid_t pid, IdRange ids);
// Agent side: a user namespace with that mapping and no process in it, for idmapped mounts.
Result<unique_fd> make_idmap_userns(IdRange ids);
// Child side, after the maps are written: become uid/gid 0 of the namespace, no extra groups.
Failure become_root();

}  // namespace boxcar::executors::native
