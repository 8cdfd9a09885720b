#include "agent/scheduler.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <optional>

#include "agent/artifacts.h"
#include "agent/ready_check.h"
#include "agent/run_directory.h"
#include "agent/step_output.h"

namespace boxcar::agent {

namespace asio = boost::asio;
using executors::Outcome;
using pipeline::StepState;

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

executors::SandboxSpec sandbox_spec(const pipeline::ConcreteStep& cs) {
  const pipeline::Step& s = cs.step;
  executors::SandboxSpec spec;
  spec.name = cs.name;
  spec.image = s.image;
  switch (s.network) {
    case pipeline::Network::job: spec.network = executors::NetworkMode::job; break;
    case pipeline::Network::none: spec.network = executors::NetworkMode::none; break;
    case pipeline::Network::host: spec.network = executors::NetworkMode::host; break;
  }
  spec.memory_bytes = s.resources.memory;
  spec.cpus = s.resources.cpus;
  spec.pids = s.resources.pids;
  if (s.resources.tmp) spec.tmp_bytes = *s.resources.tmp;
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

struct Scheduler::Impl {
  struct Running {
    size_t index = 0;
    int attempt = 1;
    std::unique_ptr<executors::Sandbox> sandbox;
    std::unique_ptr<StepOutput> output;
    std::unique_ptr<asio::steady_timer> timer;
    std::chrono::steady_clock::time_point started;
    // Services of the step: the next one whose ready check is pending, and until when.
    size_t service = 0;
    std::chrono::steady_clock::time_point ready_deadline;
    std::unique_ptr<asio::steady_timer> ready_timer;
    bool run_started = false;
    size_t expose = 0;  // [[step.expose]]: the next port whose ready check is pending
  };

  // A service step whose ports all answered: counted as a success, its sandbox kept serving.
  struct Preview {
    int attempt = 1;
    std::unique_ptr<executors::Sandbox> sandbox;
    std::unique_ptr<StepOutput> output;
    std::unique_ptr<asio::steady_timer> ttl;
    std::vector<std::pair<std::string, PreviewUrls>> urls;  // by expose name
    bool closing = false;
  };

  // True while attempt `attempt` of step i is the one running (callbacks of an earlier
  // attempt, or of a step that already ended, find it false).
  bool current(size_t i, int attempt) const {
    auto it = running.find(i);
    return it != running.end() && it->second.attempt == attempt;
  }

  asio::io_context& io;
  executors::Job& job;
  const pipeline::ExpandedPipeline& pipeline;
  pipeline::Plan& plan;
  SchedulerOptions options;
  RunObserver& observer;
  std::function<void(bool)> done;
  std::map<size_t, Running> running;
  std::map<size_t, Preview> previews;
  std::map<size_t, std::vector<std::string>> preview_env;  // by step: "BOXCAR_PREVIEW_X=url"
  std::function<void()> previews_closed;
  std::vector<StepSummary> summaries;
  std::vector<std::string> secret_values;
  std::chrono::steady_clock::time_point run_started;
  asio::thread_pool copy_pool{1};  // artifact copies: file I/O off the io_context
  size_t copies_in_flight = 0;
  uint64_t artifact_bytes = 0;
  int cancel_requests = 0;
  bool finished = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  Impl(asio::io_context& io_, executors::Job& job_, const pipeline::ExpandedPipeline& p,
       pipeline::Plan& plan_, SchedulerOptions opts, RunObserver& obs)
      : io(io_), job(job_), pipeline(p), plan(plan_), options(std::move(opts)), observer(obs) {
    summaries.resize(pipeline.steps.size());
    for (size_t i = 0; i < pipeline.steps.size(); ++i) {
      summaries[i].name = pipeline.steps[i].name;
      summaries[i].allow_failure = pipeline.steps[i].step.allow_failure;
    }
    for (const auto& [name, value] : options.secrets) secret_values.push_back(value);
  }

  ~Impl() {
    *alive = false;
    for (auto& [i, r] : running) {
      if (r.sandbox) r.sandbox->destroy();
    }
    for (auto& [i, p] : previews) {
      if (options.previews) options.previews->withdraw(*p.sandbox);
      p.sandbox->destroy();
    }
    copy_pool.join();
  }

  void pump() {
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
    if (plan.done() && running.empty() && copies_in_flight == 0) {
      finished = true;
      bool ok = !plan.failed();
      auto elapsed = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - run_started);
      observer.pipeline_finished(ok, summaries, elapsed);
      if (done) done(ok);
    }
  }

  // Reports steps the Plan settled without running them (skipped, cancelled).
  void sync_settled() {
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

  void launch(size_t i, int attempt) {
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
    if (!options.log_dir.empty()) {
      out_opts.log_file = options.log_dir / log_file_name(cs.name, attempt);
    }
    out_opts.secrets = secret_values;
    out_opts.limit = options.log_limit;
    r.output = std::make_unique<StepOutput>(std::move(out_opts), observer);

    auto sandbox = job.start(sandbox_spec(cs));
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

  executors::ExecRequest request_for(const pipeline::ConcreteStep& cs, const std::string& script) {
    executors::ExecRequest req;
    req.argv = cs.step.shell;
    req.argv.push_back(script);
    req.env = step_environment(cs, options, job.workspace_path());
    add_preview_env(cs, req.env);
    req.workdir = cs.step.workdir;
    return req;
  }

  // Dependents, direct or not, of a step with previews see their URLs.
  void add_preview_env(const pipeline::ConcreteStep& cs, std::vector<std::string>& env) {
    std::vector<size_t> todo = cs.needs;
    std::vector<bool> seen(pipeline.steps.size());
    while (!todo.empty()) {
      size_t j = todo.back();
      todo.pop_back();
      if (seen[j]) continue;
      seen[j] = true;
      for (const std::string& var : preview_env[j]) {
        std::string prefix = var.substr(0, var.find('=') + 1);
        std::erase_if(env, [&](const std::string& e) { return e.starts_with(prefix); });
        env.push_back(var);
      }
      for (size_t k : pipeline.steps[j].needs) todo.push_back(k);
    }
  }

  // Output of the step's script and of its services goes to the step's log.
  std::function<void(executors::OutputStream, std::string_view)> output_of(size_t i) {
    StepOutput* output = running[i].output.get();
    return [this, output](executors::OutputStream s, std::string_view bytes) {
      output->write(s, bytes);
      observer.flush();
    };
  }

  void run_script(size_t i, int attempt) {
    const pipeline::ConcreteStep& cs = pipeline.steps[i];
    Running& r = running[i];
    r.run_started = true;
    executors::ExecHandlers handlers;
    std::weak_ptr<bool> weak = alive;
    handlers.on_output = output_of(i);
    handlers.on_exit = [this, weak, i, attempt](const Outcome& o) {
      if (weak.expired()) return;
      // Leave the executor's callback before tearing its sandbox down.
      asio::post(io, [this, weak, i, attempt, o] {
        if (weak.expired()) return;
        if (auto p = previews.find(i); p != previews.end() && p->second.attempt == attempt) {
          return server_exited(i, o);
        }
        const auto& exposed = pipeline.steps[i].step.expose;
        if (!exposed.empty() && current(i, attempt) &&
            (o.kind == Outcome::Kind::ok || o.kind == Outcome::Kind::failed ||
             o.kind == Outcome::Kind::signaled)) {
          Outcome failed = Outcome::exited(o.kind == Outcome::Kind::failed ? o.exit_code : 1);
          const auto& e = exposed[std::min(running[i].expose, exposed.size() - 1)];
          failed.message = "the server exited (" + executors::describe(o) + ") before port " +
                           std::to_string(e.port) + " was ready";
          return end_attempt(i, attempt, failed);
        }
        end_attempt(i, attempt, o);
      });
    };
    if (Status st = r.sandbox->exec(request_for(cs, cs.step.run), std::move(handlers)); !st.ok()) {
      return end_attempt(i, attempt, Outcome::setup("exec", st.error().err, st.error().message));
    }
    if (!cs.step.expose.empty()) {
      r.expose = 0;
      if (!r.ready_timer) r.ready_timer = std::make_unique<asio::steady_timer>(io);
      r.ready_deadline = std::chrono::steady_clock::now() + cs.step.expose[0].ready.timeout;
      poll_expose(i, attempt);
    }
  }

  // [[step.expose]]: each port in turn must answer its ready check within its timeout.
  void poll_expose(size_t i, int attempt) {
    if (!current(i, attempt)) return;
    const auto& exposed = pipeline.steps[i].step.expose;
    Running& r = running[i];
    if (r.expose == exposed.size()) return open_previews(i, attempt);
    const pipeline::Expose& e = exposed[r.expose];
    std::weak_ptr<bool> weak = alive;
    check_ready_once(io, *r.sandbox, e.ready, e.port, [this, weak, i, attempt](bool ok) {
      if (weak.expired() || !current(i, attempt)) return;
      Running& rr = running[i];
      const auto& list = pipeline.steps[i].step.expose;
      auto now = std::chrono::steady_clock::now();
      if (ok) {
        if (++rr.expose < list.size()) rr.ready_deadline = now + list[rr.expose].ready.timeout;
        return poll_expose(i, attempt);
      }
      if (now >= rr.ready_deadline) {
        const pipeline::Expose& late = list[rr.expose];
        Outcome failed = Outcome::exited(1);
        failed.message = "port " + std::to_string(late.port) + " (" + late.name + ") not ready after " +
                         format_duration(late.ready.timeout);
        return end_attempt(i, attempt, failed);
      }
      rr.ready_timer->expires_after(std::chrono::milliseconds(100));
      rr.ready_timer->async_wait([this, weak, i, attempt](const boost::system::error_code& ec) {
        if (!ec && !weak.expired()) poll_expose(i, attempt);
      });
    });
  }

  // Every exposed port answered: the step succeeds for its dependents, its URLs are published
  // and its sandbox keeps serving until the preview closes.
  void open_previews(size_t i, int attempt) {
    const pipeline::ConcreteStep& cs = pipeline.steps[i];
    Running& r = running[i];
    if (r.timer) r.timer->cancel();
    if (r.ready_timer) r.ready_timer->cancel();
    Preview p;
    p.attempt = attempt;
    p.sandbox = std::move(r.sandbox);
    p.output = std::move(r.output);
    p.ttl = std::make_unique<asio::steady_timer>(io);
    auto elapsed = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - r.started);
    running.erase(i);
    for (const pipeline::Expose& e : cs.step.expose) {
      PreviewUrls urls;
      if (options.previews) {
        urls = options.previews->publish(*p.sandbox, static_cast<uint16_t>(e.port));
      } else {
        urls.host_url = urls.path_url = "http://localhost:" + std::to_string(e.port) + "/";
      }
      preview_env[i].push_back(preview_env_name(e.name) + "=" + urls.host_url);
      observer.preview(i, e.name, urls.host_url, urls.path_url, Timestamp{});
      p.urls.emplace_back(e.name, std::move(urls));
    }
    previews[i] = std::move(p);
    StepSummary& s = summaries[i];
    s.state = StepState::success;
    s.duration = elapsed;
    s.exit_code = -1;
    s.reason = "";
    if (!cs.step.artifacts.empty() && !options.artifact_dir.empty()) return collect(i, StepState::success);
    complete(i, StepState::success);
  }

  // The preview's server exited, by itself or because the preview was closed.
  void server_exited(size_t i, const Outcome& o) {
    Preview& p = previews[i];
    if (options.previews) options.previews->withdraw(*p.sandbox);
    if (!p.closing) {
      observer.notice(pipeline.steps[i].name + ": preview closed: the server exited (" +
                      executors::describe(o) + ")");
    }
    p.ttl->cancel();
    p.output->close();
    p.sandbox->destroy();
    previews.erase(i);
    if (previews.empty() && previews_closed) {
      auto closed = std::move(previews_closed);
      previews_closed = nullptr;
      asio::post(io, closed);
    }
  }

  // SIGTERM to the preview's sandbox; server_exited finishes the job.
  void close_preview(size_t i, std::string_view why, bool at_once) {
    Preview& p = previews[i];
    if (!p.closing) observer.notice(pipeline.steps[i].name + ": closing preview: " + std::string(why));
    p.closing = true;
    if (options.previews) options.previews->withdraw(*p.sandbox);
    if (at_once) return server_exited(i, Outcome::of(Outcome::Kind::cancelled));
    p.sandbox->stop(Outcome::Kind::cancelled, pipeline.steps[i].step.grace);
  }

  void hold_previews(std::function<void()> closed) {
    if (previews.empty()) {
      asio::post(io, std::move(closed));
      return;
    }
    previews_closed = std::move(closed);
    std::weak_ptr<bool> weak = alive;
    for (auto& [i, p] : previews) {
      Millis ttl = pipeline.steps[i].step.preview_ttl;
      auto until = std::chrono::steady_clock::now() + ttl;
      if (options.previews) options.previews->expire_at(*p.sandbox, until);
      Timestamp wall = std::chrono::system_clock::now() + ttl;
      for (const auto& [name, urls] : p.urls) observer.preview(i, name, urls.host_url, urls.path_url, wall);
      p.ttl->expires_at(until);
      size_t step = i;
      p.ttl->async_wait([this, weak, step](const boost::system::error_code& ec) {
        if (ec || weak.expired() || !previews.count(step)) return;
        close_preview(step, "preview_ttl " + format_duration(pipeline.steps[step].step.preview_ttl) +
                                " reached", false);
      });
    }
  }

  // [[step.service]]: started in the step's sandbox before its script, which runs once every
  // service with a ready check answers it. A service that exits first fails the step.
  void start_services(size_t i, int attempt) {
    const pipeline::ConcreteStep& cs = pipeline.steps[i];
    std::weak_ptr<bool> weak = alive;
    for (const pipeline::Service& svc : cs.step.services) {
      executors::ExecHandlers handlers;
      handlers.on_output = output_of(i);
      std::string name = svc.name;
      handlers.on_exit = [this, weak, i, attempt, name](const Outcome& o) {
        if (weak.expired()) return;
        asio::post(io, [this, weak, i, attempt, name, o] {
          if (weak.expired() || !current(i, attempt) || running[i].run_started) return;
          if (o.kind != Outcome::Kind::ok && o.kind != Outcome::Kind::failed &&
              o.kind != Outcome::Kind::signaled) {
            return end_attempt(i, attempt, o);  // timeout, cancel, oom: as they are
          }
          Outcome failed = Outcome::exited(1);
          failed.message = "service \"" + name + "\" exited (" + executors::describe(o) +
                           ") before the step's script ran";
          end_attempt(i, attempt, failed);
        });
      };
      if (Status st = running[i].sandbox->exec(request_for(cs, svc.run), std::move(handlers)); !st.ok()) {
        return end_attempt(i, attempt, Outcome::setup("service " + svc.name, st.error().err,
                                                      st.error().message));
      }
    }
    Running& r = running[i];
    r.service = 0;
    r.ready_timer = std::make_unique<asio::steady_timer>(io);
    if (!cs.step.services.empty() && cs.step.services[0].ready) {
      r.ready_deadline = std::chrono::steady_clock::now() + cs.step.services[0].ready->timeout;
    }
    poll_ready(i, attempt);
  }

  void poll_ready(size_t i, int attempt) {
    if (!current(i, attempt)) return;
    const auto& services = pipeline.steps[i].step.services;
    Running& r = running[i];
    while (r.service < services.size() && !services[r.service].ready) ++r.service;
    if (r.service == services.size()) return run_script(i, attempt);
    const pipeline::Service& svc = services[r.service];
    std::weak_ptr<bool> weak = alive;
    // A service's http check has no port of its own to go to but the default HTTP one.
    check_ready_once(io, *r.sandbox, *svc.ready, 80, [this, weak, i, attempt](bool ok) {
      if (weak.expired() || !current(i, attempt) || running[i].run_started) return;
      Running& rr = running[i];
      const auto& list = pipeline.steps[i].step.services;
      auto now = std::chrono::steady_clock::now();
      if (ok) {
        ++rr.service;
        if (rr.service < list.size() && list[rr.service].ready) {
          rr.ready_deadline = now + list[rr.service].ready->timeout;
        }
        return poll_ready(i, attempt);
      }
      if (now >= rr.ready_deadline) {
        const pipeline::Service& late = list[rr.service];
        Outcome failed = Outcome::exited(1);
        failed.message = "service \"" + late.name + "\" not ready after " +
                         format_duration(late.ready->timeout);
        return end_attempt(i, attempt, failed);
      }
      rr.ready_timer->expires_after(std::chrono::milliseconds(100));
      rr.ready_timer->async_wait([this, weak, i, attempt](const boost::system::error_code& ec) {
        if (!ec && !weak.expired()) poll_ready(i, attempt);
      });
    });
  }

  void end_attempt(size_t i, int attempt, const Outcome& outcome) {
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
    StepState state = state_of(outcome);
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
    s.exit_code = outcome.kind == Outcome::Kind::ok       ? 0
                  : outcome.kind == Outcome::Kind::failed ? outcome.exit_code
                                                          : -1;
    s.reason = outcome.ok() ? "" : executors::describe(outcome);
    if (outcome.kind == Outcome::Kind::failed && !outcome.message.empty()) s.reason = outcome.message;
    if (state == StepState::timeout) s.reason = "timed out after " + format_duration(step.timeout);
    if (truncated) s.reason += s.reason.empty() ? "log truncated" : "; log truncated";

    if (!step.artifacts.empty() && !options.artifact_dir.empty() && state != StepState::cancelled) {
      collect(i, state);
      return;
    }
    complete(i, state);
  }

  // Copies artifacts on the copy pool, then finishes the step back on the io_context.
  void collect(size_t i, StepState state) {
    ++copies_in_flight;
    std::weak_ptr<bool> weak = alive;
    const auto& globs = pipeline.steps[i].step.artifacts;
    ArtifactLimits limits{options.artifact_file_limit, options.artifact_total_limit};
    uint64_t used = artifact_bytes;
    asio::post(copy_pool, [this, weak, i, state, globs, limits, used]() mutable {
      auto result = collect_artifacts(options.workspace, globs, options.artifact_dir, limits, used);
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

  void complete(size_t i, StepState state) {
    plan.finish(i, state);
    observer.step_finished(i, summaries[i]);
    pump();
  }

  void cancel() {
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
};

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
