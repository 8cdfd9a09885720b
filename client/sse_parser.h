// SseParser: server-sent events (text/event-stream) cut out of a body that arrives in pieces of
// any size, as the sandbox API frames them (docs/sandboxes.md: `id`, `event`, `data` lines; a
// line starting with ':' is a keep-alive). The server is not trusted: an event larger than the
// cap is an error, never an unbounded buffer.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar::client {

struct SseEvent {
  std::string id;     // "" when the event had none
  std::string event;  // "message" when the event named none
  std::string data;   // the data lines joined by '\n'
};

class SseParser {
 public:
  // `max_event`: the most bytes one event's lines may take.
  explicit SseParser(size_t max_event = 64u << 20) : max_event_(max_event) {}

  // Feeds the next piece of the body; calls `on_event` for each event it completes (false from
  // it stops, and feed returns ok). Errors: an event past the cap.
  Status feed(std::string_view piece, const std::function<bool(const SseEvent&)>& on_event);

  // Whether the last feed stopped because on_event said so.
  bool stopped() const { return stopped_; }

 private:
  bool line(std::string_view text, const std::function<bool(const SseEvent&)>& on_event);

  size_t max_event_;
  std::string pending_;  // an unfinished line
  SseEvent current_;
  bool has_data_ = false;
  bool skip_lf_ = false;  // the last piece ended with '\r': a '\n' first in the next one is its pair
  size_t event_bytes_ = 0;
  bool stopped_ = false;
};

}  // namespace boxcar::client
