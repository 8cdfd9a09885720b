// GitHead: the branch and commit a local run is on, read from .git without running git.
#pragma once

#include <filesystem>
#include <string>

namespace boxcar::cli {

struct GitHead {
  std::string branch;  // empty when detached or not a repository
  std::string commit;  // empty when unknown (no repository, unborn branch)
  std::string ref;     // "refs/heads/main", or "refs/tags/v1" when detached exactly at a tag
  std::string tag;     // a tag (lightweight, or annotated when packed) naming exactly `commit`
  std::string origin;  // remote "origin"'s url in .git/config, credentials removed; or ""
};

// Reads <dir>/.git/HEAD and the ref it names (loose or packed), the tags, and .git/config's
// origin. Never fails: unknown parts stay empty.
GitHead read_git_head(const std::filesystem::path& dir);

}  // namespace boxcar::cli
