#include "executors/native/sandbox_state.h"

#include "executors/loopback.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <boost/asio/post.hpp>

#include "base/size.h"
#include "executors/native/control_channel.h"

namespace boxcar::executors::native {

Outcome setup_outcome(const std::string& facility, int err, const std::string& detail) {
  return Outcome::setup(facility, err, detail);
}

namespace {

// Whether the process behind `pidfd` has exited; reaps it then. Never blocks: a pidfd woken
// without an exit (see wait_for_oom) must not stall the io_context in waitid.
bool reaped(int pidfd) {
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG) == 0) {
    return info.si_pid != 0;
  }
  // Not our child: an OCI runtime started it (executors/oci) and its keeper reaps it. Only a
  // readable pidfd says that it exited.
  pollfd p{pidfd, POLLIN, 0};
  return errno == ECHILD && ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// The first child exits right after reporting pid 1; reap it whenever that happens.
void reap_when_exited(std::shared_ptr<asio::posix::stream_descriptor> first) {
  first->async_wait(asio::posix::stream_descriptor::wait_read, [first](boost::system::error_code ec) {
    if (!ec && !reaped(first->native_handle())) reap_when_exited(first);
  });
}

}  // namespace

SandboxState::~SandboxState() {
  // Only when the io_context went away with our handlers in it (shutdown): reap pid 1 here,
  // briefly blocking, so that its cgroups can be removed.
  if (pidfd_ && !init_dead_) {
    signal_init(SIGKILL);
    siginfo_t info{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_->native_handle()), &info, WEXITED) < 0 &&
           errno == EINTR) {
    }
  }
}

void SandboxState::fail_setup(Outcome outcome) {
  setup_failure_ = std::move(outcome);
  release();
}

void SandboxState::release() {
  ended_trees_.clear();  // removed with the sandbox's cgroups
  cgroup_.remove();
  upper_.remove();
}

void SandboxState::begin(StepCgroup cgroup, Spawned spawned, UpperDir upper) {
  cgroup_ = std::move(cgroup);
  upper_ = std::move(upper);
  ctl_ = std::make_unique<Descriptor>(io_, spawned.ctl.release());
  reap_when_exited(std::make_shared<Descriptor>(io_, spawned.first_pidfd.release()));
  if (unique_fd efd = cgroup_.take_oom_eventfd()) {
    oom_ = std::make_unique<Descriptor>(io_, efd.release());
    wait_for_oom();
  }
  read_control();
}

void SandboxState::wait_for_oom() {
  auto self = shared_from_this();
  oom_->async_wait(Descriptor::wait_read, [self](boost::system::error_code ec) {
    if (ec || self->destroyed_ || !self->oom_) return;
    // Only a count in the eventfd is an OOM. Wake-ups without one happen: right after another
    // step's OOM, a fresh sandbox (a new eventfd, maybe the same fd number) was woken at once
    // and reported oom although it never ran out, most likely epoll reporting for a file
    // closed here but kept alive elsewhere, through the registration asio reused.
    uint64_t count = 0;
    if (::read(self->oom_->native_handle(), &count, sizeof count) == sizeof count && count > 0) {
      return self->on_oom();
    }
    self->wait_for_oom();
  });
}

Status SandboxState::exec(const ExecRequest& request, ExecHandlers handlers) {
  if (destroyed_) return Error{"the sandbox was destroyed", ESRCH};
  if (setup_failure_) {
    auto self = shared_from_this();
    asio::post(io_, [self, h = std::move(handlers)] {
      if (!self->destroyed_ && h.on_exit) h.on_exit(*self->setup_failure_);
    });
    return {};
  }
  if (stop_reason_ || init_dead_ || oom_hit_) return Error{"the sandbox is stopped", ESRCH};
  if (request.argv.empty()) return Error{"exec: empty argv", EINVAL};
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno), errno};
  if (::pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(out[0]);
    ::close(out[1]);
    return Error{std::string("pipe: ") + std::strerror(e), e};
  }
  unique_fd out_r(out[0]), err_r(err[0]);
  uint64_t id = next_id_++;
  auto e = std::make_shared<ExecState>();
  Pending p{{}, unique_fd(out[1]), unique_fd(err[1]), {}, {}};
  uint64_t flags = 0;
  if (request.stdin_pipe) {
    int in[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno), errno};
    p.in.reset(in[0]);
    e->stdin_w.reset(in[1]);
    flags |= exec_stdin;
  }
  if (request.own_tree && cgroup_.has_trees()) {
    auto tree = cgroup_.make_exec_tree("c" + std::to_string(id));
    if (!tree) return Error{"exec: " + tree.error().message, tree.error().err};
    p.tree = tree->take_dir();
    e->tree = std::make_shared<const ExecTree>(std::move(*tree));
    flags |= exec_tree;
  }
  p.body = Writer(Msg::exec).u64(id).strs(request.argv).strs(request.env).str(request.workdir).str(request.user).u64(flags).data();
  if (p.body.size() > kMaxMessage) {
    if (e->tree) e->tree->remove();
    return Error{"exec: argv and environment are too large", E2BIG};
  }
  if (Status sent = send(std::move(p)); !sent) {
    if (e->tree) e->tree->remove();
    return sent;
  }
  e->handlers = std::move(handlers);
  ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
  e->out = std::make_unique<Descriptor>(io_, out_r.release());
  e->err = std::make_unique<Descriptor>(io_, err_r.release());
  execs_[id] = e;
  return {};
}

