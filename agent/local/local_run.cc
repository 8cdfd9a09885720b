#include "agent/local/local_run.h"

#include <unistd.h>

#include <boost/asio/signal_set.hpp>

#include <chrono>
#include <memory>
#include <optional>

#include "agent/local/json_reporter.h"
#include "agent/local/run_directory.h"
#include "agent/local/run_layers.h"
#include "agent/local/terminal_reporter.h"
#include "agent/pipeline_run.h"

namespace boxcar::agent {

namespace {

std::unique_ptr<RunObserver> make_reporter(const LocalRunOptions& o, const executors::Executor& executor,
                                           std::FILE* out) {
  if (o.json) return std::make_unique<JsonReporter>(out);
  TerminalReporterOptions topts;
  topts.color = TerminalReporter::want_color(::fileno(out));
  topts.timestamps = o.timestamps;
  topts.quiet = o.quiet;
  if (std::filesystem::exists(std::filesystem::symlink_status(o.workspace / ".git"))) {
    topts.summary_note = !executor.isolated()
                             ? "the host executor cannot protect .git: a step could change what your git runs"
                             : ".git was read-only to steps";
  }
  // Where a step's writes went: not into this working tree (docs/pipeline.md, "What a step sees").
  if (executor.isolated() && !o.layers_base.empty()) {
    topts.summary_note += std::string(topts.summary_note.empty() ? "" : "; ") +
                          "each step wrote to its own layer over the checkout and its needs' outputs, so this "
                          "working tree is unchanged (artifacts are kept under .boxcar/runs/)";
  }
  return std::make_unique<TerminalReporter>(out, topts);
}

}  // namespace

Result<LocalRunEnd> run_locally(boost::asio::io_context& io, executors::Executor& executor,
                                pipeline::ExpandedPipeline pipeline, const LocalRunOptions& options,
                                std::FILE* out) {
  auto run_dir = RunDirectory::create(options.workspace);
  if (!run_dir.ok()) return run_dir.error();
  std::unique_ptr<RunObserver> observer = make_reporter(options, executor, out);
  if (!executor.isolated()) {
    observer->notice("executor \"" + std::string(executor.name()) +
                     "\": steps run as plain processes on this machine, with no isolation "
                     "and no memory, pids, cpu or /tmp limits");
  }
  if (options.keep_failed && !executor.isolated()) {
    observer->notice("--keep-failed: the host executor keeps nothing but the workspace");
  }

  std::optional<RunLayers> layers;
  if (executor.isolated() && !options.layers_base.empty()) {
    auto claimed = RunLayers::claim(options.layers_base, run_dir->id());
    if (!claimed.ok()) return claimed.error();
    layers.emplace(std::move(*claimed));
  }
  PipelineRunConfig config;
  config.id = run_dir->id();
  if (layers) config.layers = layers->dir();
  config.workspace = options.workspace;
  config.context.branch = options.branch;
  config.context.event = options.event;
  config.images = options.images;
  config.networks = options.networks;
  config.caches.store = options.caches;
  config.caches.repository = options.repository;
  config.caches.branch = options.branch;
  SchedulerOptions& s = config.scheduler;
  s.previews = options.previews;
  s.jobs = options.jobs;
  s.secrets = options.secrets;
  s.log_dir = run_dir->logs();
  s.artifact_dir = run_dir->artifacts();
  s.log_limit = options.log_limit;
  s.job_id = run_dir->id();
  s.commit = options.commit;
  s.run_env = options.run_env;
  s.limits = options.limits;
  PipelineRun run(io, executor, std::move(pipeline), std::move(config), *observer);
  if (Status st = run.prepare(); !st.ok()) return st.error();

  int interrupts = 0;
  bool pipeline_done = false;
  int interrupts_in_pipeline = 0;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        ++interrupts;
        if (pipeline_done) {
          observer->notice("interrupted: closing the previews");
        } else {
          observer->notice(interrupts == 1 ? "interrupted: cancelling every step (again to kill at once)"
                                           : "interrupted again: killing every step");
        }
        run.cancel(interrupts == 1 ? Grace::step : Grace::none);
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  bool success = false;
  auto started = std::chrono::steady_clock::now();
  run.start(
      [&](bool ok) {
        success = ok;
        pipeline_done = true;
        interrupts_in_pipeline = interrupts;
        auto total = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started);
        if (Status st = run_dir->write_summary(success, run.summaries(), total); !st.ok()) {
          observer->notice(st.error().message);
        }
        // The pipeline is over but its previews stay up for their preview_ttl, or until Ctrl-C.
        if (run.holding_previews()) {
          observer->notice(std::to_string(run.open_previews()) +
                           " preview(s) still open: press Ctrl-C to close them");
        }
      },
      [&] {
        signals.cancel();
        if (options.released) options.released();
        io.stop();
      });
  io.run();
  // Let the executor finish tearing the sandboxes down (reaping, cgroup removal) so nothing of
  // the run outlives the command; bounded, and over at once when there is nothing left to do.
  io.restart();
  io.run_for(std::chrono::seconds(3));
  // Ctrl-C while only previews remain closes them: the pipeline's own result stands.
  if (interrupts_in_pipeline > 0) return LocalRunEnd::interrupted;
  for (const auto& st : run.summaries()) {
    if (st.state == pipeline::StepState::error) return LocalRunEnd::step_error;
  }
  return success ? LocalRunEnd::success : LocalRunEnd::failed;
}

}  // namespace boxcar::agent
