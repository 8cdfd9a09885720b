// BackgroundRemoval: deletes directory trees (finished jobs' workspaces and artifact copies) on
// a thread of its own. The agent's io_context also answers the preview proxy and sends the
// heartbeats; removing a workspace of 600,000 files there froze both for 7 s. remove() renames
// the tree into the trash directory first (one rename, at once), so its path is free for the
// next job before the removal even starts; whatever an agent that died or was stopped left in
// the trash is removed when the next one starts.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "base/tree_walk.h"  // remove_tree

namespace boxcar::agent {

class BackgroundRemoval {
 public:
  // `trash`: a directory on the same filesystem as the trees to remove (created if missing);
  // what it already holds is queued at once.
  explicit BackgroundRemoval(std::filesystem::path trash);
  // Stops between two entries; what is left stays in the trash for the next start.
  ~BackgroundRemoval();
  BackgroundRemoval(const BackgroundRemoval&) = delete;
  BackgroundRemoval& operator=(const BackgroundRemoval&) = delete;

  // Moves `tree` (a directory, a file, or nothing) out of the way at once and removes it in the
  // background. Where it cannot be renamed into the trash (another filesystem), it is removed
  // where it is, still in the background.
  void remove(const std::filesystem::path& tree);

  // Whether some tree is waiting or being removed.
  bool busy() const;

 private:
  void run();

  std::filesystem::path trash_;
  std::string tag_;  // this instance's prefix of names in the trash
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::filesystem::path> queue_;
  bool working_ = false;
  uint64_t counter_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace boxcar::agent
