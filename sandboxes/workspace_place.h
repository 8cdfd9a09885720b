// Placing a tree the agent made (a git checkout) into a sandbox's /workspace, from the host,
// without ever following a path the sandbox controls: every directory on the way is opened
// beneath its parent's fd with no symlink allowed (base/beneath.h), missing ones are made owned
// by the workspace's owner (what the idmapped mount shows as the sandbox's root), and the tree
// arrives by one renameat2 into the last fd. A symlink the sandbox planted at the destination is
// replaced (with `replace`), never followed.
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"

namespace boxcar::sandboxes {

// Moves the directory `staged` (outside the sandbox's view, on the workspace's filesystem) to
// `rel` ("src/app": no "." or ".." segment, no "//", as sandbox_path() makes sure) below the
// host directory `workspace`, chowning it first to the workspace's owner. An existing empty
// directory at `rel` is replaced; anything else there (a non-empty directory, a file, a
// symlink) is an Error with err EEXIST unless `replace`, when it is swapped out (RENAME_EXCHANGE)
// and removed from `staged`'s place. A symlink or a non-directory on the way: err ELOOP or
// ENOTDIR. Blocking: call it off the io_context.
Status place_in_workspace(const std::filesystem::path& workspace, const std::string& rel,
                          const std::filesystem::path& staged, bool replace);

}  // namespace boxcar::sandboxes
