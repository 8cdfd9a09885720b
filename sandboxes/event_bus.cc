#include "sandboxes/event_bus.h"

#include <algorithm>

#include "sandboxes/event_stream.h"

namespace boxcar::sandboxes {

std::string EventBus::Subscriber::take() {
  if (dropped > 0) {
    std::string overflow = sse_event("overflow", boost::json::object{{"dropped", dropped}});
    dropped = 0;
    return overflow;
  }
  if (queue.empty()) return {};
  std::string next = std::move(queue.front());
  queue.pop_front();
  return next;
}

EventBus::~EventBus() {
  for (auto& weak : subs_) {
    if (auto s = weak.lock()) {
      s->closed = true;
      if (s->wake) s->wake();
    }
  }
}

std::shared_ptr<EventBus::Subscriber> EventBus::subscribe(std::function<void()> wake) {
  std::erase_if(subs_, [](const auto& w) { return w.expired(); });
  auto s = std::make_shared<Subscriber>();
  s->wake = std::move(wake);
  subs_.push_back(s);
  return s;
}

void EventBus::publish(std::string_view name, boost::json::object data) {
  std::string frame;
  for (auto& weak : subs_) {
    auto s = weak.lock();
    if (!s) continue;
    if (frame.empty()) frame = sse_event(name, data);
    if (s->queue.size() >= kQueue) {
      s->queue.pop_front();
      ++s->dropped;
    }
    s->queue.push_back(frame);
    // Waking may end the stream and release the subscriber: keep `s` alive until it returns.
    if (s->wake) s->wake();
  }
}

size_t EventBus::subscribers() const {
  return static_cast<size_t>(std::count_if(subs_.begin(), subs_.end(), [](const auto& w) { return !w.expired(); }));
}

}  // namespace boxcar::sandboxes
