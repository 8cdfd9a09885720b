#include "client/sse_parser.h"

namespace boxcar::client {

bool SseParser::line(std::string_view text, const std::function<bool(const SseEvent&)>& on_event) {
  if (text.empty()) {  // the blank line that ends an event
    bool go_on = true;
    if (has_data_ || !current_.event.empty()) {
      if (current_.event.empty()) current_.event = "message";
      go_on = on_event(current_);
    }
    current_ = SseEvent{};
    has_data_ = false;
    event_bytes_ = 0;
    return go_on;
  }
  if (text.front() == ':') return true;  // a comment: the keep-alive
  std::string_view field = text, value;
  if (size_t colon = text.find(':'); colon != std::string_view::npos) {
    field = text.substr(0, colon);
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) current_.data += '\n';
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event.assign(value);
  } else if (field == "id") {
    current_.id.assign(value);
  }  // "retry" and unknown fields are ignored, as the SSE spec says
  return true;
}

Status SseParser::feed(std::string_view piece, const std::function<bool(const SseEvent&)>& on_event) {
  stopped_ = false;
  size_t start = 0;
  if (skip_lf_ && !piece.empty() && piece.front() == '\n') start = 1;
  skip_lf_ = false;
  for (size_t i = start; i < piece.size(); ++i) {
    char c = piece[i];
    if (c != '\n' && c != '\r') continue;
    std::string_view chunk = piece.substr(start, i - start);
    bool go_on;
    if (pending_.empty()) {
      event_bytes_ += chunk.size() + 1;
      if (event_bytes_ > max_event_) break;
      go_on = line(chunk, on_event);
    } else {
      pending_.append(chunk);
      event_bytes_ += pending_.size() + 1;
      if (event_bytes_ > max_event_) break;
      go_on = line(pending_, on_event);
      pending_.clear();
    }
    if (c == '\r') {
      if (i + 1 < piece.size()) {
        if (piece[i + 1] == '\n') ++i;
      } else {
        skip_lf_ = true;
      }
    }
    start = i + 1;
    if (!go_on) {
      stopped_ = true;
      return {};
    }
  }
  if (event_bytes_ <= max_event_ && start < piece.size()) pending_.append(piece.substr(start));
  if (event_bytes_ + pending_.size() > max_event_) {
    return Error{"the server sent an event larger than " + std::to_string(max_event_) + " bytes", 0,
                 ErrorCode::invalid_input};
  }
  return {};
}

}  // namespace boxcar::client
