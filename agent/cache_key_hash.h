// ${hash:GLOB[,GLOB...]} of a cache key: the SHA-256 of the files the globs match in a step's
// workspace as the step finds it (WorkspaceLayers::view with_own = false), never following a link.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace boxcar::agent {

// A key is made before the step starts, so a repository cannot make it cost much (docs/pipeline.md
// "Limits"): files hashed, their bytes, and entries looked at to find them.
struct CacheHashLimits {
  size_t files = 10'000;
  uint64_t bytes = 1ull << 30;
  size_t entries = 1'000'000;
};

// Lowercase hex SHA-256 over, for each regular file matched by any glob (base/glob.h) in path
// order, its path, its size and its contents. Links and other non-regular files never match. A
// glob is walked from its literal leading directories ("src/**/*.lock" from src/). An error over a
// limit names it and the globs.
Result<std::string> hash_cache_globs(int workspace, const std::vector<std::string>& globs,
                                     const CacheHashLimits& limits = {});

}  // namespace boxcar::agent
