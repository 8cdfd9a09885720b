#include "agent/step_attempt.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/post.hpp>

#include "agent/ready_check.h"

namespace boxcar::agent {

namespace asio = boost::asio;
using executors::Outcome;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kReadyPollInterval = std::chrono::milliseconds(100);

// An exit of the process's own (not a stop): what a service or a server must not do before
// it is ready.
bool exited_by_itself(const Outcome& o) {
  return o.kind == Outcome::Kind::ok || o.kind == Outcome::Kind::failed ||
         o.kind == Outcome::Kind::signaled;
}

}  // namespace

StepAttempt::StepAttempt(const Context& context, size_t step, const pipeline::ConcreteStep& cs,
                         int number, StepOutputOptions output, Events events)
    : ctx_(context),
      step_(step),
      cs_(cs),
      number_(number),
      events_(std::move(events)),
      output_(std::make_unique<StepOutput>(std::move(output), context.observer)),
      timeout_(context.io),
      poll_(context.io),
      ttl_(context.io),
      started_(Clock::now()) {}

StepAttempt::~StepAttempt() {
  *alive_ = false;
  if (sandbox_ && phase_ == Phase::serving && ctx_.previews) ctx_.previews->withdraw(*sandbox_);
  destroy_all();
  if (net_class_ != 0) ctx_.network->remove_step(net_class_);
}

void StepAttempt::start(StepSetup setup) {
  env_ = std::move(setup.env);
  user_ = std::move(setup.user);
  shell_ = std::move(setup.shell);
  sidecar_setups_ = std::move(setup.sidecars);
  if (!setup.spec.ok()) {
    const Error& e = setup.spec.error();
    if (e.subject == "secrets") {  // the pipeline's input, not the machine: the step failed
      Outcome failed = Outcome::of(Outcome::Kind::failed);
      failed.exit_code = -1;
      failed.message = e.message;
      output_->notice(e.message);  // in the step's log too, where its reader looks first
      return end(failed);
    }
    return end(Outcome::setup(e.subject.empty() ? "resources" : e.subject, e.err, e.message));
  }
  executors::SandboxSpec spec = *setup.spec;
  if (ctx_.network && spec.network == executors::NetworkMode::job) {
    auto net_class = ctx_.network->add_step(cs_.name, cs_.step.egress);
    if (!net_class.ok()) return end(Outcome::setup("network", net_class.error().err, net_class.error().message));
    net_class_ = spec.net_class = *net_class;
  }
  if (ctx_.layers) {
    // A fresh layer per attempt: a retry starts from its needs' outputs, not its failed writes.
    auto layer = ctx_.layers->workspace(step_, caches);
    if (!layer.ok()) return end(Outcome::setup("workspace layer", layer.error().err, layer.error().message));
    workspace_lowers_ = layer->lowers;
    spec.layered.insert(spec.layered.begin(), std::move(*layer));
    for (auto& extra : extra_layers) spec.layered.push_back(std::move(extra));
  }
  auto sandbox = ctx_.job.start(spec);
  if (!sandbox.ok()) {
    return end(Outcome::setup("sandbox", sandbox.error().err, sandbox.error().message));
  }
  sandbox_ = std::move(sandbox.value());
  std::weak_ptr<bool> weak = alive_;
  timeout_.expires_after(cs_.step.timeout);
  timeout_.async_wait([this, weak](const boost::system::error_code& ec) {
    if (ec || weak.expired() || (phase_ != Phase::services && phase_ != Phase::script)) return;
    stop_all(Outcome::Kind::timeout);
  });
  if (cs_.step.services.empty()) return run_script();
  start_services();
}

executors::ExecRequest StepAttempt::request(const std::string& script) const {
  executors::ExecRequest req;
  req.argv = shell_;
  req.argv.push_back(script);
  req.env = env_;
  req.workdir = cs_.step.workdir;
  req.user = user_;
  return req;
}

executors::Sandbox& StepAttempt::sandbox_of(size_t index) {
  auto it = sidecars_.find(index);
  return it == sidecars_.end() ? *sandbox_ : *it->second;
}

