// GitHead: the branch and commit a local run is on, read from .git without running git.
#pragma once

#include <filesystem>
#include <string>

namespace boxcar::cli {

struct GitHead {
  std::string branch;  // empty when detached or not a repository
  std::string commit;  // empty when unknown (no repository, unborn branch)
  std::string origin;  // [remote "origin"] url of .git/config; empty when none
};

// Reads <dir>/.git/HEAD and the ref it names (loose or packed). Never fails: unknown parts
// stay empty.
GitHead read_git_head(const std::filesystem::path& dir);

}  // namespace boxcar::cli
