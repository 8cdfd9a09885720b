// GitSlot: the one git checkout a sandbox may have in flight (routes_git.cc). The checkout runs
// on a thread of its own (libgit2 blocks) and outlives neither its sandbox's directory nor the
// host's io_context: when the sandbox goes, abandon() cancels the transfer and the thread then
// cleans up after itself instead of posting its answer.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

namespace boxcar::sandboxes {

struct GitRun {
  std::atomic<bool> cancelled{false};  // libgit2 stops at its next progress callback
  std::mutex mu;                       // held while the tree is placed and by abandon()
  bool abandoned = false;              // guarded by mu
  bool removed = false;                // abandoned because the sandbox was deleted (guarded by mu)
};

class GitSlot {
 public:
  GitSlot() = default;
  GitSlot(const GitSlot&) = delete;
  GitSlot& operator=(const GitSlot&) = delete;
  ~GitSlot() { abandon(false); }

  bool busy() const { return run_ != nullptr; }
  std::shared_ptr<GitRun> begin() { return run_ = std::make_shared<GitRun>(); }
  // The run ended (its thread answered): the slot takes another.
  void end(const std::shared_ptr<GitRun>& run) {
    if (run_ == run) run_.reset();
  }
  // The sandbox is going (`removed`: deleted, its directory with it; else the host is shutting
  // down and the directory stays): waits for a placement under way, then nothing of the run
  // touches the sandbox's workspace or the io_context any more.
  void abandon(bool removed) {
    if (!run_) return;
    run_->cancelled = true;
    std::lock_guard lock(run_->mu);
    run_->abandoned = true;
    run_->removed = removed;
    run_.reset();
  }

 private:
  std::shared_ptr<GitRun> run_;
};

}  // namespace boxcar::sandboxes