void StepAttempt::stop_all(Outcome::Kind reason) {
  for (auto& [i, sidecar] : sidecars_) sidecar->stop(reason, cs_.step.grace);
  if (sandbox_) sandbox_->stop(reason, cs_.step.grace);
}

void StepAttempt::destroy_all() {
  for (auto& [i, sidecar] : sidecars_) sidecar->destroy();
  sidecars_.clear();
  if (sandbox_) sandbox_->destroy();
  sandbox_.reset();
}

// Output of the step's script and of its services goes to the step's log.
std::function<void(executors::OutputStream, std::string_view)> StepAttempt::output_sink() {
  StepOutput* output = output_.get();
  RunObserver* observer = &ctx_.observer;
  return [output, observer](executors::OutputStream s, std::string_view bytes) {
    output->write(s, bytes);
    observer->flush();
  };
}

// [[step.service]]: started before the step's script, in the step's sandbox or, with an image,
// in a sidecar sandbox of its own on the job's network; the script runs once every service with
// a ready check answers it. A service that exits first fails the attempt.
void StepAttempt::start_services() {
  phase_ = Phase::services;
  std::weak_ptr<bool> weak = alive_;
  for (size_t index = 0; index < cs_.step.services.size(); ++index) {
    const pipeline::Service& svc = cs_.step.services[index];
    executors::ExecRequest req = request(svc.run);
    if (auto it = sidecar_setups_.find(index); it != sidecar_setups_.end()) {
      if (!it->second.ok()) {
        const Error& e = it->second.error();
        return end(Outcome::setup("service " + svc.name + ": " + e.subject, e.err, e.message));
      }
      executors::SandboxSpec sidecar_spec = it->second->spec;
      if (sidecar_spec.network == executors::NetworkMode::job) sidecar_spec.net_class = net_class_;
      if (ctx_.layers) {
        // Never the checkout itself: a layer of the sidecar's own over what the step was given
        // (not the step's writes, nor anything of the step's other layered directories).
        auto layer = ctx_.layers->extra(step_, "service" + std::to_string(index), "/workspace", workspace_lowers_);
        if (!layer.ok()) {
          return end(Outcome::setup("service " + svc.name + " workspace layer", layer.error().err,
                                    layer.error().message));
        }
        sidecar_spec.layered = {std::move(*layer)};
      }
      auto sidecar = ctx_.job.start(sidecar_spec);
      if (!sidecar.ok()) {
        return end(Outcome::setup("service " + svc.name + " sandbox", sidecar.error().err, sidecar.error().message));
      }
      sidecars_[index] = std::move(sidecar.value());
      req = it->second->request;
    }
    executors::ExecHandlers handlers;
    handlers.on_output = output_sink();
    handlers.on_exit = [this, weak, name = svc.name](const Outcome& o) {
      if (weak.expired()) return;
      // Leave the executor's callback before tearing its sandbox down.
      asio::post(ctx_.io, [this, weak, name, o] {
        if (weak.expired() || phase_ != Phase::services) return;
        if (!exited_by_itself(o)) return end(o);  // timeout, cancel, oom: as they are
        Outcome failed = Outcome::exited(1);
        failed.message = "service \"" + name + "\" exited (" + executors::describe(o) +
                         ") before the step's script ran";
        end(failed);
      });
    };
    if (Status st = sandbox_of(index).exec(req, std::move(handlers)); !st.ok()) {
      return end(Outcome::setup("service " + svc.name, st.error().err, st.error().message));
    }
  }
  next_ = 0;
  services_started_ = Clock::now();
  poll_services();
}

// Each service's check has its own deadline, counted from when they all started.
void StepAttempt::poll_services() {
  const auto& services = cs_.step.services;
  while (next_ < services.size() && !services[next_].ready) ++next_;
  if (next_ == services.size()) return run_script();
  std::weak_ptr<bool> weak = alive_;
  // A service's http check has no port of its own to go to but the default HTTP one.
  check_ready_once(ctx_.io, sandbox_of(next_), *services[next_].ready, 80, [this, weak](bool ok) {
    if (weak.expired() || phase_ != Phase::services) return;
    if (ok) {
      ++next_;
      return poll_services();
    }
    const pipeline::Service& late = cs_.step.services[next_];
    if (Clock::now() >= services_started_ + late.ready->timeout) {
      Outcome failed = Outcome::exited(1);
      failed.message = "service \"" + late.name + "\" not ready after " + format_duration(late.ready->timeout);
      return end(failed);
    }
    poll_later(&StepAttempt::poll_services);
  });
}

