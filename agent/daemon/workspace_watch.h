// WorkspaceWatch: keeps each job's workspace under the agent's size and inode limits
// (--max-workspace, --max-workspace-inodes). One thread walks the watched workspaces in turn
// (base/tree_walk.h) about once a second and, when one is over a limit, tells its job runner on the
// io_context; the runner then kills the job's steps, which end failed with the reason
// ("workspace over its 10.0 GiB limit (10.4 GiB used)").
//
// Why a watchdog, and not a filesystem that refuses the write (measured on this kind of host):
// - ext4/XFS project quotas need the data directory's filesystem made with the feature and
//   mounted with prjquota; a plain Debian 12 root is neither, and neither can be switched on
//   while it is mounted.
// - a loop-mounted ext4 image per workspace enforces the limit exactly, but mkfs.ext4 and the
//   mount took 150-500 ms per job here (the target from webhook to first step is 50 ms), it
//   needs loop devices (most containers have none), and every agent killed with SIGKILL would
//   leave a mount behind.
// - a tmpfs would hold checkouts in RAM.
// The watchdog works on any filesystem, with either executor, at no cost when a job starts.
// Its price: the limit is checked, not enforced by the kernel: a step can write past it for up
// to about one interval before it is stopped. The interval grows with the cost of a walk (at
// least 4 times the last one), so even a huge tree costs at most about a fifth of a core.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/duration.h"
#include "base/result.h"
#include "base/workspace_usage.h"

namespace boxcar::agent {

// The measuring itself is base/workspace_usage.h (the sandbox API's disk quota uses it too).
using boxcar::measure_workspace;
using boxcar::over_limit;
using boxcar::WorkspaceLimits;
using boxcar::WorkspaceUsage;

class WorkspaceWatch {
  struct Entry;

 public:
  // Watching one directory; destroying it (on the io_context's thread) ends the watch, and no
  // `over` runs after that.
  class Handle {
   public:
    explicit Handle(std::shared_ptr<Entry> entry) : entry_(std::move(entry)) {}
    ~Handle();
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

   private:
    std::shared_ptr<Entry> entry_;
  };

  WorkspaceWatch(boost::asio::io_context& io, WorkspaceLimits limits);
  ~WorkspaceWatch();
  WorkspaceWatch(const WorkspaceWatch&) = delete;
  WorkspaceWatch& operator=(const WorkspaceWatch&) = delete;

  const WorkspaceLimits& limits() const { return limits_; }

  // Watches `dir` (it may not exist yet) until the handle is destroyed. `over(reason)` runs
  // once, on the io_context, when the directory is past a limit; it is not watched after that.
  std::unique_ptr<Handle> watch(std::filesystem::path dir, std::function<void(const std::string&)> over);
  // The same for directories measured together against one limit (a job's workspace and the
  // layers its steps write: agent/workspace_layers.h).
  std::unique_ptr<Handle> watch(std::vector<std::filesystem::path> dirs,
                                std::function<void(const std::string&)> over);

 private:
  void run();

  boost::asio::io_context& io_;
  WorkspaceLimits limits_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Entry>> entries_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace boxcar::agent
