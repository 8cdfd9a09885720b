// StepLimits: what the operator lets one step use (DESIGN.md section 4, "Limits from
// resources"): the defaults a step that names no `resources` gets, the ceilings no step may ask
// past, the size of /dev/shm, and how long a preview may stay up after its pipeline. And the one
// mapping from a step's `resources` to its sandbox's limits: the scheduler applies it to every
// step, and `boxcar run` and the job runner check a whole pipeline with it before any step runs.
//
// A step asking for more than a ceiling is an error, not clamped: a step that asked for 8 GiB
// and silently got 4 would fail later as `oom`, far from the cause. A preview_ttl over its
// ceiling is clamped, with a notice: a preview closing early harms nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "base/duration.h"
#include "base/result.h"
#include "executors/spec.h"
#include "pipeline/pipeline.h"

namespace boxcar::agent {

// This machine's physical memory in bytes, and its CPUs (those this process may run on).
uint64_t machine_memory();
double machine_cpus();
// A number of CPUs as users write it: "2", "0.5".
std::string format_cpus(double cpus);

struct StepLimits {
  // Out of the box: enough for most builds, and a runaway step (a leak, a fork bomb, a full
  // /tmp) stays well inside a shared machine.
  uint64_t default_memory = std::min<uint64_t>(4ull << 30, machine_memory());
  uint64_t default_pids = 4096;
  double default_cpus = machine_cpus();
  uint64_t default_tmp = 1ull << 30;
  // What a step may ask for: no more than the machine has; --max-* lower them.
  uint64_t max_memory = machine_memory();
  uint64_t max_pids = 32768;
  double max_cpus = machine_cpus();
  uint64_t max_tmp = machine_memory();
  uint64_t shm = 64ull << 20;  // /dev/shm of every step (counted in its memory, like /tmp)
  Millis max_preview_ttl{2 * 3'600'000};
};

// The sandbox limits of `step` (a step of `pipeline`): its own `resources` where it names them,
// the defaults where it does not. An Error when it asks for more than a ceiling, e.g.
// `.boxcar.toml:7:1: error: step "build": resources.memory = 8.0 GiB is over the ceiling of
// 4.0 GiB (--max-memory): ask for at most 4.0 GiB, or raise --max-memory`.
Status apply_step_limits(const pipeline::ExpandedPipeline& pipeline, const pipeline::ConcreteStep& step,
                         const StepLimits& limits, executors::SandboxSpec& spec);

// One such error per step of `pipeline` over a ceiling (the cells of a matrix once):
// ErrorCode::limit_exceeded, subject "max_memory", "max_pids", "max_cpus" or "max_tmp".
std::vector<Error> step_limit_errors(const pipeline::ExpandedPipeline& pipeline, const StepLimits& limits);

// How long the previews of `step` stay up after the pipeline: its preview_ttl, at most
// max_preview_ttl. `notice` says so when it was cut.
struct PreviewTtl {
  Millis ttl;
  std::string notice;
};
PreviewTtl preview_ttl_of(const pipeline::ConcreteStep& step, const StepLimits& limits);

}  // namespace boxcar::agent
