// RunObserver: what a run reports as it goes. `boxcar run` prints it (agent/local/:
// TerminalReporter, JsonReporter), an agent uploads it to its server (agent/daemon/:
// RemoteObserver). The seam keeps the scheduler free of output code.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/duration.h"
#include "pipeline/plan.h"

namespace boxcar::agent {

using Timestamp = std::chrono::system_clock::time_point;

struct StepSummary {
  std::string name;
  pipeline::StepState state = pipeline::StepState::pending;
  Millis duration{0};
  std::string reason;   // "exit code 2", "timed out after 10m", `needs "build" failed`
  int exit_code = -1;   // -1 when the step did not exit by itself
  int attempts = 0;
  bool allow_failure = false;
  uint64_t egress_refused = 0;  // connections the egress policy refused, every attempt together
  std::string shell;            // "/bin/bash --noprofile --norc -eo pipefail -c"; "" without a script
};

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void notice(std::string_view text) = 0;  // one-line warnings and information
  virtual void step_started(size_t step, std::string_view name, int attempt) = 0;
  // One line of output, without its newline, already masked. `cut` is true when the line was
  // longer than the line limit and continues in the next call.
  virtual void step_line(size_t step, std::string_view name, Timestamp ts, std::string_view line,
                         bool cut) = 0;
  virtual void step_finished(size_t step, const StepSummary& summary) = 0;
  virtual void artifact(size_t step, std::string_view name, std::string_view path,
                        uint64_t bytes) = 0;
  virtual void pipeline_finished(bool success, const std::vector<StepSummary>& steps,
                                 Millis duration) = 0;
  // A preview URL of step `step` opened (expose `name`): `url` in Host form, `path_url` in path
  // form. `until` is when it closes; the epoch while the pipeline still runs (the TTL starts
  // when it ends, and the preview is reported again then).
  virtual void preview(size_t /*step*/, std::string_view /*name*/, std::string_view /*url*/,
                       std::string_view /*path_url*/, Timestamp /*until*/) {}
  // The preview `name` of step `step` closed (TTL, cancel, or its server exited).
  virtual void preview_closed(size_t /*step*/, std::string_view /*name*/) {}
  // Called after each chunk of output was fed through: a buffering observer writes out what
  // it holds, so piped output stays live without a write per line.
  virtual void flush() {}
  // False when step_line would be ignored (a quiet terminal): the log pipeline then writes
  // complete lines to the log file in bulk instead of handing them over one by one.
  virtual bool wants_lines() const { return true; }
};

}  // namespace boxcar::agent
