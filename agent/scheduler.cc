#include "agent/scheduler.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "agent/scheduler_impl.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <optional>

#include "agent/artifacts.h"
#include "agent/log_file_name.h"
#include "agent/ready_check.h"
#include "agent/step_output.h"

namespace boxcar::agent {


namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The step's sandbox; its limits are the step's `resources` under the operator's StepLimits.
Result<executors::SandboxSpec> sandbox_spec(const pipeline::ExpandedPipeline& p, const pipeline::ConcreteStep& cs,
                                            const StepLimits& limits) {
  const pipeline::Step& s = cs.step;
  executors::SandboxSpec spec;
  spec.name = cs.name;
  spec.image = s.image;
  switch (s.network) {
    case pipeline::Network::job: spec.network = executors::NetworkMode::job; break;
    case pipeline::Network::none: spec.network = executors::NetworkMode::none; break;
    case pipeline::Network::host: spec.network = executors::NetworkMode::host; break;
  }
  if (Status st = apply_step_limits(p, cs, limits, spec); !st.ok()) return st.error();
  return spec;
}

StepState state_of(const Outcome& o) {
  switch (o.kind) {
    case Outcome::Kind::ok: return StepState::success;
    case Outcome::Kind::failed:
    case Outcome::Kind::signaled: return StepState::failed;
    case Outcome::Kind::timeout: return StepState::timeout;
    case Outcome::Kind::oom: return StepState::oom;
    case Outcome::Kind::cancelled: return StepState::cancelled;
    case Outcome::Kind::setup_error: return StepState::error;
  }
  return StepState::error;
}

}  // namespace

std::vector<std::string> step_environment(const pipeline::ConcreteStep& cs,
                                          const SchedulerOptions& options,
                                          const std::string& workspace_path) {
  std::map<std::string, std::string> env = {
      {"PATH", kDefaultPath},
      {"HOME", "/tmp"},
      {"LANG", "C.UTF-8"},
      {"CI", "true"},
      {"BOXCAR", "true"},
      {"BOXCAR_JOB_ID", options.job_id},
      {"BOXCAR_STEP", cs.name},
      {"BOXCAR_COMMIT", options.commit},
      {"BOXCAR_BRANCH", options.branch},
      {"BOXCAR_EVENT", options.event},
      {"BOXCAR_WORKSPACE", workspace_path},
  };
  for (const auto& [k, v] : options.run_env) env[k] = v;
  for (const auto& [k, v] : cs.matrix_values) env["BOXCAR_MATRIX_" + k] = v;
  for (const auto& [k, v] : cs.step.env) env[k] = v;
  for (const auto& name : cs.step.secrets) {
    auto it = options.secrets.find(name);
    if (it != options.secrets.end()) env[name] = it->second;
  }
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

void Scheduler::Impl::pump() {
  if (finished) return;
  while (running.size() < options.jobs) {
    auto ready = plan.ready();
    if (ready.empty()) break;
    size_t i = ready.front();
    plan.start(i);
    summaries[i].state = StepState::running;
    launch(i, 1);
  }
  sync_settled();
  // launch() may settle a step at once (a sandbox that cannot be set up) and pump() again from
  // inside this loop: that inner call may already have finished the run.
  if (!finished && plan.done() && running.empty() && copies_in_flight == 0) {
    finished = true;
    bool ok = !plan.failed();
    auto elapsed = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - run_started);
    observer.pipeline_finished(ok, summaries, elapsed);
    if (done) done(ok);
  }
}

// Reports steps the Plan settled without running them (skipped, cancelled).
void Scheduler::Impl::sync_settled() {
  for (size_t i = 0; i < summaries.size(); ++i) {
    StepState s = plan.state(i);
    if ((s == StepState::skipped || s == StepState::cancelled) && summaries[i].state != s &&
        summaries[i].state == StepState::pending) {
      summaries[i].state = s;
      summaries[i].reason = plan.reason(i);
      observer.step_finished(i, summaries[i]);
    }
  }
}

