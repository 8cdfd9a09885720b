// git_readonly: the workspace's git metadata, read-only inside every step, so that no step can
// change what the host's git will run (core.fsmonitor, hooks, a repointed gitdir).
#pragma once

#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "executors/native/facility.h"

namespace boxcar::executors::native {

// The paths, relative to the workspace, to make read-only: ".git" (a directory, or the file of
// a worktree or submodule checkout; `.git/modules` and `.git/worktrees` are inside it), and for
// each submodule listed in .gitmodules (recursively) its `<path>/.git`, or `<path>` itself when
// the submodule is not checked out (so that no `.git` can be planted there). `workspace` is an
// O_PATH fd of the workspace; nothing is resolved through a symlink or outside it.
std::vector<std::string> git_metadata_paths(int workspace);

// Child side, in the step's mount namespace, with the workspace mounted at `workspace`: binds
// each of git_metadata_paths read-only over itself (open_tree + mount_setattr + move_mount on
// fds opened without following symlinks). A workspace without `.git` has nothing to protect;
// a `.git` that is a symlink fails (ELOOP): it cannot be protected without following it.
Failure make_git_read_only(const std::string& workspace);

}  // namespace boxcar::executors::native
