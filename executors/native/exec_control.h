// NativeExecControl: ExecControl for one command of a native sandbox (executor.h). Signals go
// to the command through its pidfd, to its tree through its cgroup (exec_tree.h) or, where it
// has none, its process group; stdin is the write end of a pipe, written without blocking.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "base/unique_fd.h"
#include "executors/executor.h"
#include "executors/native/exec_tree.h"

namespace boxcar::executors::native {

class NativeExecControl final : public ExecControl, public std::enable_shared_from_this<NativeExecControl> {
 public:
  // `pid`: in the sandbox; `pidfd`: from init (may be empty: then the leader cannot be
  // signalled); `tree`: the command's cgroup, or null for its process group (the command is a
  // session leader: setsid); `stdin_w`: the pipe's write end, or empty.
  NativeExecControl(boost::asio::io_context& io, int pid, unique_fd pidfd, std::shared_ptr<const ExecTree> tree,
                    unique_fd stdin_w);
  ~NativeExecControl() override;

  int pid() const override { return pid_; }
  Status signal(int sig, bool tree) override;
  Status kill_tree() override;
  bool tree_is_cgroup() const override { return tree_ != nullptr; }
  void write_stdin(std::string data, std::function<void(bool ok)> done) override;
  void close_stdin() override;

  // The command's on_exit is about to run: from now on signals are refused and stdin is gone.
  void ended();

 private:
  struct Write {
    std::string data;
    size_t offset = 0;
    std::function<void(bool)> done;
  };
  void pump();
  // Writes what it can of the queue's head; false when the pipe is broken.
  bool write_some();
  void fail_writes();

  boost::asio::io_context& io_;
  int pid_;
  pid_t host_pid_ = -1;  // the leader's pid as the agent sees it: its process group's id
  unique_fd pidfd_;
  std::shared_ptr<const ExecTree> tree_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> stdin_;
  std::deque<Write> queue_;
  bool waiting_ = false, closing_ = false, ended_ = false;
};

}  // namespace boxcar::executors::native
