// The parts of a step's life besides its script: [[step.service]] started first and waited for
// (ready checks), and [[step.expose]] steps whose server stays up as a preview.
#include <boost/asio/post.hpp>

#include "agent/ready_check.h"
#include "agent/scheduler_impl.h"

namespace boxcar::agent {

executors::ExecRequest Scheduler::Impl::request_for(const pipeline::ConcreteStep& cs, const std::string& script) {
  executors::ExecRequest req;
  req.argv = cs.step.shell;
  req.argv.push_back(script);
  req.env = step_environment(cs, options, job.workspace_path());
  add_preview_env(cs, req.env);
  req.workdir = cs.step.workdir;
  return req;
}

// Dependents, direct or not, of a step with previews see their URLs.
void Scheduler::Impl::add_preview_env(const pipeline::ConcreteStep& cs, std::vector<std::string>& env) {
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

void Scheduler::Impl::run_script(size_t i, int attempt) {
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
void Scheduler::Impl::poll_expose(size_t i, int attempt) {
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
void Scheduler::Impl::open_previews(size_t i, int attempt) {
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
      urls = options.previews->publish(*p.sandbox, options.job_id, static_cast<uint16_t>(e.port));
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
void Scheduler::Impl::server_exited(size_t i, const Outcome& o) {
  Preview& p = previews[i];
  if (options.previews) options.previews->withdraw(*p.sandbox);
  if (!p.closing) {
    observer.notice(pipeline.steps[i].name + ": preview closed: the server exited (" +
                    executors::describe(o) + ")");
  }
  for (const auto& [name, urls] : p.urls) observer.preview_closed(i, name);
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
void Scheduler::Impl::close_preview(size_t i, std::string_view why, bool at_once) {
  Preview& p = previews[i];
  if (!p.closing) observer.notice(pipeline.steps[i].name + ": closing preview: " + std::string(why));
  p.closing = true;
  if (options.previews) options.previews->withdraw(*p.sandbox);
  if (at_once) return server_exited(i, Outcome::of(Outcome::Kind::cancelled));
  p.sandbox->stop(Outcome::Kind::cancelled, pipeline.steps[i].step.grace);
}

void Scheduler::Impl::hold_previews(std::function<void()> closed) {
  if (previews.empty()) {
    asio::post(io, std::move(closed));
    return;
  }
  previews_closed = std::move(closed);
  std::weak_ptr<bool> weak = alive;
  for (auto& [i, p] : previews) {
    PreviewTtl capped = preview_ttl_of(pipeline.steps[i], options.limits);
    if (!capped.notice.empty()) observer.notice(capped.notice);
    Millis ttl = capped.ttl;
    auto until = std::chrono::steady_clock::now() + ttl;
    if (options.previews) options.previews->expire_at(*p.sandbox, until);
    Timestamp wall = std::chrono::system_clock::now() + ttl;
    for (const auto& [name, urls] : p.urls) observer.preview(i, name, urls.host_url, urls.path_url, wall);
    p.ttl->expires_at(until);
    size_t step = i;
    p.ttl->async_wait([this, weak, step, ttl](const boost::system::error_code& ec) {
      if (ec || weak.expired() || !previews.count(step)) return;
      close_preview(step, "preview_ttl " + format_duration(ttl) + " reached", false);
    });
  }
}

// [[step.service]]: started in the step's sandbox before its script, which runs once every
// service with a ready check answers it. A service that exits first fails the step.
void Scheduler::Impl::start_services(size_t i, int attempt) {
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
  r.services_started = std::chrono::steady_clock::now();
  poll_ready(i, attempt);
}

void Scheduler::Impl::poll_ready(size_t i, int attempt) {
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
      return poll_ready(i, attempt);
    }
    const pipeline::Service& late = list[rr.service];
    if (now >= rr.services_started + late.ready->timeout) {
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

}  // namespace boxcar::agent
