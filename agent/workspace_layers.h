// WorkspaceLayers: each step's own writable layer of the job's workspace (DESIGN.md section 3,
// "Each step sees the checkout plus the outputs of the steps it needs").
//
//   <dir>/<step index>/workspace/{upper,work}   the step's writes to /workspace (kept until the
//                                               run ends: dependents stack them)
//   <dir>/<step index>/<name>/{upper,work}      another layered directory of the step's (a cache
//                                               under its home, a sidecar's /workspace)
//
// A step's /workspace is, from the top: its own layer; then, for each step it needs in the order
// of its `needs` (expansions of a matrix step in expansion order), later ones above earlier ones,
// that step's layer over that step's own stack (its needs), each layer once, at its lowest place
// (pipeline/workspace_stack.h: a layer stays above what it was made on); then the step's own
// restored caches, then its needs'; then the checkout. So a dependent sees what its needs saw
// and wrote, and where two needed steps wrote the same path, the one named later in `needs` wins.
//
// Threads: the engine's io thread only. The directory and every layer go with the object.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/spec.h"
#include "pipeline/pipeline.h"

namespace boxcar::agent {

class WorkspaceLayers {
 public:
  // `checkout`: the job's workspace (read-only to steps from now on). `dir`: a directory of the
  // run's outside the checkout, created (0700) if absent, emptied if not (a dead agent's), on a
  // filesystem with user xattrs (ext4, xfs, btrfs, tmpfs on 6.6+): checked here, with an error
  // that says what to do.
  // `remove`: how the destructor removes `dir` (an agent's background removal: a tree of a
  // million files takes seconds); null: at once, on the calling thread.
  using Remover = std::function<void(const std::filesystem::path&)>;
  static Result<std::unique_ptr<WorkspaceLayers>> make(const pipeline::ExpandedPipeline& pipeline,
                                                       std::filesystem::path checkout, std::filesystem::path dir,
                                                       Remover remove = nullptr);
  ~WorkspaceLayers();  // removes `dir` with every layer (never following a link)

  // The step's /workspace for SandboxSpec::layered, its layer made fresh (a retry starts from
  // its needs' outputs again, not from its failed attempt's writes). `caches`: directories
  // restored for this step (agent/cache_store.h), highest first, put between its needs' layers
  // and the checkout and remembered for its dependents' stacks.
  Result<executors::LayeredDir> workspace(size_t step, const std::vector<std::filesystem::path>& caches = {});
  // Another layered directory of the step's at `target` (an absolute path inside the sandbox),
  // named `name` ([a-z][a-z0-9]*, not "workspace") on disk, over `lowers` (highest first) only:
  // a cache under the step's home, a sidecar's /workspace ("service<index>").
  Result<executors::LayeredDir> extra(size_t step, const std::string& name, const std::string& target,
                                      const std::vector<std::filesystem::path>& lowers);

  // A read-only view of the step's layered directory `name` as the step left it (or, with
  // with_own = false, as it found it: for ${hash:...} of a cache key before it starts): an
  // overlayfs mount that is never attached anywhere (fsmount), so it goes with the descriptor,
  // also when the agent dies. Use it as a directory fd, or by path as "/proc/self/fd/<fd>".
  Result<unique_fd> view(size_t step, const std::string& name = "workspace", bool with_own = true) const;

  // <dir>/<step>/workspace/upper: what the step wrote (a whiteout marks what it deleted).
  std::filesystem::path upper(size_t step, const std::string& name = "workspace") const;

 private:
  struct Impl;
  explicit WorkspaceLayers(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxcar::agent
