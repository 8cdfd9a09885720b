#include "executors/host/host_sandbox.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>

#include "executors/host/spawn.h"
#include "executors/loopback.h"

namespace boxcar::executors::host {

namespace asio = boost::asio;
using asio::posix::stream_descriptor;
using namespace std::chrono_literals;

namespace {

constexpr size_t kReadSize = 64 * 1024;
// After the main process exited: how often to check that the rest of its tree is gone.
constexpr auto kSettleFirstDelay = 1ms;
constexpr auto kSettleMaxDelay = 50ms;
// A process that survives SIGKILL this long is stuck in the kernel; stop waiting for it.
constexpr auto kSettleGiveUp = 30s;

// Reaps the exited child behind `pidfd`; nullopt if it has not exited yet.
std::optional<siginfo_t> reap(int pidfd, bool block) {
  // On a non-blocking pidfd (Asio makes it one) waitid answers EAGAIN instead of waiting.
  int fl = ::fcntl(pidfd, F_GETFL);
  if (fl >= 0 && block == ((fl & O_NONBLOCK) != 0)) ::fcntl(pidfd, F_SETFL, fl ^ O_NONBLOCK);
  siginfo_t info{};
  int flags = WEXITED | __WALL | (block ? 0 : WNOHANG);
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, flags);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno == EAGAIN) return std::nullopt;
  if (rc < 0) {
    info.si_code = CLD_KILLED;  // ECHILD: someone else reaped it; nothing better to say
    info.si_status = SIGKILL;
    return info;
  }
  if (info.si_pid == 0) return std::nullopt;
  return info;
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

Result<std::filesystem::path> resolve_workdir(const std::filesystem::path& workspace,
                                              const std::string& workdir) {
  std::filesystem::path rel =
      workdir.empty() ? std::filesystem::path(".") : std::filesystem::path(workdir);
  if (has_nul(workdir) || rel.is_absolute()) {
    return Error{"workdir \"" + workdir + "\" must be relative to the workspace", EINVAL};
  }
  for (const auto& part : rel) {
    if (part == "..") return Error{"workdir \"" + workdir + "\" must not contain \"..\"", EINVAL};
  }
  std::filesystem::path full = (workspace / rel).lexically_normal();
  struct stat st {};
  if (::stat(full.c_str(), &st) != 0) {
    return Error{"workdir \"" + workdir + "\": " + std::strerror(errno), errno};
  }
  if (!S_ISDIR(st.st_mode)) return Error{"workdir \"" + workdir + "\" is not a directory", ENOTDIR};
  return full;
}

Status check_request(const ExecRequest& request) {
  if (request.argv.empty() || request.argv[0].empty()) return Error{"empty command", EINVAL};
  for (const auto& arg : request.argv) {
    if (has_nul(arg)) return Error{"command argument contains a NUL byte", EINVAL};
  }
  for (const auto& entry : request.env) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || has_nul(entry)) {
      return Error{"environment entry \"" + entry + "\" is not NAME=value", EINVAL};
    }
  }
  return {};
}

// One running command: its pipes, its exit, and its process tree. on_exit fires once the main
// process was reaped, both pipes are closed and no process of its tree is left.
class Command : public std::enable_shared_from_this<Command> {
 public:
  Command(asio::io_context& io, std::unique_ptr<ProcessTree> tree, ExecHandlers handlers,
          std::function<void()> on_done)
      : pidfd_(io),
        out_{OutputStream::out, stream_descriptor(io)},
        err_{OutputStream::err, stream_descriptor(io)},
        tree_(std::move(tree)),
        settle_timer_(io),
        handlers_(std::move(handlers)),
        on_done_(std::move(on_done)) {}

  ~Command() {
    if (!done_) abandon();
  }

