// Reading a step's directory for its caches (a key's ${hash:...}, a save): every entry below a
// place of a directory fd with its relative path, one open directory per level, never following
// a link or entering another mount, to a bounded depth.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <functional>
#include <string>

#include "base/result.h"

namespace boxcar::agent {

// Directories deeper than this below a cache path are refused: one fd is open per level.
inline constexpr size_t kMaxCacheTreeDepth = 256;

// `path` is relative to the walk's root fd ("node_modules/a/b"); `dirfd` holds `name`; `st` is
// its lstat. A visitor returns an Error to stop the walk with it; `descend` (directories only)
// says whether to enter it (default true).
using CacheTreeVisitor = std::function<Status(const std::string& path, int dirfd, const char* name,
                                              const struct stat& st, bool& descend)>;

// Visits `rel` itself ("" for the root: not visited) and, when it is a directory, everything
// below it, a directory before its contents, in no particular order. `rel` is opened with
// open_beneath (no link on the way, no `..` out); a missing `rel` is ok with nothing visited.
Status walk_cache_tree(int root, const std::string& rel, const CacheTreeVisitor& visit);

}  // namespace boxcar::agent