void Scheduler::Impl::launch(size_t i, int attempt) {
  const pipeline::ConcreteStep& cs = pipeline.steps[i];
  Running& r = running[i];
  r.index = i;
  r.attempt = attempt;
  r.started = std::chrono::steady_clock::now();
  summaries[i].attempts = attempt;
  observer.step_started(i, cs.name, attempt);

  StepOutputOptions out_opts;
  out_opts.step = i;
  out_opts.name = cs.name;
  if (log_dir) {
    out_opts.log_file = options.log_dir / log_file_name(cs.name, attempt);
    out_opts.log_dir = log_dir.get();
  }
  out_opts.secrets = secret_values;
  out_opts.limit = options.log_limit;
  r.output = std::make_unique<StepOutput>(std::move(out_opts), observer);

  size_t more = 0;
  for (size_t j = 0; j < plan.size(); ++j) more += j != i && plan.state(j) == StepState::pending;
  job.expect(more);
  auto spec = sandbox_spec(pipeline, cs, options.limits);
  if (!spec.ok()) {
    end_attempt(i, attempt, Outcome::setup("resources", 0, spec.error().message));
    return;
  }
  auto sandbox = job.start(*spec);
  if (!sandbox.ok()) {
    end_attempt(i, attempt, Outcome::setup("sandbox", sandbox.error().err, sandbox.error().message));
    return;
  }
  r.sandbox = std::move(sandbox.value());

  std::weak_ptr<bool> weak = alive;
  r.timer = std::make_unique<asio::steady_timer>(io, cs.step.timeout);
  r.timer->async_wait([this, weak, i, attempt](const boost::system::error_code& ec) {
    if (ec || weak.expired() || !current(i, attempt)) return;
    if (auto& sb = running[i].sandbox) sb->stop(Outcome::Kind::timeout, pipeline.steps[i].step.grace);
  });
  if (cs.step.services.empty()) {
    run_script(i, attempt);
  } else {
    start_services(i, attempt);
  }
  if (current(i, attempt) && cancel_requests > 0) {
    running[i].sandbox->stop(Outcome::Kind::cancelled, cs.step.grace);
  }
}

// Output of the step's script and of its services goes to the step's log.
std::function<void(executors::OutputStream, std::string_view)> Scheduler::Impl::output_of(size_t i) {
  StepOutput* output = running[i].output.get();
  return [this, output](executors::OutputStream s, std::string_view bytes) {
    output->write(s, bytes);
    observer.flush();
  };
}

void Scheduler::Impl::end_attempt(size_t i, int attempt, const Outcome& outcome) {
  auto it = running.find(i);
  if (it == running.end() || it->second.attempt != attempt) return;
  Running& r = it->second;
  if (r.timer) r.timer->cancel();
  if (r.ready_timer) r.ready_timer->cancel();
  if (r.output) r.output->close();
  bool truncated = r.output && r.output->truncated();
  if (r.sandbox) r.sandbox->destroy();
  auto elapsed = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - r.started);
  running.erase(it);

  const pipeline::Step& step = pipeline.steps[i].step;
  Outcome ended = outcome;
  if (!abort_reason.empty() && outcome.kind == Outcome::Kind::cancelled) {
    ended = Outcome::of(Outcome::Kind::failed);
    ended.exit_code = -1;
    ended.message = abort_reason;
  }
  StepState state = state_of(ended);
  bool retryable = (state == StepState::failed || state == StepState::oom ||
                    (state == StepState::timeout && step.retry_on_timeout));
  if (retryable && attempt <= step.retry && cancel_requests == 0) {
    observer.notice(pipeline.steps[i].name + ": attempt " + std::to_string(attempt) + " " +
                    executors::describe(outcome) + ", retrying");
    launch(i, attempt + 1);
    return;
  }

  StepSummary& s = summaries[i];
  s.state = state;
  s.duration = elapsed;
  s.exit_code = ended.kind == Outcome::Kind::ok       ? 0
                : ended.kind == Outcome::Kind::failed ? ended.exit_code
                                                      : -1;
  s.reason = ended.ok() ? "" : executors::describe(ended);
  if (ended.kind == Outcome::Kind::failed && !ended.message.empty()) s.reason = ended.message;
  if (state == StepState::timeout) s.reason = "timed out after " + format_duration(step.timeout);
  if (truncated) s.reason += s.reason.empty() ? "log truncated" : "; log truncated";

  if (!step.artifacts.empty() && !options.artifact_dir.empty() && state != StepState::cancelled) {
    collect(i, state);
    return;
  }
  complete(i, state);
}

