#include "base/workspace_usage.h"

#include <unordered_set>

#include "base/size.h"
#include "base/tree_walk.h"

namespace boxcar {

Result<WorkspaceUsage> measure_workspace(const std::filesystem::path& dir, const WorkspaceLimits& limits,
                                         const std::function<bool()>& keep_going) {
  return measure_workspace(std::vector<std::filesystem::path>{dir}, limits, keep_going);
}

Result<WorkspaceUsage> measure_workspace(const std::vector<std::filesystem::path>& dirs, const WorkspaceLimits& limits,
                                         const std::function<bool()>& keep_going) {
  WorkspaceUsage usage;
  std::unordered_set<ino_t> linked;  // files with more than one name: counted once
  bool cancelled = false;
  TreeVisitor v;
  v.entry = [&](int, const char*, const struct stat& st) {
    ++usage.inodes;
    if (S_ISDIR(st.st_mode) || st.st_nlink < 2 || linked.insert(st.st_ino).second) {
      usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    if (!over_limit(usage, limits).empty()) return false;
    if ((usage.inodes & 1023) == 0 && keep_going && !keep_going()) {
      cancelled = true;
      return false;
    }
    return true;
  };
  for (const auto& dir : dirs) {
    Status walked = walk_tree(dir, v, /*with_stats=*/true);
    if (cancelled) return Error{"stopped", ECANCELED};
    if (!over_limit(usage, limits).empty()) break;
    // A directory not made yet (a job's layers before its first step) holds nothing.
    if (!walked.ok() && walked.error().err != ENOENT) return walked.error();
  }
  return usage;
}

std::string over_limit(const WorkspaceUsage& usage, const WorkspaceLimits& limits) {
  if (limits.bytes > 0 && usage.bytes > limits.bytes) {
    return "workspace over its " + format_size(limits.bytes) + " limit";
  }
  if (limits.inodes > 0 && usage.inodes > limits.inodes) {
    return "workspace over its limit of " + std::to_string(limits.inodes) +
           " files and directories";
  }
  return {};
}

}  // namespace boxcar
