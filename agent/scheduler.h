// Scheduler: drives a pipeline::Plan against an executors::Job on one io_context: starts a
// StepAttempt for each ready step up to the parallelism limit, retries the failed ones, keeps
// the summaries, collects artifacts, holds the previews, and cancels everything on request.
// What happens inside one attempt (sandbox, services, timeout, ready checks, preview) is the
// StepAttempt's business.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "agent/grace.h"
#include "agent/image_source.h"
#include "agent/preview_publisher.h"
#include "agent/run_observer.h"
#include "agent/step_limits.h"
#include "agent/step_reuse.h"
#include "executors/executor.h"
#include "network/job_network.h"
#include "agent/step_caches.h"
#include "agent/workspace_layers.h"
#include "pipeline/pipeline.h"
#include "pipeline/plan.h"

namespace boxcar::agent {

struct SchedulerOptions {
  size_t jobs = 1;                              // steps running at once
  std::map<std::string, std::string> secrets;   // name -> value: injected when a step asks, masked everywhere
  std::filesystem::path log_dir;                // per-step log files; empty = none
  std::filesystem::path workspace;              // host path of the workspace (artifacts)
  std::filesystem::path artifact_dir;           // where artifacts are copied; empty = not collected
  uint64_t log_limit = 64ull << 20;             // per step
  uint64_t artifact_file_limit = 1ull << 30;    // per file
  uint64_t artifact_total_limit = 4ull << 30;   // per run
  std::string job_id;
  std::string commit;
  std::string branch;
  std::string event = "push";
  // More BOXCAR_* for every step (BOXCAR_REF, BOXCAR_TAG, BOXCAR_REPO, BOXCAR_PR_*); under the
  // step's own env, over nothing else.
  std::map<std::string, std::string> run_env;
  // Where the URLs of exposed ports come from; null: plain http://localhost:PORT/ URLs.
  PreviewPublisher* previews = nullptr;
  // Every step's memory, pids, cpus, /tmp and /dev/shm, and how long previews stay up.
  StepLimits limits;
  // The run's images, by reference as the pipeline writes it; null when no step has one.
  const RunImages* images = nullptr;
  // The job's network with its egress policy; null: the executor's loopback-only network.
  network::JobNetwork* network = nullptr;
  // Each step's own layer of the workspace (isolated executors); null: the steps share it.
  WorkspaceLayers* layers = nullptr;
  // The run's [[step.cache]]s (with layers only); null: none restored or saved.
  StepCaches* caches = nullptr;
  // A re-run of failed steps (agent/step_reuse.h): by step, true for one reused instead of run
  // (its artifacts put back into its layer by `reuse`, then it ends success). Empty or no
  // `reuse`: every step runs.
  std::vector<bool> reused;
  StepReuse* reuse = nullptr;
};

class Scheduler {
 public:
  Scheduler(boost::asio::io_context& io, executors::Job& job,
            const pipeline::ExpandedPipeline& pipeline, pipeline::Plan& plan,
            SchedulerOptions options, RunObserver& observer);
  ~Scheduler();

  // Starts the run; `done(success)` is called once, when no step is pending or running.
  void start(std::function<void(bool success)> done);

  // After `done`: starts the preview_ttl of every preview still open, reports each again with
  // its closing time, and calls `closed` once the last one closed (at once if none is open).
  // cancel() closes them all.
  void hold_previews(std::function<void()> closed);
  size_t open_previews() const;

  // Cancels the run: pending steps become cancelled, running ones are stopped (Grace::step:
  // SIGTERM, their grace period, SIGKILL; Grace::none: at once) and open previews closed.
  // With Grace::step the when.status = "always" steps are spared: they start once what they
  // wait for has ended and run to their own end (their timeout bounds them); Grace::none
  // stops them too. Callable again, e.g. with Grace::none after Grace::step.
  void cancel(Grace grace);

  // Ends the run because the job broke a limit of its own (its workspace is over its size):
  // running steps are killed at once and end `failed` with `reason`, without a retry; pending
  // steps are cancelled and open previews closed.
  void abort(const std::string& reason);

  const std::vector<StepSummary>& summaries() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxcar::agent