void SandboxState::start_reading(const std::shared_ptr<ExecState>& e) {
  if (e->reading || e->finished) return;
  e->reading = true;
  read_output(e, OutputStream::out);
  read_output(e, OutputStream::err);
}

void SandboxState::on_started(uint64_t id, int pid, unique_fd pidfd) {
  auto it = execs_.find(id);
  if (it == execs_.end()) return;
  auto e = it->second;
  e->control = std::make_shared<NativeExecControl>(io_, pid, std::move(pidfd), e->tree, std::move(e->stdin_w));
  if (e->handlers.on_started) e->handlers.on_started(e->control);
  else e->control->close_stdin();  // nobody can write it: EOF rather than a command waiting forever
  if (destroyed_) return;
  start_reading(e);
}

void SandboxState::sweep_trees() {
  std::erase_if(ended_trees_, [](const auto& t) { return t->remove(); });
}

void SandboxState::configure(const std::string& hostname) {
  (void)send(Pending{Writer(Msg::configure).str(hostname).data(), {}, {}});
}

Status SandboxState::hand_over(const std::string& hostname, const std::vector<LayeredDir>& dirs,
                               const std::vector<LayeredMount>& mounts) {
  if (!ctl_) return Error{"the prewarmed sandbox is gone", ESRCH};
  for (size_t i = 0; i < mounts.size(); ++i) {
    std::vector<int> fds = layered_fds(mounts[i]);
    if (int rc = send_message(ctl_->native_handle(), layered_message(dirs[i]), fds.data(), static_cast<int>(fds.size()))) {
      return Error{std::string("handing the layered directories to the sandbox: ") + std::strerror(rc), rc};
    }
  }
  return send(Pending{Writer(Msg::configure).str(hostname).data(), {}, {}});
}

void SandboxState::stop(Outcome::Kind reason, Millis grace) {
  if (destroyed_ || setup_failure_ || init_dead_ || stop_reason_) return;
  stop_reason_ = reason;
  (void)send(Pending{Writer(Msg::terminate).data(), {}, {}});
  kill_timer_.expires_after(grace);
  auto self = shared_from_this();
  kill_timer_.async_wait([self](boost::system::error_code ec) {
    if (!ec && !self->init_dead_) self->signal_init(SIGKILL);
  });
}

Status SandboxState::freeze(bool frozen) {
  if (destroyed_ || init_dead_ || setup_failure_) {
    return Error{"the sandbox is not running", ESRCH, ErrorCode::conflict};
  }
  return cgroup_.freeze(frozen);
}

Result<SandboxUsage> SandboxState::usage() const {
  if (destroyed_ || setup_failure_) return Error{"the sandbox is not running", ESRCH, ErrorCode::conflict};
  return cgroup_.usage();
}

void SandboxState::destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  kill_timer_.cancel();
  for (auto& [id, e] : execs_) {
    e->finished = true;
    e->out.reset();
    e->err.reset();
    if (e->control) e->control->ended();
  }
  execs_.clear();
  oom_.reset();
  if (pidfd_) {
    ctl_.reset();  // init also exits when its control channel closes
    if (!init_dead_) signal_init(SIGKILL);  // the pidfd wait reaps it and removes the cgroups
    else release();
  } else if (!ctl_ || setup_failure_) {
    ctl_.reset();
    release();
  }
  // Otherwise pid 1's pid is still on its way: the control reader kills and reaps it.
}

