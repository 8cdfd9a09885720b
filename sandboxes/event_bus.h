// EventBus: the events of one sandbox (GET /sandboxes/{id}/events, SANDBOXES.md §2.1): `state`,
// `process_exit`, `oom` and `port`, published by the host's state changes, the process table and
// the port routes, fanned out to every open stream. Each subscriber's queue is bounded: past
// kQueue events the oldest go, and the subscriber is told how many with an `overflow` event
// before the next one (never a silent drop).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

namespace boxcar::sandboxes {

class EventBus {
 public:
  static constexpr size_t kQueue = 256;

  struct Subscriber {
    std::deque<std::string> queue;  // framed SSE events (event_stream.h), oldest first
    uint64_t dropped = 0;           // taken from the front since the last take()
    bool closed = false;            // the sandbox is gone: no more events
    std::function<void()> wake;     // runs after each publish and at close
    // The next event to send ("" when none): `overflow {dropped}` first when some were dropped.
    std::string take();
  };

  EventBus() = default;
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;
  // Closes every subscriber (the sandbox was deleted).
  ~EventBus();

  // Held by the stream; the bus keeps only a weak reference, so a stream that went away costs
  // nothing.
  std::shared_ptr<Subscriber> subscribe(std::function<void()> wake);
  void publish(std::string_view name, boost::json::object data);
  size_t subscribers() const;

 private:
  std::vector<std::weak_ptr<Subscriber>> subs_;
};

}  // namespace boxcar::sandboxes
