#include "sandboxes/command_run.h"

#include <signal.h>

#include <map>

namespace boxcar::sandboxes {

using executors::Outcome;

namespace {

// The commands started per sandbox, for sandbox_gone(): only ever used on the io_context.
std::multimap<const executors::Sandbox*, std::weak_ptr<CommandRun>>& running_in() {
  static std::multimap<const executors::Sandbox*, std::weak_ptr<CommandRun>> runs;
  return runs;
}

}  // namespace

void CommandRun::sandbox_gone(const executors::Sandbox& sandbox) {
  auto [begin, end] = running_in().equal_range(&sandbox);
  std::vector<std::shared_ptr<CommandRun>> runs;
  for (auto it = begin; it != end; ++it) {
    if (auto run = it->second.lock()) runs.push_back(std::move(run));
  }
  running_in().erase(begin, end);
  for (auto& run : runs) {
    run->sandbox_ = nullptr;
    run->control_.reset();
    Outcome gone = Outcome::of(Outcome::Kind::cancelled);
    gone.message = "the sandbox was stopped or removed";
    run->on_exit(gone);
  }
}

size_t CommandRun::stop_all(const executors::Sandbox& sandbox, Outcome::Kind reason) {
  auto [begin, end] = running_in().equal_range(&sandbox);
  std::vector<std::shared_ptr<CommandRun>> runs;
  for (auto it = begin; it != end; ++it) {
    if (auto run = it->second.lock(); run && !run->finished_) runs.push_back(std::move(run));
  }
  for (auto& run : runs) run->stop(reason, Millis{0});
  return runs.size();
}

CommandRun::CommandRun(boost::asio::io_context& io, executors::Sandbox& sandbox, Millis grace, CommandEvents events)
    : sandbox_(&sandbox), grace_(grace), events_(std::move(events)), timer_(io) {}

Result<std::shared_ptr<CommandRun>> CommandRun::start(boost::asio::io_context& io, executors::Sandbox& sandbox,
                                                      executors::ExecRequest request, Millis timeout, Millis grace,
                                                      CommandEvents events) {
  auto run = std::make_shared<CommandRun>(io, sandbox, grace, std::move(events));
  request.own_tree = true;
  executors::ExecHandlers handlers;
  // The handlers hold the run: the executor drops them after on_exit (or when the sandbox is
  // destroyed), which ends the cycle.
  handlers.on_started = [run](std::shared_ptr<executors::ExecControl> control) {
    run->control_ = std::move(control);
    run->pid_ = run->control_->pid();
    if (run->events_.started) run->events_.started(run->pid_);
  };
  handlers.on_output = [run](executors::OutputStream s, std::string_view data) {
    if (run->events_.output) run->events_.output(s, data);
  };
  handlers.on_exit = [run](const Outcome& o) { run->on_exit(o); };
  if (Status s = sandbox.exec(request, std::move(handlers)); !s) return s.error();
  // Forget finished runs of this sandbox while at it, so the map stays as small as what runs.
  auto [begin, end] = running_in().equal_range(&sandbox);
  for (auto it = begin; it != end;) it = it->second.expired() ? running_in().erase(it) : std::next(it);
  running_in().emplace(&sandbox, run);
  if (timeout.count() > 0) {
    run->timer_.expires_after(timeout);
    run->timer_.async_wait([weak = std::weak_ptr<CommandRun>(run)](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!ec && self && !self->finished_) self->stop(Outcome::Kind::timeout, self->grace_);
    });
  }
  return run;
}

void CommandRun::stop(Outcome::Kind reason, Millis grace) {
  if (finished_ || stopping_) return;
  stopping_ = true;
  reason_ = reason;
  timer_.cancel();
  if (!control_) {
    // No way to reach one command: the whole sandbox goes, as the executor's stop() does.
    stopped_sandbox_ = true;
    if (sandbox_ != nullptr) sandbox_->stop(reason, grace);
    return;
  }
  (void)control_->signal(SIGTERM, true);
  if (grace.count() == 0) return escalate();
  timer_.expires_after(grace);
  timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!ec && self) self->escalate();
  });
}

void CommandRun::escalate() {
  if (finished_ || !control_) return;
  (void)control_->kill_tree();
}

Status CommandRun::signal(int sig, bool tree) {
  if (finished_) return Error{"the process has ended", 0, ErrorCode::conflict};
  if (!control_) return Error{"this executor cannot signal one command", 0, ErrorCode::unavailable};
  return control_->signal(sig, tree);
}

void CommandRun::write_stdin(std::string data, std::function<void(bool)> done) {
  if (finished_ || !control_) return done(false);
  control_->write_stdin(std::move(data), std::move(done));
}

void CommandRun::close_stdin() {
  if (control_ && !finished_) control_->close_stdin();
}

double CommandRun::duration_ms() const {
  auto end = finished_ ? ended_at_ : std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(end - started_at_).count();
}

void CommandRun::on_exit(Outcome outcome) {
  if (finished_) return;
  finished_ = true;
  ended_at_ = std::chrono::steady_clock::now();
  timer_.cancel();
  // A command we stopped reports why, not the signal that ended it.
  if (reason_ != Outcome::Kind::ok && (outcome.kind == Outcome::Kind::signaled || outcome.kind == reason_ ||
                                       outcome.kind == Outcome::Kind::failed)) {
    outcome.kind = reason_;
  }
  control_.reset();
  if (events_.exit) events_.exit(outcome);
  events_ = {};
}

}  // namespace boxcar::sandboxes