Status SandboxState::send(Pending p) {
  int fds[4] = {p.out.get(), p.err.get()};
  int n = p.out ? 2 : 0;
  for (const unique_fd* extra : {&p.in, &p.tree}) {
    if (*extra) fds[n++] = extra->get();
  }
  if (int rc = send_message(ctl_->native_handle(), p.body, fds, n)) {
    return Error{std::string("exec: the sandbox's init is gone: ") + std::strerror(rc), rc};
  }
  return {};
}

void SandboxState::signal_init(int sig) {
  if (pidfd_) ::syscall(SYS_pidfd_send_signal, pidfd_->native_handle(), sig, nullptr, 0);
  else if (sig == SIGKILL) kill_requested_ = true;  // once its pid arrives
}

void SandboxState::read_output(const std::shared_ptr<ExecState>& e, OutputStream which) {
  Descriptor* d = which == OutputStream::out ? e->out.get() : e->err.get();
  char* buf = which == OutputStream::out ? e->out_buf.data() : e->err_buf.data();
  auto self = shared_from_this();
  d->async_read_some(asio::buffer(buf, e->out_buf.size()),
                     [self, e, which, buf](boost::system::error_code ec, size_t n) {
                       if (e->finished || self->destroyed_) return;
                       if (n > 0 && e->handlers.on_output) e->handlers.on_output(which, std::string_view(buf, n));
                       if (e->finished || self->destroyed_) return;
                       if (!ec) {
                         self->read_output(e, which);
                         return;
                       }
                       --e->open_streams;
                       self->maybe_finish(e);
                     });
}

void SandboxState::read_control() {
  auto self = shared_from_this();
  ctl_->async_wait(Descriptor::wait_read, [self](boost::system::error_code ec) {
    if (ec || !self->ctl_) return;
    for (;;) {
      std::string body;
      std::vector<int> fds;
      int rc = recv_message(self->ctl_->native_handle(), body, fds, MSG_DONTWAIT);
      std::vector<unique_fd> owned(fds.begin(), fds.end());
      if (rc == EAGAIN) break;
      if (rc != 0) {
        // Closed: init is gone (its pidfd reports that), or setup failed before it existed.
        if (!self->pidfd_ && !self->setup_failure_ && !self->destroyed_) {
          self->setup_failure_ = setup_outcome("sandbox start", EPIPE, "the sandbox's first process died");
          self->finish_all();
        }
        if (!self->pidfd_) self->release();
        self->ctl_.reset();
        return;
      }
      self->handle_message(body, owned);
      if (!self->ctl_) return;
    }
    self->read_control();
  });
}

void SandboxState::handle_message(const std::string& body, std::vector<unique_fd>& fds) {
  if (body.empty()) return;
  Reader r(body);
  switch (static_cast<Msg>(body[0])) {
    case Msg::started: {
      uint64_t id = r.u64();
      uint64_t pid = r.u64();
      if (!r.ok() || destroyed_) break;
      on_started(id, static_cast<int>(pid), fds.size() == 1 ? std::move(fds[0]) : unique_fd());
      break;
    }
    case Msg::unshared:
      on_unshared(static_cast<pid_t>(r.u64()));
      break;
    case Msg::ready:
      break;
    case Msg::failed: {
      std::string facility = r.str();
      int err = static_cast<int>(r.u64());
      if (destroyed_) break;
      setup_failure_ = setup_outcome(facility, err);
      finish_all();
      break;
    }
    case Msg::done: {
      uint64_t id = r.u64();
      int status = static_cast<int>(r.u64());
      auto it = execs_.find(id);
      if (it == execs_.end()) break;
      auto e = it->second;  // maybe_finish may erase it from execs_
      e->status = status;
      start_reading(e);  // a command that never started (126, 127) sent no Msg::started
      maybe_finish(e);
      if (!e->finished && e->open_streams > 0) {
        // A daemon the command started still holds its output. Like GitLab's runner, the
        // command is over when its process is: give late output a moment, then stop reading.
        e->linger = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(200));
        auto self = shared_from_this();
        e->linger->async_wait([self, e](boost::system::error_code ec) {
          if (!ec && !e->finished && !self->destroyed_) self->stop_lingering(e);
        });
      }
      break;
    }
    default:
      break;
  }
}

void SandboxState::on_unshared(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    ::kill(pid, SIGKILL);  // cannot happen to our own unreaped child; be safe anyway
    return;
  }
  pidfd_ = std::make_unique<Descriptor>(io_, fd);
  wait_for_init();
  if (destroyed_) {
    signal_init(SIGKILL);
    ctl_.reset();
    return;
  }
  if (kill_requested_) signal_init(SIGKILL);
}