  // Takes the child's descriptors (registering them with the reactor may fail). On failure
  // `child` keeps what was not taken; what was taken is cleaned up by the destructor.
  Status attach(Child& child) {
    boost::system::error_code ec;
    pidfd_.assign(child.pidfd.get(), ec);
    if (ec) return Error{"cannot watch the process: " + ec.message(), ec.value()};
    child.pidfd.release();
    out_.sd.assign(child.out.get(), ec);
    if (!ec) child.out.release();
    if (!ec) err_.sd.assign(child.err.get(), ec);
    if (!ec) child.err.release();
    if (ec) return Error{"cannot watch the output: " + ec.message(), ec.value()};
    return {};
  }

  void start() {
    read(out_);
    read(err_);
    pidfd_.async_wait(stream_descriptor::wait_read,
                      [self = shared_from_this()](const boost::system::error_code& ec) {
                        if (!ec) self->on_main_exited();
                      });
  }

  // The sandbox is being stopped: report `reason` instead of how the command ended, and
  // leave the tree its grace period even if the main process goes first.
  void stopping(Outcome::Kind reason) {
    if (done_) return;
    reason_ = reason;
    in_grace_ = true;
  }
  void signal(int sig) const { tree_->signal(sig); }
  void kill() {
    in_grace_ = false;
    settle_since_ = std::chrono::steady_clock::now();
    settle_delay_ = kSettleFirstDelay;
    tree_->kill();
  }

  // The sandbox is destroyed: kill everything, reap the main process, and never call back.
  void abandon() {
    if (dead_) return;
    dead_ = true;
    tree_->kill();
    boost::system::error_code ignored;
    out_.sd.close(ignored);
    err_.sd.close(ignored);
    settle_timer_.cancel();
    if (!reaped_ && pidfd_.is_open()) {
      ::syscall(SYS_pidfd_send_signal, pidfd_.native_handle(), SIGKILL, nullptr, 0);
      reap(pidfd_.native_handle(), /*block=*/true);  // SIGKILLed: it exits at once
      reaped_ = true;
    }
    pidfd_.close(ignored);
  }

 private:
  struct Pipe {
    OutputStream stream;
    stream_descriptor sd;
    std::unique_ptr<char[]> buf = std::make_unique<char[]>(kReadSize);
    bool closing = false;  // drain what is buffered, then close
  };

  void read(Pipe& p) {
    p.sd.async_read_some(asio::buffer(p.buf.get(), kReadSize),
                         [self = shared_from_this(), &p](const boost::system::error_code& ec,
                                                         size_t n) { self->on_read(p, ec, n); });
  }

  void on_read(Pipe& p, const boost::system::error_code& ec, size_t n) {
    if (dead_) return;
    if (n > 0) deliver(p, n);
    if (dead_) return;  // a handler destroyed the sandbox
    if (p.closing || ec == asio::error::operation_aborted) return drain_and_close(p);
    if (ec) return close(p);  // EOF, or an error as final as EOF
    read(p);
  }

  void deliver(const Pipe& p, size_t n) {
    if (handlers_.on_output) handlers_.on_output(p.stream, std::string_view(p.buf.get(), n));
  }

  // The tree is gone but the pipe is still open: a process outside it holds the write end.
  // Take what is buffered and stop listening. Bounded, in case that process keeps writing.
  void drain_and_close(Pipe& p) {
    for (int i = 0; i < 64 && !dead_; ++i) {
      ssize_t n = ::read(p.sd.native_handle(), p.buf.get(), kReadSize);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      deliver(p, static_cast<size_t>(n));
    }
    if (!dead_) close(p);
  }

  void close(Pipe& p) {
    boost::system::error_code ignored;
    p.sd.close(ignored);
    maybe_finish();
  }

  void on_main_exited() {
    if (dead_) return;
    auto info = reap(pidfd_.native_handle(), /*block=*/false);
    if (!info) {
      return pidfd_.async_wait(stream_descriptor::wait_read,
                               [self = shared_from_this()](const boost::system::error_code& ec) {
                                 if (!ec) self->on_main_exited();
                               });
    }
    reaped_ = true;
    exit_ = *info;
    boost::system::error_code ignored;
    pidfd_.close(ignored);
    // The step is over: what it left running (daemons included) goes, as on CI runners.
    if (!in_grace_) tree_->kill();
    settle_since_ = std::chrono::steady_clock::now();
    settle();
  }

