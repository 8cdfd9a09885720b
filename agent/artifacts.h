// Artifact collection: copies the files a step declares (globs relative to the workspace) out of
// the workspace without ever following a link out of it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"

namespace boxcar::agent {

struct ArtifactLimits {
  uint64_t per_file = 1ull << 30;
  uint64_t total = 4ull << 30;
};

struct CollectedArtifact {
  std::string path;  // relative to the workspace
  uint64_t bytes = 0;
  bool symlink = false;     // stored as a link, never followed
  std::string link_target;  // a link's target text (it resolves to another collected path)
};

struct CollectResult {
  std::vector<CollectedArtifact> files;
  std::vector<std::string> warnings;  // skipped entries (FIFOs, devices, over the limit), one line each
  std::vector<std::string> refused;   // links not kept (pointing outside the set), one line each
};

// Matches `globs` against the workspace tree and copies every match to `dest` (same relative
// path). Directories are walked with O_NOFOLLOW|O_DIRECTORY fds relative to their parent and
// files opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so a symlink or a `..`
// never leads out of the workspace. A symlink is copied as a symlink (its target text only)
// when its target, read from the link's directory with the set's own links expanded, is a
// file or directory this call also collected (`libx.so -> libx.so.1`); a link that is absolute,
// leaves the workspace, dangles or names anything not collected is refused (CollectResult::
// refused), so a kept link never leads out of the collected set. FIFOs, sockets and devices are skipped with a warning. A file over `limits.per_file`, or one
// that would take the total over `limits.total`, is skipped with a warning. `total_used` is
// what earlier steps of the run already stored; it is updated.
Result<CollectResult> collect_artifacts(const std::filesystem::path& workspace,
                                        const std::vector<std::string>& globs,
                                        const std::filesystem::path& dest,
                                        const ArtifactLimits& limits, uint64_t& total_used);
// The same into directory fd `dest_dir`: for a destination inside the workspace (`boxcar run`'s
// run directory), opened before any step ran, so no step can redirect it with a symlink.
Result<CollectResult> collect_artifacts(const std::filesystem::path& workspace,
                                        const std::vector<std::string>& globs, int dest_dir,
                                        const ArtifactLimits& limits, uint64_t& total_used);

}  // namespace boxcar::agent
