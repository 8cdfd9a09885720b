// CommandRun: one command of the sandbox API running in an executor Sandbox, with the ending the
// API promises (SANDBOXES.md §2.2): on a timeout or a kill, TERM to the command's own tree, then
// after the grace period kill_tree (cgroup.kill), so nothing it started survives and nothing
// else in the sandbox is touched. Exec, sessions and processes all run commands through it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/duration.h"
#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::sandboxes {

struct CommandEvents {
  std::function<void(int pid)> started;  // when the executor reports the pid (native)
  std::function<void(executors::OutputStream, std::string_view)> output;
  std::function<void(const executors::Outcome&)> exit;  // once, after all output
};

class CommandRun : public std::enable_shared_from_this<CommandRun> {
 public:
  // Starts `request` (own_tree is set here). `timeout` 0: none. An Error: nothing started
  // (the sandbox is not running).
  static Result<std::shared_ptr<CommandRun>> start(boost::asio::io_context& io, executors::Sandbox& sandbox,
                                                   executors::ExecRequest request, Millis timeout, Millis grace,
                                                   CommandEvents events);

  // TERM to the tree, `grace`, then kill_tree; the outcome says `reason` (cancelled, timeout).
  void stop(executors::Outcome::Kind reason, Millis grace);
  Status signal(int sig, bool tree);
  // Stdin (ExecRequest::stdin_pipe): see ExecControl. Without a control: done(false).
  void write_stdin(std::string data, std::function<void(bool)> done);
  void close_stdin();

  int pid() const { return pid_; }
  bool finished() const { return finished_; }
  double duration_ms() const;
  // The executor gave no ExecControl (it cannot stop one command): a timeout or a kill then
  // stopped the whole sandbox, which the caller must start again (SandboxHost::stopped).
  bool stopped_sandbox() const { return stopped_sandbox_; }

  CommandRun(boost::asio::io_context& io, executors::Sandbox& sandbox, Millis grace, CommandEvents events);

  // `sandbox` is about to be destroyed (removed, stopped, restarted): every command still running
  // in it ends now as cancelled, and none touches it again. The executor's destroy() runs no
  // handler, so without this a request waiting for its command would wait forever and its
  // timer would reach a freed sandbox.
  static void sandbox_gone(const executors::Sandbox& sandbox);
  // Stops every command still running in `sandbox` at once (no grace) with `reason`: the disk
  // quota check (sandboxes/disk_quota.h). How many there were.
  static size_t stop_all(const executors::Sandbox& sandbox, executors::Outcome::Kind reason);

 private:
  void on_exit(executors::Outcome outcome);
  void escalate();

  executors::Sandbox* sandbox_;  // null once the sandbox is gone
  Millis grace_;
  CommandEvents events_;
  std::shared_ptr<executors::ExecControl> control_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point ended_at_{};
  int pid_ = 0;
  bool finished_ = false;
  bool stopped_sandbox_ = false;
  bool stopping_ = false;
  executors::Outcome::Kind reason_ = executors::Outcome::Kind::ok;  // ok: not stopped by us
  std::string pending_stdin_;  // written once the control arrives
};

}  // namespace boxcar::sandboxes
