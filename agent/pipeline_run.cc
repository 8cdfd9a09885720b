#include "agent/pipeline_run.h"

#include <boost/asio/post.hpp>

namespace boxcar::agent {

namespace asio = boost::asio;

PipelineRun::PipelineRun(asio::io_context& io, executors::Executor& executor, pipeline::ExpandedPipeline pipeline,
                         PipelineRunConfig config, RunObserver& observer)
    : io_(io),
      executor_(executor),
      pipeline_(std::move(pipeline)),
      config_(std::move(config)),
      observer_(observer),
      plan_(pipeline_, config_.context) {
  config_.scheduler.workspace = config_.workspace;
  config_.scheduler.branch = config_.context.branch;
  config_.scheduler.event = config_.context.event;
}

PipelineRun::~PipelineRun() {
  *alive_ = false;
  scheduler_.reset();
  if (job_) job_->destroy();
}

Status PipelineRun::prepare() {
  auto job = executor_.prepare({config_.id, config_.workspace});
  if (!job.ok()) return Error{"cannot prepare the job: " + job.error().message, job.error().err};
  job_ = std::move(job.value());
  scheduler_ = std::make_unique<Scheduler>(io_, *job_, pipeline_, plan_, config_.scheduler, observer_);
  return {};
}

void PipelineRun::start(std::function<void(bool)> finished, std::function<void()> released) {
  finished_ = std::move(finished);
  released_ = std::move(released);
  std::weak_ptr<bool> weak = alive_;
  scheduler_->start([this, weak](bool ok) {
    // May run inside cancel(): leave the scheduler's stack first.
    asio::post(io_, [this, weak, ok] {
      if (!weak.expired()) pipeline_done(ok);
    });
  });
}

void PipelineRun::pipeline_done(bool success) {
  summaries_ = scheduler_->summaries();
  // A cancelled run tears its previews down with it.
  holding_ = !cancelled_ && scheduler_->open_previews() > 0;
  if (holding_) {
    std::weak_ptr<bool> weak = alive_;
    scheduler_->hold_previews([this, weak] {
      if (weak.expired()) return;
      holding_ = false;
      release();
    });
  } else {
    teardown();  // before `finished`: an agent removes the workspace then
  }
  auto finished = std::move(finished_);
  if (finished) finished(success);
  if (!holding_) release();
}

void PipelineRun::teardown() {
  scheduler_.reset();
  if (job_) job_->destroy();
  job_.reset();
}

void PipelineRun::release() {
  if (released_called_) return;
  released_called_ = true;
  teardown();
  if (released_) released_();
}

void PipelineRun::cancel(Grace grace) {
  cancelled_ = true;
  if (scheduler_) scheduler_->cancel(grace);
}

void PipelineRun::abort(const std::string& reason) {
  if (scheduler_) scheduler_->abort(reason);
}

size_t PipelineRun::open_previews() const { return scheduler_ ? scheduler_->open_previews() : 0; }

const std::vector<StepSummary>& PipelineRun::summaries() const {
  return scheduler_ && summaries_.empty() ? scheduler_->summaries() : summaries_;
}

std::string failure_reason(const std::vector<StepSummary>& steps) {
  for (const auto& s : steps) {
    if (s.allow_failure || !pipeline::is_failure(s.state)) continue;
    return "step \"" + s.name + "\" " + pipeline::to_string(s.state) + (s.reason.empty() ? "" : ": " + s.reason);
  }
  return "";
}

}  // namespace boxcar::agent