  void settle() {
    if (dead_ || done_) return;
    bool give_up = !in_grace_ && std::chrono::steady_clock::now() - settle_since_ > kSettleGiveUp;
    if (tree_->empty() || give_up) {
      tree_empty_ = true;
      for (Pipe* p : {&out_, &err_}) {
        if (p->sd.is_open() && !p->closing) {
          p->closing = true;
          boost::system::error_code ignored;
          p->sd.cancel(ignored);
        }
      }
      return maybe_finish();
    }
    if (!in_grace_) tree_->kill();
    settle_timer_.expires_after(settle_delay_);
    settle_delay_ =
        std::min<std::chrono::steady_clock::duration>(settle_delay_ * 2, kSettleMaxDelay);
    settle_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->settle();
    });
  }

  void maybe_finish() {
    if (dead_ || done_ || !reaped_ || !tree_empty_ || out_.sd.is_open() || err_.sd.is_open())
      return;
    done_ = true;
    tree_->remove();  // if a stuck process keeps it, the sandbox's destroy() retries
    Outcome outcome;
    if (reason_) {
      outcome = Outcome::of(*reason_);
    } else if (exit_.si_code == CLD_EXITED) {
      outcome = Outcome::exited(exit_.si_status);
    } else {
      outcome = Outcome::killed_by(exit_.si_status);
    }
    auto self = shared_from_this();  // on_done_ drops the sandbox's reference
    if (on_done_) std::exchange(on_done_, nullptr)();
    if (auto on_exit = std::move(handlers_.on_exit)) on_exit(outcome);
  }

  stream_descriptor pidfd_;
  Pipe out_, err_;
  std::unique_ptr<ProcessTree> tree_;
  asio::steady_timer settle_timer_;
  std::chrono::steady_clock::duration settle_delay_ = kSettleFirstDelay;
  std::chrono::steady_clock::time_point settle_since_;
  ExecHandlers handlers_;
  std::function<void()> on_done_;
  std::optional<Outcome::Kind> reason_;
  siginfo_t exit_{};
  bool in_grace_ = false;
  bool reaped_ = false;
  bool tree_empty_ = false;
  bool done_ = false;
  bool dead_ = false;
};

}  // namespace

// --- Core --------------------------------------------------------------------------------

class HostSandbox::Core : public std::enable_shared_from_this<Core> {
 public:
  Core(asio::io_context& io, std::filesystem::path workspace, std::unique_ptr<ProcessTree> tree)
      : io_(io), workspace_(std::move(workspace)), tree_(std::move(tree)), grace_timer_(io) {}
  ~Core() { destroy(); }

  Status exec(const ExecRequest& request, ExecHandlers handlers) {
    if (!alive_) return Error{"the sandbox was destroyed", ESRCH};
    if (stopping_) return Error{"the sandbox is stopped", ESRCH};
    if (auto ok = check_request(request); !ok) return ok.error();
    auto cwd = resolve_workdir(workspace_, request.workdir);
    if (!cwd) return cwd.error();

    uint64_t id = ++last_id_;
    auto tree = tree_->child("c" + std::to_string(id));
    if (!tree) return tree.error();
    SpawnRequest spawn_request{request.argv, request.env, cwd->string(), (*tree)->cgroup_fd()};
    if (!(*tree)->env_cookie().empty()) spawn_request.env.push_back((*tree)->env_cookie());
    auto child = spawn(spawn_request);
    if (!child) {
      (*tree)->remove();
      return child.error();
    }
    (*tree)->set_process_group(child->pid);  // setsid: its pid is its process group

    std::weak_ptr<Core> weak = weak_from_this();
    auto command =
        std::make_shared<Command>(io_, std::move(*tree), std::move(handlers), [weak, id] {
          if (auto core = weak.lock()) core->running_.erase(id);
        });
    if (auto attached = command->attach(*child); !attached) {
      if (child->pidfd) {
        ::syscall(SYS_pidfd_send_signal, child->pidfd.get(), SIGKILL, nullptr, 0);
        reap(child->pidfd.get(), /*block=*/true);
      }
      return attached.error();  // ~Command kills and reaps what it took
    }
    running_.emplace(id, command);
    command->start();
    return {};
  }