void StepAttempt::run_script() {
  phase_ = Phase::script;
  std::weak_ptr<bool> weak = alive_;
  executors::ExecHandlers handlers;
  handlers.on_output = output_sink();
  handlers.on_exit = [this, weak](const Outcome& o) {
    if (weak.expired()) return;
    asio::post(ctx_.io, [this, weak, o] {
      if (!weak.expired()) script_exited(o);
    });
  };
  if (Status st = sandbox_->exec(request(cs_.step.run), std::move(handlers)); !st.ok()) {
    return end(Outcome::setup("exec", st.error().err, st.error().message));
  }
  if (cs_.step.expose.empty()) return;
  next_ = 0;
  deadline_ = Clock::now() + cs_.step.expose[0].ready.timeout;
  poll_exposed();
}

void StepAttempt::script_exited(const Outcome& o) {
  if (phase_ == Phase::serving) return server_exited(o);
  if (phase_ != Phase::script) return;
  const auto& exposed = cs_.step.expose;
  if (!exposed.empty() && exited_by_itself(o)) {
    Outcome failed = Outcome::exited(o.kind == Outcome::Kind::failed ? o.exit_code : 1);
    const auto& e = exposed[std::min(next_, exposed.size() - 1)];
    failed.message = "the server exited (" + executors::describe(o) + ") before port " +
                     std::to_string(e.port) + " was ready";
    return end(failed);
  }
  end(o);
}

// [[step.expose]]: each port in turn must answer its ready check within its timeout.
void StepAttempt::poll_exposed() {
  const auto& exposed = cs_.step.expose;
  if (next_ == exposed.size()) return open_previews();
  const pipeline::Expose& e = exposed[next_];
  std::weak_ptr<bool> weak = alive_;
  check_ready_once(ctx_.io, *sandbox_, e.ready, e.port, [this, weak](bool ok) {
    if (weak.expired() || phase_ != Phase::script) return;
    const auto& list = cs_.step.expose;
    auto now = Clock::now();
    if (ok) {
      if (++next_ < list.size()) deadline_ = now + list[next_].ready.timeout;
      return poll_exposed();
    }
    if (now >= deadline_) {
      const pipeline::Expose& late = list[next_];
      Outcome failed = Outcome::exited(1);
      failed.message = "port " + std::to_string(late.port) + " (" + late.name + ") not ready after " +
                       format_duration(late.ready.timeout);
      return end(failed);
    }
    poll_later(&StepAttempt::poll_exposed);
  });
}

void StepAttempt::poll_later(void (StepAttempt::*next)()) {
  std::weak_ptr<bool> weak = alive_;
  poll_.expires_after(kReadyPollInterval);
  poll_.async_wait([this, weak, next, phase = phase_](const boost::system::error_code& ec) {
    if (!ec && !weak.expired() && phase_ == phase) (this->*next)();
  });
}

// Every exposed port answered: the step succeeds for its dependents, its URLs are published
// and its sandbox keeps serving until the preview closes.
void StepAttempt::open_previews() {
  timeout_.cancel();
  poll_.cancel();
  phase_ = Phase::serving;
  Millis took = elapsed();
  std::vector<std::string> env;
  for (const pipeline::Expose& e : cs_.step.expose) {
    PreviewUrls urls;
    if (ctx_.previews) {
      urls = ctx_.previews->publish(*sandbox_, ctx_.job_id, static_cast<uint16_t>(e.port));
    } else {
      urls.host_url = urls.path_url = "http://localhost:" + std::to_string(e.port) + "/";
    }
    env.push_back(preview_env_name(e.name) + "=" + urls.host_url);
    ctx_.observer.preview(step_, e.name, urls.host_url, urls.path_url, Timestamp{});
    urls_.emplace_back(e.name, std::move(urls));
  }
  events_.serving(took, std::move(env));
}

