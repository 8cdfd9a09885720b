// init_files: the file helper (SANDBOXES.md §1.2 item 4). For each Msg::helper record init
// forks a child that does one file operation (executors/file_request.h) inside the sandbox, as
// the sandbox's root with the commands' capability set under the same seccomp filter (command_filter.h's too), not
// dumpable, resolving every path with PathWalk (path_walk.h), and answers on the socket that
// came with the request (file_wire.h). Init never waits for it: its reaper loop collects it.
#pragma once

#include <string>
#include <vector>

#include "executors/native/caps.h"

namespace boxcar::executors::native {

// Init side: forks the helper for the request `body` with `fds` (the reply socket, which stays
// init's to close). A malformed request is answered by the helper with EINVAL.
void start_file_helper(const std::string& body, const std::vector<int>& fds, const CapSet& caps);

}  // namespace boxcar::executors::native
