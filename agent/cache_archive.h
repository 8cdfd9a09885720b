// A cache entry as a tar, for the server that keeps entries so another agent can restore them:
// pack_cache_entry writes one (plain pax tar of workspace/ and home/); CacheStore::unpack reads
// one with images/unpack.h's hostile-tar rules.
#pragma once

#include <filesystem>

#include "base/result.h"

namespace boxcar::agent {

// Writes the tar of entry directory `entry` (a CacheHit's workspace/.. ) to `out_fd`: directories,
// regular files and links (their text) under workspace/ and home/, owners 0, modes as kept.
// Nothing is followed; anything else is left out.
Status pack_cache_entry(const std::filesystem::path& entry, int out_fd);

// Reads the tar at `fd` (a file) through, refusing a name with a ".wh." part (unpack_layer would
// take it as an image layer's whiteout and delete or hide something), then seeks back to 0.
Status check_cache_tar(int fd);

}  // namespace boxcar::agent
