#include "sandboxes/event_stream.h"

#include <boost/json.hpp>

#include "base/base64.h"
#include "base/utf8.h"

namespace boxcar::sandboxes {

namespace json = boost::json;

namespace {
constexpr auto kKeepAlive = std::chrono::seconds(15);
}

std::string sse_event(std::string_view name, const json::value& data, std::optional<uint64_t> id) {
  std::string out;
  if (id) out += "id: " + std::to_string(*id) + "\n";
  out += "event: ";
  out += name;
  out += "\ndata: " + json::serialize(data) + "\n\n";
  return out;
}

json::object output_json(std::string_view bytes, bool force_base64) {
  if (!force_base64 && is_valid_utf8(bytes)) return json::object{{"data", bytes}};
  return json::object{{"data_b64", base64_encode(bytes)}};
}

std::string OutputSplitter::take(std::string_view chunk) {
  std::string all = std::exchange(held_, {});
  all.append(chunk);
  // Look back at most 3 bytes for the lead byte of a sequence the chunk cut short.
  size_t n = all.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(all[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (want > back && c >= 0xC0 && c <= 0xF4) {
      held_ = all.substr(n - back);
      all.resize(n - back);
    }
    break;
  }
  return all;
}

EventStream::EventStream(std::shared_ptr<server::Responder> res)
    : res_(std::move(res)), timer_(res_->executor()) {}

std::shared_ptr<EventStream> EventStream::open(std::shared_ptr<server::Responder> res, std::function<void()> on_gone) {
  auto s = std::make_shared<EventStream>(res);
  server::HttpResponse head = server::HttpResponse::text(200, "", "text/event-stream");
  head.headers.emplace_back("Cache-Control", "no-cache");
  head.headers.emplace_back("X-Accel-Buffering", "no");
  res->begin_stream(std::move(head));
  res->on_close([weak = std::weak_ptr<EventStream>(s), on_gone = std::move(on_gone)] {
    if (auto self = weak.lock()) {
      self->gone_ = true;
      self->timer_.cancel();
    }
    if (on_gone) on_gone();
  });
  s->keep_alive();
  return s;
}

void EventStream::send(std::string event) {
  if (gone_ || ended_ || event.empty()) return;
  unsent_ += event.size();
  last_write_ = std::chrono::steady_clock::now();
  size_t n = event.size();
  res_->write(std::move(event), [weak = weak_from_this(), n](bool ok) {
    auto self = weak.lock();
    if (!self) return;
    self->unsent_ -= n;
    if (!ok) self->gone_ = true;
    if (ok && self->on_drained_) self->on_drained_();
  });
}

void EventStream::end(std::string last) {
  if (ended_) return;
  send(std::move(last));
  ended_ = true;
  timer_.cancel();
  if (!gone_) res_->end();
}

void EventStream::keep_alive() {
  timer_.expires_after(kKeepAlive);
  timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->gone_ || self->ended_) return;
    if (std::chrono::steady_clock::now() - self->last_write_ >= kKeepAlive) self->send(": keep-alive\n\n");
    self->keep_alive();
  });
}

}  // namespace boxcar::sandboxes
