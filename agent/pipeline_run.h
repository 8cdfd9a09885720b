// PipelineRun: one run of an expanded pipeline, assembled the same way for `boxcar run` and an
// agent's job: Plan -> prepare the executor's job -> Scheduler -> hold the previews after the
// pipeline -> tear down. What each adds (a run directory and reporters locally; checkout,
// outbox, heartbeat and the remote observer in an agent) stays with them; they check the
// pipeline against the step limits (step_limit_errors) before they make a run.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "agent/grace.h"
#include "agent/image_source.h"
#include "agent/run_observer.h"
#include "agent/scheduler.h"
#include "agent/step_caches.h"
#include "agent/workspace_layers.h"
#include "base/result.h"
#include "executors/executor.h"
#include "network/job_network.h"
#include "pipeline/pipeline.h"
#include "pipeline/plan.h"

namespace boxcar::agent {

struct PipelineRunConfig {
  std::string id;                  // the executor's name for the job: a run id, job-<id>-<attempt>
  std::filesystem::path workspace;  // host path, the steps' working tree
  pipeline::RunContext context;    // branch and event: the steps `when` skips
  // Steps at once, secrets, log and artifact directories, BOXCAR_* values, the preview
  // publisher and the step limits. Its `workspace`, `branch` and `event` are set from the
  // ones above, so that `when` and the steps' BOXCAR_BRANCH/BOXCAR_EVENT never disagree.
  SchedulerOptions scheduler;
  // Where the images of steps and services come from; null: a step with an image fails to set up.
  ImageSource* images = nullptr;
  // The machine's job networks: the job gets one (a route out under the egress policy, DNS) on an
  // isolated executor. Null: loopback only (egress policy none).
  network::NetworkHost* networks = nullptr;
  // Where each step's own layer of the workspace is kept (agent/workspace_layers.h): a directory
  // outside the workspace, removed with the run. Empty, or an executor that is not isolated
  // (host): the steps share the workspace.
  std::filesystem::path layers;
  WorkspaceLayers::Remover remove_layers;  // how (null: at once, on the io_context's thread)
  // [[step.cache]]: the store, repository and whether to save (agent/step_caches.h); with layers
  // only. No store: caches are off.
  CacheRunOptions caches;
};

class PipelineRun {
 public:
  PipelineRun(boost::asio::io_context& io, executors::Executor& executor, pipeline::ExpandedPipeline pipeline,
              PipelineRunConfig config, RunObserver& observer);
  // Whatever is left (sandboxes, previews, the job) is destroyed at once.
  ~PipelineRun();
  PipelineRun(const PipelineRun&) = delete;
  PipelineRun& operator=(const PipelineRun&) = delete;

  // Prepares the executor's job (its network, its mounts). An Error: nothing was started.
  Status prepare();

  // Runs the steps. `finished(success)` is called once, from the io_context (never inside
  // cancel()), when every step settled; summaries() are final then. Unless the run was
  // cancelled, the previews still open stay up for their preview_ttl (reported again with
  // their closing time, before `finished`). `released` is called once after `finished`, when
  // no preview is open and the job is torn down. Neither may destroy the run.
  void start(std::function<void(bool success)> finished, std::function<void()> released);

  // Cancels what runs and closes the previews (see Scheduler::cancel); callable again with
  // Grace::none to kill at once.
  void cancel(Grace grace);
  // The job broke a limit of its own: see Scheduler::abort.
  void abort(const std::string& reason);

  // True between `finished` and `released` while previews are open.
  bool holding_previews() const { return holding_; }
  size_t open_previews() const;
  const std::vector<StepSummary>& summaries() const;
  const pipeline::ExpandedPipeline& pipeline() const { return pipeline_; }

 private:
  // The images pulled (or none needed): the scheduler starts.
  void run_steps();
  void pipeline_done(bool success);
  // The scheduler (and its sandboxes) and the executor's job destroyed.
  void teardown();
  void release();

  boost::asio::io_context& io_;
  executors::Executor& executor_;
  pipeline::ExpandedPipeline pipeline_;
  PipelineRunConfig config_;
  RunObserver& observer_;
  pipeline::Plan plan_;
  std::unique_ptr<network::JobNetwork> network_;  // outlives job_: its sandboxes are in it
  std::unique_ptr<WorkspaceLayers> layers_;  // outlives job_: its sandboxes mount the layers
  std::unique_ptr<StepCaches> caches_;       // goes before layers_: its saves read their views
  std::unique_ptr<executors::Job> job_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<StepSummary> summaries_;  // kept once the scheduler is gone
  std::function<void(bool)> finished_;
  std::function<void()> released_;
  RunImages images_;
  std::shared_ptr<void> fetching_;  // the image fetch in flight, dropped to abandon it
  bool cancelled_ = false;
  bool holding_ = false;
  bool released_called_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Why a finished run did not succeed, in one line: the first failed step that may not fail,
// e.g. `step "test" failed: exit code 2`; "" when none.
std::string failure_reason(const std::vector<StepSummary>& steps);

}  // namespace boxcar::agent
