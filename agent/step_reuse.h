// StepReuse: a re-run of a job's failed steps (docs/api.md "Re-runs"). Which steps run again is
// decided here, after parsing (reused_steps); a reused step is not executed: its outputs that
// survive, its artifacts, come back into its own layer of the workspace from a StepReuse (the
// agent daemon's is agent/daemon/reuse_client.h), so the steps that need it see them as they
// would have in the first run, and it ends `success` with reason "reused from job #N".
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pipeline/pipeline.h"

namespace boxcar::agent {

// By step index: true for a step reused from the job re-run. `previous`: that job's steps'
// final states by (expanded) name. Re-run: a step whose previous state was not "success" or
// that was not there, everything that needs one of those (directly or not), and a step that
// exposes ports when a re-run step needs it (its server must be up for them). Reused: the rest.
std::vector<bool> reused_steps(const pipeline::ExpandedPipeline& pipeline,
                               const std::map<std::string, std::string>& previous);

class StepReuse {
 public:
  virtual ~StepReuse() = default;
  // What a reused step's reason names: "job #12".
  virtual std::string origin() const = 0;
  // Puts step `step`'s artifacts from the job re-run under `into` (a fresh directory of the
  // agent's own: the step's layer, or the shared workspace without layers). `done` is called once
  // on the engine's io thread: the number of files and links put back, or an error ("" when
  // it worked) saying why not.
  virtual void restore(const std::string& step, const std::filesystem::path& into,
                       std::function<void(size_t restored, std::string error)> done) = 0;
};

}  // namespace boxcar::agent
