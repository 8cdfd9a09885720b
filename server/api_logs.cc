// GET /api/v1/jobs/{id}/logs: the job's log as text from an offset, or with follow=1 as
// server-sent events that stay open until the job is final. Offsets are byte positions in the
// job's whole log; an event's id is the offset to resume from (Last-Event-ID). The text form is
// the bytes as the steps printed them; the JSON forms carry bytes that are not UTF-8 in base64
// too. Followers are capped per job and per client (LogFollowers): one more gets 429.
#include <charconv>
#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "base/base64.h"
#include "base/rfc3339.h"
#include "base/utf8.h"
#include "server/api.h"
#include "server/auth.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

constexpr int kBatch = 500;
constexpr size_t kMaxTextBytes = 8 << 20;  // one plain answer; X-Boxcar-Offset says where to go on
constexpr auto kKeepAlive = std::chrono::seconds(15);

std::optional<int64_t> parse_offset(const std::string& text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

// A piece of log as JSON, which holds text: "data" is the bytes as UTF-8 (each byte that is not
// part of valid UTF-8 shown as U+FFFD), and when that is not the bytes themselves,
// "data_base64" has them exactly (boxcar logs prints those). "at": when the server stored it.
json::object chunk_json(const LogChunk& chunk, std::string_view data) {
  json::object o{{"step", chunk.step}, {"at", format_rfc3339(chunk.at)}};
  if (is_valid_utf8(data)) {
    o["data"] = data;
  } else {
    o["data"] = to_valid_utf8(data);
    o["data_base64"] = base64_encode(data);
  }
  return o;
}

// The part of `chunk` at or after `offset`.
std::string_view tail(const LogChunk& chunk, int64_t offset) {
  std::string_view data = chunk.data;
  if (chunk.offset < offset) data.remove_prefix(std::min<size_t>(data.size(), offset - chunk.offset));
  return data;
}

class LogFollower : public std::enable_shared_from_this<LogFollower> {
 public:
  LogFollower(ApiContext& ctx, std::shared_ptr<Responder> res, int64_t job, std::string step,
              int64_t offset, std::unique_ptr<LogFollowers::Slot> slot, LogEventData data)
      : ctx_(ctx), res_(std::move(res)), job_(job), step_(std::move(step)), offset_(offset),
        timer_(std::make_shared<boost::asio::steady_timer>(res_->executor())),
        slot_(std::move(slot)), data_(std::move(data)) {}

  void start() {
    HttpResponse head = HttpResponse::text(200, "", "text/event-stream");
    head.headers.emplace_back("Cache-Control", "no-cache");
    head.headers.emplace_back("X-Accel-Buffering", "no");
    res_->begin_stream(std::move(head));
    res_->on_close([self = shared_from_this()] {
      self->closed_ = true;
      self->timer_->cancel();
      self->slot_.reset();
    });
    boost::asio::post(res_->executor(), [self = shared_from_this()] { self->pump(); });
  }

 private:
  void pump() {
    if (closed_) return;
    uint64_t seen = ctx_.job_changed.generation();
    // The state is read before the logs: if it was final then, every chunk is already stored.
    auto job = ctx_.store.job(job_);
    bool final = job && (!*job || is_final_job_state((*job)->state));
    auto chunks = ctx_.store.logs(job_, step_, offset_, kBatch);
    if (!job || !chunks) return wait(seen);  // a store hiccup: try again at the next re-check
    std::string events;
    for (const LogChunk& chunk : *chunks) {
      std::string_view data = tail(chunk, offset_);
      offset_ = std::max(offset_, chunk.offset + static_cast<int64_t>(chunk.data.size()));
      if (data.empty()) continue;
      events += "id: " + std::to_string(offset_) + "\nevent: log\ndata: " +
                json::serialize(data_(chunk, data)) + "\n\n";
    }
    if (chunks->size() == static_cast<size_t>(kBatch)) {
      return send(std::move(events), [self = shared_from_this()] { self->pump(); });
    }
    if (final) {
      json::object end{{"state", *job ? (*job)->state : std::string("unknown")},
                       {"reason", *job ? (*job)->reason : std::string("the job was deleted")}};
      events += "id: " + std::to_string(offset_) + "\nevent: end\ndata: " + json::serialize(end) +
                "\n\n";
      return send(std::move(events), [self = shared_from_this()] {
        self->res_->end();
        self->slot_.reset();
      });
    }
    if (events.empty() && std::chrono::steady_clock::now() - last_write_ > kKeepAlive) {
      events = ": keep-alive\n\n";
    }
    if (events.empty()) return wait(seen);
    send(std::move(events), [self = shared_from_this(), seen] { self->wait(seen); });
  }

  template <typename Next>
  void send(std::string events, Next next) {
    if (events.empty()) return next();
    last_write_ = std::chrono::steady_clock::now();
    res_->write(std::move(events), [self = shared_from_this(), next](bool ok) {
      if (ok && !self->closed_) next();
    });
  }

  void wait(uint64_t seen) {
    if (closed_) return;
    wait_notified(ctx_.job_changed, seen, timer_, std::chrono::milliseconds(ctx_.options.recheck_ms),
                  [self = shared_from_this()] { self->pump(); });
  }

  ApiContext& ctx_;
  std::shared_ptr<Responder> res_;
  int64_t job_;
  std::string step_;
  int64_t offset_;
  std::shared_ptr<boost::asio::steady_timer> timer_;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  std::unique_ptr<LogFollowers::Slot> slot_;  // this follower's place, until it ends
  LogEventData data_;
};

void plain_logs(ApiContext& ctx, const JobRecord& job, const std::string& step, int64_t offset,
                Responder& res) {
  std::string text;
  while (text.size() < kMaxTextBytes) {
    auto chunks = ctx.store.logs(job.id, step, offset, kBatch);
    if (!chunks) return res.reply(store_error(chunks.error()));
    for (const LogChunk& chunk : *chunks) {
      text += tail(chunk, offset);
      offset = std::max(offset, chunk.offset + static_cast<int64_t>(chunk.data.size()));
    }
    if (chunks->size() < static_cast<size_t>(kBatch)) break;
  }
  HttpResponse r = HttpResponse::text(200, std::move(text));
  r.headers.emplace_back("X-Boxcar-Offset", std::to_string(offset));
  r.headers.emplace_back("X-Boxcar-Job-State", job.state);
  res.reply(std::move(r));
}

// ?format=json: the same bytes as plain_logs, as chunks that say whose they are, so a client can
// label every line with its step (boxcar logs): {"chunks": [{"step", "at", "data"}], "offset",
// "more" (true: ask again from "offset"), "state"}.
void json_logs(ApiContext& ctx, const JobRecord& job, const std::string& step, int64_t offset,
               Responder& res) {
  json::array out;
  size_t bytes = 0;
  bool more = false;
  while (true) {
    auto chunks = ctx.store.logs(job.id, step, offset, kBatch);
    if (!chunks) return res.reply(store_error(chunks.error()));
    for (const LogChunk& chunk : *chunks) {
      std::string_view data = tail(chunk, offset);
      offset = std::max(offset, chunk.offset + static_cast<int64_t>(chunk.data.size()));
      if (data.empty()) continue;
      bytes += data.size();
      out.push_back(chunk_json(chunk, data));
    }
    if (chunks->size() < static_cast<size_t>(kBatch)) break;
    if (bytes >= kMaxTextBytes) {
      more = true;
      break;
    }
  }
  res.reply(HttpResponse::json(200, json::object{{"chunks", std::move(out)},
                                                 {"offset", offset},
                                                 {"more", more},
                                                 {"state", job.state}}));
}

void get_logs(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto job = job_of_request(ctx, req, *res);
  if (!job) return;
  std::optional<int64_t> id = job->id;
  bool follow = req.query_or("follow", "0") != "0" && req.query_or("follow", "") != "false";
  std::string from = req.query_or("offset", "0");
  if (std::string resume = req.header("Last-Event-ID"); follow && !resume.empty()) from = resume;
  auto offset = parse_offset(from);
  if (!offset) {
    return res->reply(HttpResponse::error(
        400, "\"offset\": expected a byte offset (a non-negative integer), got \"" + from + "\""));
  }
  std::string step = req.query_or("step", "");
  if (!follow && req.query_or("format", "") == "json") return json_logs(ctx, *job, step, *offset, *res);
  if (!follow) return plain_logs(ctx, *job, step, *offset, *res);
  follow_job_log(ctx, req, std::move(res), *id, step, *offset, chunk_json);
}

}  // namespace

void follow_job_log(ApiContext& ctx, const HttpRequest& req, std::shared_ptr<Responder> res,
                    int64_t job, const std::string& step, int64_t offset, LogEventData data) {
  LogFollowers::Refusal refusal;
  auto slot = ctx.followers.admit(job, req.client_address, refusal);
  if (!slot) {
    ctx.metrics.count_follower_refused(refusal.cap);
    HttpResponse r = HttpResponse::error(429, refusal.message);
    r.headers.emplace_back("Retry-After", "10");
    return res->reply(std::move(r));
  }
  std::make_shared<LogFollower>(ctx, res, job, step, offset, std::move(slot), std::move(data))->start();
}

void add_log_routes(Router& router, ApiContext& ctx) {
  router.add(http::verb::get, "/api/v1/jobs/{id}/logs",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) {
               get_logs(ctx, req, std::move(res));
             },
             requires_scope(ctx, Scope::read, Anonymous::public_read));
}

}  // namespace boxcar::server