void StepAttempt::hold(const PreviewTtl& capped) {
  if (phase_ != Phase::serving) return;
  if (!capped.notice.empty()) ctx_.observer.notice(capped.notice);
  Millis ttl = capped.ttl;
  auto until = Clock::now() + ttl;
  if (ctx_.previews) ctx_.previews->expire_at(*sandbox_, until);
  Timestamp wall = std::chrono::system_clock::now() + ttl;
  for (const auto& [name, urls] : urls_) ctx_.observer.preview(step_, name, urls.host_url, urls.path_url, wall);
  ttl_.expires_at(until);
  std::weak_ptr<bool> weak = alive_;
  ttl_.async_wait([this, weak, ttl](const boost::system::error_code& ec) {
    if (ec || weak.expired()) return;
    close_preview("preview_ttl " + format_duration(ttl) + " reached", Grace::step);
  });
}

// SIGTERM to the preview's sandbox; server_exited() finishes it.
void StepAttempt::close_preview(std::string_view why, Grace grace) {
  if (phase_ != Phase::serving) return;
  if (!closing_) ctx_.observer.notice(cs_.name + ": closing preview: " + std::string(why));
  closing_ = true;
  if (ctx_.previews) ctx_.previews->withdraw(*sandbox_);
  if (grace == Grace::none) return server_exited(Outcome::of(Outcome::Kind::cancelled));
  sandbox_->stop(Outcome::Kind::cancelled, cs_.step.grace);
}

// The preview's server exited, by itself or because the preview was closed.
void StepAttempt::server_exited(const Outcome& o) {
  if (ctx_.previews) ctx_.previews->withdraw(*sandbox_);
  if (!closing_) {
    ctx_.observer.notice(cs_.name + ": preview closed: the server exited (" + executors::describe(o) + ")");
  }
  for (const auto& [name, urls] : urls_) ctx_.observer.preview_closed(step_, name);
  ttl_.cancel();
  destroy_all();
  output_->close(egress_refusals(nullptr));
  phase_ = Phase::over;
  auto closed = events_.closed;  // the owner may destroy this attempt in it
  closed();
}

void StepAttempt::cancel(Grace grace) {
  switch (phase_) {
    case Phase::services:
    case Phase::script:
      // destroy() kills at once and runs no handler: the attempt ends here.
      if (grace == Grace::none) return end(Outcome::of(Outcome::Kind::cancelled));
      stop_all(Outcome::Kind::cancelled);
      return;
    case Phase::serving: return close_preview("cancelled", grace);
    case Phase::over: return;
  }
}

void StepAttempt::end(const Outcome& o) {
  if (phase_ == Phase::over) return;
  phase_ = Phase::over;
  timeout_.cancel();
  poll_.cancel();
  destroy_all();
  // Read once every process of the step is gone, so the line counts all it tried.
  AttemptEnd ended;
  ended.outcome = o;
  ended.elapsed = elapsed();
  // The default shell depends on the step's root: the summary says which one ran.
  if (!cs_.step.run.empty()) {
    for (const auto& arg : shell_) ended.shell += (ended.shell.empty() ? "" : " ") + arg;
  }
  output_->close(egress_refusals(&ended.egress_refused));
  ended.log_truncated = output_->truncated();
  auto cb = events_.ended;  // the owner may destroy this attempt in it
  cb(ended);
}

std::string StepAttempt::egress_refusals(uint64_t* total) {
  if (net_class_ == 0) return {};
  network::EgressReport report = ctx_.network->report(net_class_);
  ctx_.network->remove_step(net_class_);
  net_class_ = 0;
  if (total) *total = report.refused_total;
  return network::describe(report);
}

Millis StepAttempt::elapsed() const {
  return std::chrono::duration_cast<Millis>(Clock::now() - started_);
}

std::string preview_env_name(std::string_view name) {
  std::string out = "BOXCAR_PREVIEW_";
  for (char c : name) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out.push_back(alnum ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_');
  }
  return out;
}

}  // namespace boxcar::agent
