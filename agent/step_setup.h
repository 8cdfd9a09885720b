// StepSetup: everything an attempt needs before it starts, worked out from the step, the
// operator's limits and the run's images: the sandbox spec, the environment, the user its
// commands run as, and a sandbox and a command for each [[step.service]] that has an image.
// Pure data, no I/O: the scheduler makes one per attempt.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent/image_source.h"
#include "agent/step_limits.h"
#include "base/result.h"
#include "executors/executor.h"
#include "executors/spec.h"
#include "pipeline/pipeline.h"

namespace boxcar::agent {

struct SchedulerOptions;

// A [[step.service]] with an image: a sandbox of its own, on the job's network, and what runs in it.
struct Sidecar {
  executors::SandboxSpec spec;
  executors::ExecRequest request;
};

struct StepSetup {
  // An Error (with `subject` naming the facility: "resources", "image") ends the attempt as a
  // setup error before anything starts.
  Result<executors::SandboxSpec> spec = executors::SandboxSpec{};
  std::vector<std::string> env;
  std::string user;  // the image's User; "" for host
  std::vector<std::string> shell;  // the script is appended: the step's own, or agent/step_shell.h's pick
  std::map<size_t, Result<Sidecar>> sidecars;  // by index in step.services
};

// The references a pipeline's steps and services name, other than "host", each once.
std::vector<std::string> image_refs(const pipeline::ExpandedPipeline& pipeline);

// `images` may be null when no step has an image.
StepSetup step_setup(const pipeline::ExpandedPipeline& pipeline, const pipeline::ConcreteStep& step,
                     const SchedulerOptions& options, const std::string& workspace_path,
                     const RunImages* images);

// The environment a step sees: CI=true, BOXCAR_* variables, a standard PATH, HOME, the step's
// env and the secrets it declares; for an image, its Env is the base (PATH from it; no HOME or
// LANG of ours: HOME comes from the image's passwd entry). Never the agent's own environment.
std::vector<std::string> step_environment(const pipeline::ConcreteStep& step, const SchedulerOptions& options,
                                          const std::string& workspace_path,
                                          const images::ImageConfig* image = nullptr);

}  // namespace boxcar::agent
