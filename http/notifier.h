// Notifier: wakes requests held in this process (long-poll claims, log followers) when what they
// wait for may have happened. Waiters always re-check the store after a wake, so a spurious wake
// is harmless, and a change made by another replica is caught by their periodic re-check.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace boxcar::server {

class Notifier {
 public:
  // Read this before checking the store, and pass it to wait(): a notify() in between is not lost.
  uint64_t generation() const;
  // Calls `wake` once, at the first notify() after generation `seen` (at once if one already
  // happened). `wake` runs on the notifying thread: it must only post. Returns an id for cancel.
  uint64_t wait(uint64_t seen, std::function<void()> wake);
  void cancel(uint64_t id);
  void notify();
  size_t waiters() const;

 private:
  mutable std::mutex mu_;
  uint64_t generation_ = 0;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::function<void()>> waiters_;
};

// Waits on `timer` (which must run on a strand, like a Responder's executor) until `notifier`
// fires after `seen` or `timeout` passes, then calls `done` on the timer's executor. Call it from
// that executor. Cancelling the timer (e.g. from an on_close callback) also ends the wait.
void wait_notified(Notifier& notifier, uint64_t seen,
                   const std::shared_ptr<boost::asio::steady_timer>& timer,
                   std::chrono::milliseconds timeout, std::function<void()> done);

}  // namespace boxcar::server
