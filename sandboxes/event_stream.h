// EventStream: a server-sent-events answer of the sandbox API, framed as server/api_logs.cc frames
// its log (SANDBOXES.md §2.0): "id: N" on resumable streams, "event: NAME", "data: {json}", a
// ": keep-alive" comment every 15 s of silence, and a final event. OutputSplitter keeps UTF-8
// sequences whole across chunks, so an output event carries text ("data") whenever it can, and
// base64 ("data_b64") only for bytes that are not UTF-8.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include "http/http_server.h"

namespace boxcar::sandboxes {

std::string sse_event(std::string_view name, const boost::json::value& data,
                      std::optional<uint64_t> id = std::nullopt);

// {"data": text} when `bytes` is UTF-8 (and not `force_base64`), else {"data_b64": base64}.
boost::json::object output_json(std::string_view bytes, bool force_base64 = false);

// Cuts a byte stream where no UTF-8 sequence is split: take() returns what can go now and holds
// back at most 3 bytes of a sequence that may still be completed; flush() returns the rest.
class OutputSplitter {
 public:
  std::string take(std::string_view chunk);
  std::string flush() { return std::exchange(held_, {}); }

 private:
  std::string held_;
};

class EventStream : public std::enable_shared_from_this<EventStream> {
 public:
  // Begins the stream (200, text/event-stream) and its keep-alive; `on_gone` runs once if the
  // client leaves before end().
  static std::shared_ptr<EventStream> open(std::shared_ptr<server::Responder> res, std::function<void()> on_gone);
  void send(std::string event);
  // Sends `last` and ends the stream.
  void end(std::string last);
  // Bytes handed to send() that the socket has not taken yet.
  size_t unsent() const { return unsent_; }
  bool gone() const { return gone_; }
  // Runs after each write the socket took: a producer holding events back sends more.
  void on_drained(std::function<void()> callback) { on_drained_ = std::move(callback); }

  EventStream(std::shared_ptr<server::Responder> res);

 private:
  void keep_alive();

  std::shared_ptr<server::Responder> res_;
  boost::asio::steady_timer timer_;
  size_t unsent_ = 0;
  bool gone_ = false;
  bool ended_ = false;
  std::function<void()> on_drained_;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
};

}  // namespace boxcar::sandboxes
