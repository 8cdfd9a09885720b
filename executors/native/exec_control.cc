#include "executors/native/exec_control.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <boost/asio/post.hpp>

namespace boxcar::executors::native {

namespace asio = boost::asio;

namespace {

// The pid behind `pidfd` in our pid namespace (its "Pid:" in fdinfo), -1 once it was reaped.
pid_t host_pid_of(int pidfd) {
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(pidfd));
  for (std::string key; in >> key;) {
    if (key == "Pid:") {
      long pid = -1;
      in >> pid;
      return static_cast<pid_t>(pid);
    }
  }
  return -1;
}

Error ended_error() { return Error{"the command has ended", ESRCH}; }

}  // namespace

NativeExecControl::NativeExecControl(asio::io_context& io, int pid, unique_fd pidfd,
                                     std::shared_ptr<const ExecTree> tree, unique_fd stdin_w)
    : io_(io), pid_(pid), pidfd_(std::move(pidfd)), tree_(std::move(tree)) {
  if (pidfd_) host_pid_ = host_pid_of(pidfd_.get());
  if (stdin_w) {
    ::fcntl(stdin_w.get(), F_SETFL, O_WRONLY | O_NONBLOCK);
    stdin_ = std::make_unique<asio::posix::stream_descriptor>(io_, stdin_w.release());
  }
}

NativeExecControl::~NativeExecControl() = default;

Status NativeExecControl::signal(int sig, bool tree) {
  if (ended_) return ended_error();
  if (!tree) {
    if (!pidfd_) return Error{"the command's pidfd is unknown: it cannot be signalled alone", ESRCH};
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0) {
      return Error{std::string("signalling the command: ") + std::strerror(errno), errno};
    }
    return {};
  }
  if (tree_) return tree_->signal(sig);
  // The fallback: the process group, which a daemon that called setsid() has left.
  if (host_pid_ <= 0 || ::kill(-host_pid_, sig) != 0) {
    int e = host_pid_ <= 0 ? ESRCH : errno;
    return Error{std::string("signalling the command's process group: ") + std::strerror(e), e};
  }
  return {};
}

Status NativeExecControl::kill_tree() {
  if (ended_) return ended_error();
  if (tree_) return tree_->kill();
  return signal(SIGKILL, true);
}

void NativeExecControl::write_stdin(std::string data, std::function<void(bool ok)> done) {
  if (!stdin_ || closing_ || ended_) {
    if (done) asio::post(io_, [done = std::move(done)] { done(false); });
    return;
  }
  queue_.push_back(Write{std::move(data), 0, std::move(done)});
  pump();
}

void NativeExecControl::close_stdin() {
  if (!stdin_ || closing_) return;
  closing_ = true;
  pump();
}

void NativeExecControl::ended() {
  ended_ = true;
  fail_writes();
}

void NativeExecControl::fail_writes() {
  std::deque<Write> failed;
  failed.swap(queue_);
  stdin_.reset();
  for (auto& w : failed) {
    if (w.done) asio::post(io_, [done = std::move(w.done)] { done(false); });
  }
}

bool NativeExecControl::write_some() {
  Write& w = queue_.front();
  // SIGPIPE would end the agent when the command closed its end: blocked around the write,
  // and one it raised is taken back before it is unblocked (the agent does not ignore it).
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigset_t pending;
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE);
  ssize_t n = ::write(stdin_->native_handle(), w.data.data() + w.offset, w.data.size() - w.offset);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    timespec zero{0, 0};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (n < 0) return err == EAGAIN || err == EINTR;
  w.offset += static_cast<size_t>(n);
  return true;
}

void NativeExecControl::pump() {
  while (stdin_ && !waiting_) {
    if (queue_.empty()) {
      if (closing_) stdin_.reset();  // EOF for the command
      return;
    }
    if (!write_some()) return fail_writes();
    Write& w = queue_.front();
    if (w.offset == w.data.size()) {
      auto done = std::move(w.done);
      queue_.pop_front();
      if (done) asio::post(io_, [done = std::move(done)] { done(true); });
      continue;
    }
    // The pipe is full: until the command reads.
    waiting_ = true;
    std::weak_ptr<NativeExecControl> weak = weak_from_this();
    stdin_->async_wait(asio::posix::stream_descriptor::wait_write, [weak](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!self) return;
      self->waiting_ = false;
      if (ec) return self->fail_writes();
      self->pump();
    });
  }
}

}  // namespace boxcar::executors::native
