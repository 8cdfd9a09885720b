// The state routes of one sandbox (SANDBOXES.md §2.1): POST /pause, /resume, /stop answer the
// Sandbox as this agent knows it; GET /metrics reads the cgroups and /workspace without waking a
// paused sandbox; GET /events streams its EventBus. Pause, stop and metrics are not activity.
#include <boost/json.hpp>

#include "base/rfc3339.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/event_stream.h"
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

namespace http = boost::beast::http;
namespace json = boost::json;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;
using Reply = std::shared_ptr<Responder>;

namespace {

json::object sandbox_json(SandboxHost& host, const ApiSandbox& sb) {
  protocol::SandboxReport r = host.report(sb);
  json::object o;
  o["id"] = sb.id();
  o["name"] = sb.spec().name;
  o["state"] = r.state;
  if (!r.error.empty()) o["error"] = r.error;
  o["last_active_at"] = format_rfc3339(r.last_active_at);
  o["sleep_after_ms"] = sb.timers().sleep_after_ms;
  o["stop_after_ms"] = sb.timers().stop_after_ms;
  o["keep_alive"] = sb.timers().keep_alive;
  json::object labels;
  for (const auto& [k, v] : sb.spec().labels) labels[k] = v;
  o["labels"] = std::move(labels);
  json::array ports;
  for (const auto& p : r.ports) ports.push_back(protocol::to_json(p));
  o["ports"] = std::move(ports);
  return o;
}

HttpResponse state_error(const ApiSandbox& sb, const Error& e) {
  if (e.err == ENOTSUP) return HttpResponse::error_code(501, "unsupported", e.message);
  if (e.code == ErrorCode::conflict) {
    return HttpResponse::error_code(409, "not_running", e.message + " (POST /resume starts it)");
  }
  if (e.code == ErrorCode::unavailable) {
    return HttpResponse::error_code(503, "sandbox_unavailable", "sandbox " + sb.id() + ": " + e.message);
  }
  return HttpResponse::error_code(500, "internal", "sandbox " + sb.id() + ": " + e.message);
}

// One open GET /events: drains its subscriber into the stream while the socket keeps up. A
// client that does not read leaves events in the bounded queue, where the oldest are dropped
// (and counted in an `overflow` event) instead of growing the agent's memory.
struct EventsCall : std::enable_shared_from_this<EventsCall> {
  static constexpr size_t kUnsentCap = 256 << 10;
  std::shared_ptr<EventStream> stream;
  std::shared_ptr<EventBus::Subscriber> sub;
  std::shared_ptr<void> lease;  // an open stream is activity

  void pump() {
    if (!stream || stream->gone()) return;
    while (stream->unsent() < kUnsentCap) {
      std::string next = sub->take();
      if (next.empty()) break;
      stream->send(std::move(next));
    }
    if (sub->closed && sub->queue.empty() && sub->dropped == 0) {
      stream->end(sse_event("end", json::object{{"reason", "deleted"}}));
      stream.reset();
      lease.reset();
    }
  }
};

}  // namespace

void add_state_routes(server::Router& router, SandboxHost& host) {
  const std::string base = "/api/v1/sandboxes/{id}";
  auto peek = [&host](HttpRequest& req, Reply& res) -> ApiSandbox* {
    HttpResponse error;
    ApiSandbox* sb = host.resolve(req, error, /*wake=*/false);
    if (sb == nullptr) res->reply(std::move(error));
    return sb;
  };

  router.add(http::verb::post, base + "/pause", [&host, peek](HttpRequest& req, Reply res) {
    ApiSandbox* sb = peek(req, res);
    if (!sb) return;
    if (Status s = host.pause(*sb, "POST /pause"); !s) return res->reply(state_error(*sb, s.error()));
    res->reply(HttpResponse::json(200, sandbox_json(host, *sb)));
  });
  router.add(http::verb::post, base + "/resume", [&host, peek](HttpRequest& req, Reply res) {
    ApiSandbox* sb = peek(req, res);
    if (!sb) return;
    if (Status s = host.resume(*sb); !s) return res->reply(state_error(*sb, s.error()));
    res->reply(HttpResponse::json(200, sandbox_json(host, *sb)));
  });
  router.add(http::verb::post, base + "/stop", [&host, peek](HttpRequest& req, Reply res) {
    ApiSandbox* sb = peek(req, res);
    if (!sb) return;
    if (sb->state_ == "running" || sb->state_ == "paused") host.stopped(*sb, "POST /stop");
    res->reply(HttpResponse::json(200, sandbox_json(host, *sb)));
  });

  router.add(http::verb::get, base + "/metrics", [&host, peek](HttpRequest& req, Reply res) {
    ApiSandbox* sb = peek(req, res);
    if (!sb) return;
    executors::SandboxUsage u;
    if (sb->running()) {
      auto got = sb->sandbox().usage();
      if (!got && got.error().err == ENOTSUP) {
        return res->reply(HttpResponse::error_code(501, "unsupported", got.error().message));
      }
      if (got) u = *got;
    }
    uint64_t running = 0;
    for (const auto& p : sb->processes().list()) running += p->running() ? 1 : 0;
    // /workspace is measured afresh, off the io_context (a tree of a million files takes
    // seconds): the same walk as the disk quota's, whose figure it refreshes. While a walk of it
    // is queued or running, the figure held is the answer: a client spamming /metrics must not
    // queue walks that hold up every sandbox's quota check.
    auto answer = [&host, id = sb->id(), u, running, res] {
      ApiSandbox* now = host.find(id);
      if (now == nullptr) {
        return res->reply(HttpResponse::error_code(404, "sandbox_not_found", "sandbox " + id + " was removed"));
      }
      res->reply(HttpResponse::json(200, json::object{{"state", now->state_},
                                                      {"cpu_ms", u.cpu_ms},
                                                      {"memory_bytes", u.memory_bytes},
                                                      {"memory_peak_bytes", u.memory_peak_bytes},
                                                      {"pids", u.pids},
                                                      {"disk_bytes", now->disk().used()},
                                                      {"oom_kills", u.oom_kills},
                                                      {"processes", running}}));
    };
    if (host.measuring_disk(sb->id())) return answer();
    host.measure_disk(sb->id(), std::move(answer));
  });

  router.add(http::verb::get, base + "/events", [&host](HttpRequest& req, Reply res) {
    HttpResponse error;
    ApiSandbox* sb = host.resolve(req, error);  // a stream is activity: it wakes a paused one
    if (sb == nullptr) return res->reply(std::move(error));
    auto call = std::make_shared<EventsCall>();
    std::weak_ptr<EventsCall> weak = call;
    call->stream = EventStream::open(res, [call] {
      // The client left: the subscriber and the lease go with the last reference.
      call->sub.reset();
      call->lease.reset();
      call->stream.reset();
    });
    call->sub = sb->events().subscribe([weak] {
      if (auto c = weak.lock()) c->pump();
    });
    call->lease = sb->activity_lease();
    call->stream->send(sse_event("state", json::object{{"state", sb->state_}}));
  });
}

}  // namespace boxcar::sandboxes
