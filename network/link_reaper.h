// LinkReaper: deletes job veths on a thread of its own. Deleting a veth waits for the kernel's
// RCU grace period (~35 ms here) although it costs ~1 ms of CPU; on the agent's io thread that
// wait would stall every other job's logs, ready checks and DNS answers. The job's slot stays
// claimed until its veth is gone, so no new job gets the slot's addresses while the old link
// still holds them.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "network/slot_pool.h"

namespace boxcar::network {

class LinkReaper {
 public:
  explicit LinkReaper(SlotPool& slots);
  // Deletes what is queued, then returns.
  ~LinkReaper();
  LinkReaper(const LinkReaper&) = delete;
  LinkReaper& operator=(const LinkReaper&) = delete;

  // Deletes link `name` (if it was made: empty = none), then releases `slot`.
  void reap(std::string name, Slot slot);

 private:
  struct Task {
    std::string link;
    Slot slot;
  };
  void run();

  SlotPool& slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace boxcar::network
