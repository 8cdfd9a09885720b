#include "agent/pipeline_run.h"

#include <chrono>

#include <boost/asio/post.hpp>

#include "agent/step_setup.h"
#include "base/size.h"

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
  job_.reset();
  network_.reset();  // after every sandbox in it
  caches_.reset();
  layers_.reset();
}

// What a step reads in /etc/resolv.conf when the job has no way out.
constexpr const char* kLoopbackOnlyResolvConf =
    "# boxcar: this job's network is loopback only (the agent's egress policy is none):\n"
    "# no DNS and no route out.\n";

Status PipelineRun::prepare() {
  executors::JobSpec spec{config_.id, config_.workspace};
  if (executor_.isolated()) {
    spec.resolv_conf = kLoopbackOnlyResolvConf;
    if (config_.networks) {
      auto network = config_.networks->create_job(config_.id);
      if (!network.ok()) {
        return Error{"cannot set up the job's network: " + network.error().message, network.error().err,
                     network.error().code};
      }
      network_ = std::move(network.value());
      spec.netns_fd = network_->netns_fd();
      spec.resolv_conf = network_->resolv_conf();
      config_.scheduler.network = network_.get();
    }
  }
  if (executor_.isolated() && !config_.layers.empty()) {
    auto layers = WorkspaceLayers::make(pipeline_, config_.workspace, config_.layers, config_.remove_layers);
    if (!layers.ok()) return Error{"cannot prepare the job: " + layers.error().message, layers.error().err};
    layers_ = std::move(*layers);
    config_.scheduler.layers = layers_.get();
    if (config_.caches.store) {
      caches_ = std::make_unique<StepCaches>(io_, *layers_, pipeline_, config_.caches, observer_);
      config_.scheduler.caches = caches_.get();
    }
  }
  if (config_.caches.store && !caches_) {
    for (const auto& cs : pipeline_.steps) {
      if (cs.step.caches.empty()) continue;
      observer_.notice("[[step.cache]] needs each step's own workspace layer (an isolated executor: "
                       "native or oci): this run restores and saves no cache");
      break;
    }
  }
  auto job = executor_.prepare(spec);
  if (!job.ok()) return Error{"cannot prepare the job: " + job.error().message, job.error().err};
  job_ = std::move(job.value());
  return {};
}

void PipelineRun::start(std::function<void(bool)> finished, std::function<void()> released) {
  finished_ = std::move(finished);
  released_ = std::move(released);
  std::vector<std::string> refs = image_refs(pipeline_);
  if (refs.empty()) return run_steps();
  if (!config_.images) {
    for (const auto& ref : refs) {
      images_.emplace(ref, Error{"image \"" + ref + "\": this agent has no image store", 0,
                                 ErrorCode::unavailable});
    }
    return run_steps();
  }
  for (const auto& ref : refs) observer_.notice("image " + ref + ": pulling");
  auto began = std::chrono::steady_clock::now();
  std::weak_ptr<bool> weak = alive_;
  fetching_ = config_.images->fetch(refs, [this, weak, began](RunImages images) {
    if (weak.expired()) return;
    fetching_.reset();
    auto took = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - began);
    for (const auto& [ref, image] : images) {
      if (!image.ok()) {
        observer_.notice("image " + ref + ": " + image.error().message);
        continue;
      }
      const images::PulledImage& pulled = image->image;
      observer_.notice("image " + ref + ": " + pulled.digest + " (" + std::to_string(pulled.layers.size()) +
                       " layers, " + format_size(pulled.size) + ") ready after " + format_duration(took));
    }
    images_ = std::move(images);
    run_steps();
  });
}

void PipelineRun::run_steps() {
  config_.scheduler.images = &images_;
  if (cancelled_) plan_.cancel();  // cancelled while the images were pulled: no step starts
  scheduler_ = std::make_unique<Scheduler>(io_, *job_, pipeline_, plan_, config_.scheduler, observer_);
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
  network_.reset();
  caches_.reset();
  layers_.reset();  // every sandbox that mounted a layer is gone
}

void PipelineRun::release() {
  if (released_called_) return;
  released_called_ = true;
  teardown();
  if (released_) released_();
}

void PipelineRun::cancel(Grace grace) {
  cancelled_ = true;
  if (scheduler_) return scheduler_->cancel(grace);
  if (!fetching_) return;
  // A pull can take long (a slow registry): the run ends now, its steps cancelled, and the
  // pull's answer is dropped. Posted: `finished` is never called inside cancel().
  fetching_.reset();
  std::weak_ptr<bool> weak = alive_;
  asio::post(io_, [this, weak] {
    if (!weak.expired() && !scheduler_) run_steps();
  });
}

void PipelineRun::abort(const std::string& reason) {
  if (scheduler_) return scheduler_->abort(reason);
  cancel(Grace::none);  // still pulling images: nothing runs to abort
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
