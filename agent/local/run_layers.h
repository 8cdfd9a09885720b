// RunLayers: where `boxcar run` keeps its steps' workspace layers (agent/workspace_layers.h):
// <base>/<run-id>/, outside the user's repository (beside the image cache), held with a lock
// file so that the next run removes what a run killed with SIGKILL left.
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::agent {

class RunLayers {
 public:
  // Removes the layer directories under `base` whose run is gone (their lock is free), then
  // takes <base>/<run_id>.lock. The directory itself is made and removed by WorkspaceLayers;
  // the destructor removes it too (a run that ended before it made one), and the lock file.
  static Result<RunLayers> claim(const std::filesystem::path& base, const std::string& run_id);
  RunLayers(RunLayers&&) = default;
  RunLayers& operator=(RunLayers&&) = default;
  ~RunLayers();

  const std::filesystem::path& dir() const { return dir_; }

 private:
  RunLayers() = default;
  std::filesystem::path dir_;
  std::filesystem::path lock_path_;
  unique_fd lock_;
};

}  // namespace boxcar::agent
