// The server's data directory: private to its owner (the directory 0700, the database, WAL,
// blobs and token 0600), checked at every start, and the admin API token generated in it.
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"

namespace boxcar::cli {

// Creates `dir` 0700, or narrows an existing one that other users could enter or read (with a
// warning on stderr saying what it was). Errors: not a directory, cannot be made or chmodded.
Status prepare_data_dir(const std::filesystem::path& dir);

// Narrows an existing file that other users could read or write to 0600, with a warning; a
// missing file is fine (the umask makes it 0600 when it is created).
Status narrow_file(const std::filesystem::path& file);

struct GeneratedToken {
  std::string token;
  bool created = false;  // false: the one from an earlier start, reused
};

// The admin API token in `file`: read when it exists (narrowed to 0600 first), else a fresh
// random one written there with mode 0600.
Result<GeneratedToken> generated_api_token(const std::filesystem::path& file);

}  // namespace boxcar::cli