void Scheduler::Impl::open_directories() {
  auto open_dir = [](const std::filesystem::path& dir, std::string& why) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    unique_fd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) why = "cannot open " + dir.string() + ": " + std::strerror(errno);
    return fd;
  };
  std::string why;
  if (!options.log_dir.empty()) {
    log_dir = open_dir(options.log_dir, why);
    if (!log_dir) observer.notice("step logs are not kept: " + why);
  }
  bool any_artifacts = false;
  for (const auto& cs : pipeline.steps) any_artifacts = any_artifacts || !cs.step.artifacts.empty();
  if (any_artifacts && !options.artifact_dir.empty()) {
    artifact_dir = open_dir(options.artifact_dir, artifact_dir_error);
  }
}

// Copies artifacts on the copy pool, then finishes the step back on the io_context.
void Scheduler::Impl::collect(size_t i, StepState state) {
  ++copies_in_flight;
  std::weak_ptr<bool> weak = alive;
  const auto& globs = pipeline.steps[i].step.artifacts;
  ArtifactLimits limits{options.artifact_file_limit, options.artifact_total_limit};
  uint64_t used = artifact_bytes;
  asio::post(copy_pool, [this, weak, i, state, globs, limits, used]() mutable {
    auto result = artifact_dir ? collect_artifacts(options.workspace, globs, artifact_dir.get(), limits, used)
                               : Result<CollectResult>(Error{artifact_dir_error});
    asio::post(io, [this, weak, i, state, result = std::move(result), used]() {
      if (weak.expired()) return;
      --copies_in_flight;
      artifact_bytes = used;
      const std::string& name = pipeline.steps[i].name;
      if (!result.ok()) {
        observer.notice(name + ": artifacts: " + result.error().message);
      } else {
        for (const auto& w : result->warnings) observer.notice(name + ": artifacts: " + w);
        for (const auto& f : result->files) {
          observer.artifact(i, name, f.path, f.bytes);
        }
      }
      complete(i, state);
    });
  });
}

void Scheduler::Impl::complete(size_t i, StepState state) {
  plan.finish(i, state);
  observer.step_finished(i, summaries[i]);
  pump();
}

void Scheduler::Impl::cancel() {
  ++cancel_requests;
  std::vector<size_t> open;
  for (auto& [i, p] : previews) open.push_back(i);
  for (size_t i : open) close_preview(i, "cancelled", cancel_requests > 1);
  plan.cancel();
  sync_settled();
  if (cancel_requests > 1) {
    // Asked twice: no more grace. destroy() kills at once and runs no handler, so end the
    // attempts here.
    std::vector<size_t> ids;
    for (auto& [i, r] : running) ids.push_back(i);
    for (size_t i : ids) end_attempt(i, running[i].attempt, Outcome::of(Outcome::Kind::cancelled));
  } else {
    for (auto& [i, r] : running) {
      if (r.sandbox) r.sandbox->stop(Outcome::Kind::cancelled, pipeline.steps[i].step.grace);
    }
  }
  pump();
}

void Scheduler::Impl::abort(const std::string& reason) {
  if (finished && previews.empty()) return;
  if (abort_reason.empty()) abort_reason = reason;
  // Twice: no grace period; whatever broke the limit must not keep going for another 10 s.
  cancel();
  cancel();
}

Scheduler::Scheduler(asio::io_context& io, executors::Job& job,
                     const pipeline::ExpandedPipeline& pipeline, pipeline::Plan& plan,
                     SchedulerOptions options, RunObserver& observer)
    : impl_(std::make_unique<Impl>(io, job, pipeline, plan, std::move(options), observer)) {}

Scheduler::~Scheduler() = default;

void Scheduler::start(std::function<void(bool)> done) {
  impl_->done = std::move(done);
  impl_->run_started = std::chrono::steady_clock::now();
  if (impl_->options.jobs == 0) impl_->options.jobs = 1;
  impl_->pump();
}

void Scheduler::cancel() { impl_->cancel(); }

void Scheduler::abort(const std::string& reason) { impl_->abort(reason); }

void Scheduler::hold_previews(std::function<void()> closed) { impl_->hold_previews(std::move(closed)); }

size_t Scheduler::open_previews() const { return impl_->previews.size(); }

std::string preview_env_name(std::string_view name) {
  std::string out = "BOXCAR_PREVIEW_";
  for (char c : name) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out.push_back(alnum ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_');
  }
  return out;
}

const std::vector<StepSummary>& Scheduler::summaries() const { return impl_->summaries; }

}  // namespace boxcar::agent
