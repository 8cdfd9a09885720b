// Plan: the pure state of a run's DAG (which steps may start, which are skipped, which ended).
// No processes, no clocks: the agent's scheduler drives it, as ninja's Builder drives its Plan.
#pragma once

#include <string>
#include <vector>

#include "base/run_state.h"
#include "pipeline/pipeline.h"

namespace boxcar::pipeline {

// The step states and their names are defined once, in base/run_state.h.
using boxcar::StepState;
using boxcar::to_string;

bool is_terminal(StepState s);
// failed, timeout, oom, error: the step ran and did not succeed.
bool is_failure(StepState s);

// What the run is about, for `when` conditions.
struct RunContext {
  std::string branch;        // e.g. "main"; empty when unknown (local run outside git)
  std::string event = "push";  // push | pull_request | tag | manual
  // Set when the run is known to have no branch, and why ("commit abc is not on main"): then
  // when.branch admits nothing, unlike an unknown branch.
  std::string no_branch;
};

// True when `when.branch` and `when.event` admit this run (status is the Plan's business).
// An empty ctx.branch (or ctx.event) means unknown, and an unknown value is not filtered out:
// a local run outside git still runs steps limited to `branch = ["main"]`.
bool when_admits(const When& when, const RunContext& ctx);

// Why `when` does not admit this run (`when.branch does not match "feature/x"`), or "" if it does.
std::string when_rejection(const When& when, const RunContext& ctx);

class Plan {
 public:
  // Steps excluded by when.branch / when.event start out skipped (with a reason).
  // A step with when.status = failure|always and no needs waits for every step that is not
  // itself such a step and does not depend on it: it runs last, like a `finally`.
  Plan(const ExpandedPipeline& pipeline, const RunContext& ctx);

  size_t size() const { return states_.size(); }

  // Pending steps whose waits are all over and whose `when.status` says run, in file order.
  // Does not change state: call start() for the ones the scheduler launches.
  std::vector<size_t> ready() const;
  void start(size_t step);  // pending -> running

  // running -> a terminal state (also pending -> error, for a step that could not be started).
  // Steps that can now never run are marked skipped with a reason (`needs "build" failed`),
  // transitively.
  void finish(size_t step, StepState state);

  // Every pending step becomes cancelled (running ones are the scheduler's to stop and finish),
  // except, with `spare_always`, the when.status = "always" steps: they still run once their
  // waits are over, as cleanup after a cancel does (bounded by their own timeout).
  void cancel(bool spare_always = false);

  bool done() const;  // no step pending or running
  StepState state(size_t step) const { return states_[step]; }
  const std::string& reason(size_t step) const { return reasons_[step]; }

  // True when a step failed (failed, timeout, oom, error, cancelled) that is not allow_failure.
  bool failed() const;

  // What a step waits for: its needs, or the implicit waits of a finally step (for `boxcar plan`).
  const std::vector<size_t>& waits(size_t step) const { return waits_[step]; }

 private:
  enum class Verdict { wait, run, skip };

  void add_finally_waits();
  void order_steps();
  Verdict judge(size_t step, std::string* why) const;
  bool failure_upstream(size_t step) const;
  void settle();  // marks pending steps that can never run as skipped

  // Copied from the pipeline, so a Plan does not dangle when its ExpandedPipeline goes away.
  std::vector<std::string> names_;
  std::vector<bool> allow_failure_;
  std::vector<WhenStatus> status_;

  std::vector<std::vector<size_t>> waits_;  // needs, or the implicit waits of a finally step
  std::vector<size_t> order_;               // topological order of waits_
  std::vector<StepState> states_;
  std::vector<std::string> reasons_;
};

}  // namespace boxcar::pipeline
