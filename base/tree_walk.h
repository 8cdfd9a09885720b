// TreeWalk: visits every entry of a directory tree with one directory open at a time, so a
// tree of any depth (a step can nest directories a million deep) needs neither a deep stack nor
// one fd per level. Links are never followed and no other mount is entered (a bind mount of the
// same filesystem neither: mount ids are compared, not only devices). Going back up
// through ".." is checked against the device and inode seen on the way down, so a tree changed
// while it is walked can never lead the walk outside it. What measures a workspace
// (agent/daemon/workspace_watch.h), what removes one (agent/daemon/background_removal.h) and
// what removes an OCI sandbox's bundle (executors/oci) all walk with it.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <functional>

#include "base/result.h"

namespace boxcar {

struct TreeVisitor {
  // Every entry below the root, a directory before anything it holds. `st` is its lstat when
  // the walk was asked for stats, else only st_mode's type bits are set. Returning false stops
  // the walk. A directory that is a mount point (another filesystem, or a bind) is seen but not
  // entered.
  std::function<bool(int dirfd, const char* name, const struct stat& st)> entry;
  // A directory (never the root) after everything it holds was visited: `parent` is its
  // parent's fd. How a removal deletes the directories once they are empty.
  std::function<void(int parent, const char* name)> left;
};

// Walks what `root` holds (not the root itself). Ok when the walk reached its end, also when
// `root` does not exist; an Error when a visitor stopped it ("stopped") or the tree changed
// under it in a way it cannot follow.
Status walk_tree(const std::filesystem::path& root, const TreeVisitor& visitor, bool with_stats);

// Removes `tree` and everything below it (walk_tree: no link followed, no mount entered, any
// depth); `stop` makes it return early. True when it is gone: a mount below it (and the
// directories above that mount) stays, and so does everything the mount shows.
bool remove_tree(const std::filesystem::path& tree, const std::atomic<bool>& stop);

}  // namespace boxcar
