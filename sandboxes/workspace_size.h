// The bytes a sandbox's /workspace holds on the host's disk (GET /metrics disk_bytes).
#pragma once

#include <cstdint>
#include <filesystem>

namespace boxcar::sandboxes {

// Allocated blocks of every file below `dir`, hard links counted once per walk. The sandbox
// controls the tree, so the walk never follows a link (each directory is opened with O_NOFOLLOW
// relative to its parent's fd), never leaves the filesystem, and stops after kMaxEntries.
uint64_t workspace_size(const std::filesystem::path& dir);

inline constexpr uint64_t kWorkspaceSizeMaxEntries = 1'000'000;

}  // namespace boxcar::sandboxes