  void stop(Outcome::Kind reason, Millis grace) {
    if (!alive_ || stopping_) return;
    stopping_ = true;
    for (auto& [id, command] : running_) {
      command->stopping(reason);
      command->signal(SIGTERM);
    }
    if (grace <= Millis::zero()) return kill_all();
    grace_timer_.expires_after(grace);
    grace_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto core = weak.lock();
      if (!ec && core) core->kill_all();
    });
  }

  void destroy() {
    if (!alive_) return;
    alive_ = false;
    grace_timer_.cancel();
    tree_->kill();
    auto running = std::move(running_);
    running_.clear();
    for (auto& [id, command] : running) command->abandon();
    if (!tree_->remove()) remove_when_empty(io_, std::move(tree_));
  }

 private:
  void kill_all() {
    if (!alive_) return;
    tree_->kill();
    for (auto& [id, command] : running_) command->kill();  // cookie mode: process groups
  }

  asio::io_context& io_;
  std::filesystem::path workspace_;
  std::unique_ptr<ProcessTree> tree_;
  asio::steady_timer grace_timer_;
  std::map<uint64_t, std::shared_ptr<Command>> running_;
  uint64_t last_id_ = 0;
  bool alive_ = true;
  bool stopping_ = false;
};

// --- HostSandbox -------------------------------------------------------------------------

HostSandbox::HostSandbox(asio::io_context& io, std::filesystem::path workspace,
                         std::unique_ptr<ProcessTree> tree)
    : core_(std::make_shared<Core>(io, std::move(workspace), std::move(tree))) {}

HostSandbox::~HostSandbox() { core_->destroy(); }

Status HostSandbox::exec(const ExecRequest& request, ExecHandlers handlers) {
  return core_->exec(request, std::move(handlers));
}

void HostSandbox::stop(Outcome::Kind reason, Millis grace) { core_->stop(reason, grace); }

void HostSandbox::destroy() { core_->destroy(); }

// Host processes share the agent's network: the loopback is the agent's own.
Result<unique_fd> HostSandbox::connect_tcp(uint16_t port) { return connect_loopback(port); }

void HostSandbox::destroy_core(const std::weak_ptr<Core>& core) {
  if (auto c = core.lock()) c->destroy();
}

// --- remove_when_empty -------------------------------------------------------------------

namespace {

struct Janitor {
  asio::steady_timer timer;
  std::unique_ptr<ProcessTree> tree;
  std::chrono::steady_clock::time_point give_up;
  std::chrono::steady_clock::duration delay = 1ms;
};

void retry_remove(const std::shared_ptr<Janitor>& j) {
  j->tree->kill();
  if (j->tree->remove() || std::chrono::steady_clock::now() > j->give_up) return;
  j->timer.expires_after(j->delay);
  j->delay = std::min<std::chrono::steady_clock::duration>(j->delay * 2, 100ms);
  j->timer.async_wait([j](const boost::system::error_code& ec) {
    if (!ec) retry_remove(j);
  });
}

}  // namespace

void remove_when_empty(asio::io_context& io, std::unique_ptr<ProcessTree> tree) {
  if (!tree) return;
  retry_remove(std::make_shared<Janitor>(
      Janitor{asio::steady_timer(io), std::move(tree), std::chrono::steady_clock::now() + 60s}));
}

}  // namespace boxcar::executors::host