void SandboxState::wait_for_init() {
  auto self = shared_from_this();
  pidfd_->async_wait(Descriptor::wait_read, [self](boost::system::error_code ec) {
    if (!ec && !self->init_dead_ && !reaped(self->pidfd_->native_handle())) return self->wait_for_init();
    self->on_init_exit();
  });
}

void SandboxState::on_oom() {
  oom_hit_ = true;
  signal_init(SIGKILL);
}

void SandboxState::on_init_exit() {
  siginfo_t info{};
  ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_->native_handle()), &info, WEXITED);
  init_dead_ = true;
  kill_timer_.cancel();
  if (destroyed_) {
    release();
    return;
  }
  std::vector<std::shared_ptr<ExecState>> pending;
  for (auto& [id, e] : execs_) pending.push_back(e);
  for (auto& e : pending) start_reading(e);
  for (auto& e : pending) maybe_finish(e);
}

void SandboxState::finish_all() {
  std::vector<std::shared_ptr<ExecState>> pending;
  for (auto& [id, e] : execs_) pending.push_back(e);
  execs_.clear();
  for (auto& e : pending) {
    e->finished = true;
    e->out.reset();
    e->err.reset();
  }
  for (auto& e : pending) {
    if (destroyed_) return;
    if (e->handlers.on_exit) e->handlers.on_exit(*setup_failure_);
  }
}

Result<unique_fd> SandboxState::connect_tcp(uint16_t port) {
  if (destroyed_ || init_dead_ || !pidfd_) return Error{"the sandbox is not running", ESRCH};
  return connect_loopback(port, pidfd_->native_handle());
}

void SandboxState::stop_lingering(const std::shared_ptr<ExecState>& e) {
  for (auto which : {OutputStream::out, OutputStream::err}) {
    Descriptor* d = which == OutputStream::out ? e->out.get() : e->err.get();
    if (!d || !d->is_open()) continue;
    char* buf = which == OutputStream::out ? e->out_buf.data() : e->err_buf.data();
    boost::system::error_code ec;
    d->non_blocking(true, ec);
    for (;;) {
      size_t n = d->read_some(asio::buffer(buf, e->out_buf.size()), ec);
      if (ec || n == 0) break;  // would_block: nothing more is waiting
      if (e->handlers.on_output) e->handlers.on_output(which, std::string_view(buf, n));
      if (e->finished || destroyed_) return;
    }
  }
  e->open_streams = 0;
  maybe_finish(e);
}

void SandboxState::maybe_finish(std::shared_ptr<ExecState> e) {
  if (e->finished || e->open_streams > 0) return;
  if (!e->status && !init_dead_) return;
  Outcome outcome;
  if (e->status && WIFSIGNALED(*e->status) && WTERMSIG(*e->status) == SIGKILL && !oom_hit_ &&
      cgroup_.oom_kills() > 0) {
    // The OOM killer's victim: the whole step goes with it.
    oom_hit_ = true;
    signal_init(SIGKILL);
  }
  if (oom_hit_) {
    outcome = Outcome::of(Outcome::Kind::oom);
    outcome.message = "out of memory";
  } else if (stop_reason_) {
    outcome = Outcome::of(*stop_reason_);
  } else if (e->status && WIFEXITED(*e->status)) {
    outcome = Outcome::exited(WEXITSTATUS(*e->status));
    // ENOSPC inside says "no space left", not why: name the limit and the flag.
    if (!outcome.ok() && upper_.full()) {
      outcome.message = describe(outcome) + ": the step filled its image root: it may write " +
                        format_size(upper_.limit()) + " there (--max-image-write), and got \"no space left on device\"";
    }
  } else if (e->status && WIFSIGNALED(*e->status)) {
    outcome = Outcome::killed_by(WTERMSIG(*e->status));
  } else {
    outcome = Outcome::killed_by(SIGKILL);
    outcome.message = "the sandbox's init died";
  }
  e->finished = true;
  for (auto it = execs_.begin(); it != execs_.end(); ++it) {
    if (it->second == e) {
      execs_.erase(it);
      break;
    }
  }
  e->out.reset();
  e->err.reset();
  if (e->control) e->control->ended();
  if (e->handlers.on_exit) e->handlers.on_exit(outcome);
  // Its tree goes once it is empty: now, or after the daemons it left (destroy kills them).
  if (e->tree && !destroyed_) ended_trees_.push_back(std::move(e->tree));
  sweep_trees();
}

}  // namespace boxcar::executors::native
