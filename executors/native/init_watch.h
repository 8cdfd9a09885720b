// init_watch: the watch helper (SANDBOXES.md §2.5). For each Msg::watch record init forks a
// long-lived child that watches one directory (and, when recursive, every directory below it,
// adding the ones made later itself) with inotify, inside the sandbox, as the sandbox's root
// under the commands' capability set and seccomp filter (helper_prelude.h), the path resolved
// with PathWalk (path_walk.h) and every directory below opened one component at a time with
// O_NOFOLLOW. It writes watch_wire.h records to the socket that came with the request until the
// directory goes, the agent closes the socket or kills it, or the sandbox ends.
#pragma once

#include <string>
#include <vector>

#include "executors/native/caps.h"

namespace boxcar::executors::native {

// Init side: forks the helper for `body` with `fds` (the socket, which stays init's to close).
void start_watch_helper(const std::string& body, const std::vector<int>& fds, const CapSet& caps);

}  // namespace boxcar::executors::native
