// The watch routes of the sandbox API (SANDBOXES.md §2.5): GET /fs/watch streams the changes
// under a directory as server-sent events (watching, change, overflow, end) from a WatchFeed
// (watch.h), and GET /fs/changes answers whether a path changed since a version a client had.
#include <cerrno>
#include <cstdlib>
#include <memory>

#include <boost/json.hpp>

#include "sandboxes/api_sandbox.h"
#include "sandboxes/event_stream.h"
#include "sandboxes/sandbox_host.h"
#include "sandboxes/query_flag.h"
#include "sandboxes/sandbox_path.h"
#include "sandboxes/watch.h"

namespace boxcar::sandboxes {

namespace {

namespace json = boost::json;
using server::HttpRequest;
using server::HttpResponse;
using Reply = std::shared_ptr<server::Responder>;

constexpr const char* kPrefix = "/api/v1/sandboxes/{id}/fs/";
// Past this many bytes the socket has not taken, the client counts as not reading: events
// wait in the feed's queue (bounded), not in the connection's buffers (unbounded).
constexpr size_t kBehindBytes = 64u << 10;
constexpr size_t kMaxGlob = 256;

HttpResponse watch_error(const Error& e, const std::string& path) {
  switch (e.err) {
    case ENOENT:
    case ENOTDIR:
      return HttpResponse::error_code(404, "file_not_found",
                                      e.message + ": watch an existing directory (GET /fs/list shows what is there)", "path");
    case ELOOP:
      return HttpResponse::error_code(400, "bad_path", e.message + " (a link loop, or a link through /proc)", "path");
    case EACCES:
    case EPERM:
      return HttpResponse::error_code(403, "permission_denied", e.message, "path");
    case ENOTSUP:
      return HttpResponse::error_code(501, "unsupported", e.message);
    case ESRCH:
    case ETIMEDOUT:
      return HttpResponse::error_code(503, "sandbox_unavailable", e.message + "; try again");
    default:
      return HttpResponse::error_code(500, "internal", "watch " + path + ": " + e.message);
  }
}

Result<std::string> glob(const HttpRequest& req, const std::string& key) {
  std::string v = req.query_or(key, "");
  if (v.size() > kMaxGlob || v.find('\0') != std::string::npos) {
    return Error{key + ": a glob pattern of at most " + std::to_string(kMaxGlob) + " bytes, like *.py or src/*"};
  }
  return v;
}

void watch(SandboxHost& host, HttpRequest& req, Reply res) {
  HttpResponse error;
  ApiSandbox* sb = host.resolve(req, error);
  if (!sb) return res->reply(std::move(error));
  auto path = sandbox_path(req.query_or("path", kDefaultCwd));
  if (!path) return res->reply(HttpResponse::error_code(400, "bad_path", "path: " + path.error().message, "path"));
  auto recursive = query_flag(req, "recursive");
  if (!recursive) return res->reply(HttpResponse::error_code(400, "bad_request", recursive.error().message, "recursive"));
  WatchSpec spec{*path, *recursive, "", ""};
  for (auto [key, out] : {std::pair{"include", &spec.include}, std::pair{"exclude", &spec.exclude}}) {
    auto g = glob(req, key);
    if (!g) return res->reply(HttpResponse::error_code(400, "bad_request", g.error().message, key));
    *out = *g;
  }
  auto feed = std::make_shared<WatchFeed>(spec);
  if (!sb->watches().add(feed)) {
    return res->reply(HttpResponse::error_code(
        429, "limit_reached",
        "this sandbox has " + std::to_string(kMaxWatches) + " watches open already: close one (end its stream) first"));
  }
  // An open watch is activity (SANDBOXES.md §1.3): the sandbox does not pause under it.
  auto started = [res, feed, spec, lease = sb->activity_lease()](Status s) {
    if (!s) {
      feed->stop();
      return res->reply(watch_error(s.error(), spec.path));
    }
    // The connection holds the feed until it closes; the feed ends the stream.
    auto stream = EventStream::open(res, [feed, lease] { feed->stop(); });
    stream->send(sse_event("watching", json::object{{"path", spec.path}, {"recursive", spec.recursive}}));
    std::weak_ptr<WatchFeed> weak = feed;
    stream->on_drained([weak] {
      if (auto f = weak.lock()) f->pump();
    });
    std::weak_ptr<EventStream> weak_stream = stream;
    feed->attach(
        [weak_stream] {
          auto st = weak_stream.lock();
          return st && !st->gone() && st->unsent() < kBehindBytes;
        },
        [stream](WatchItem item) {
          if (item.name == "end") return stream->end(sse_event("end", item.data));
          stream->send(sse_event(item.name, item.data));
        });
  };
  auto handle = sb->sandbox().watch({spec.path, spec.recursive}, feed->handlers(started));
  if (!handle) {
    feed->stop();
    return res->reply(watch_error(handle.error(), spec.path));
  }
  feed->hold(std::move(*handle));
}

void changes(SandboxHost& host, HttpRequest& req, Reply res) {
  HttpResponse error;
  ApiSandbox* sb = host.resolve(req, error);
  if (!sb) return res->reply(std::move(error));
  auto path = sandbox_path(req.query_or("path", kDefaultCwd));
  if (!path) return res->reply(HttpResponse::error_code(400, "bad_path", "path: " + path.error().message, "path"));
  const std::string since_text = req.query_or("since", "0");
  char* end = nullptr;
  errno = 0;
  unsigned long long since = std::strtoull(since_text.c_str(), &end, 10);
  if (since_text.empty() || *end != 0 || errno != 0 || since_text[0] == '-') {
    return res->reply(HttpResponse::error_code(400, "bad_request",
                                               "since=" + since_text + ": expected a version an earlier answer gave", "since"));
  }
  auto r = sb->watches().changes(sb->sandbox(), *path, since);
  if (!r) {
    if (r.error().err == EAGAIN) return res->reply(HttpResponse::error_code(429, "limit_reached", r.error().message + ": close a watch first"));
    return res->reply(watch_error(r.error(), *path));
  }
  res->reply(HttpResponse::json(200, json::object{{"status", r->status}, {"version", r->version}}));
}

}  // namespace

void add_watch_routes(server::Router& router, SandboxHost& host) {
  using boost::beast::http::verb;
  router.add(verb::get, std::string(kPrefix) + "watch", [&host](HttpRequest& req, Reply res) { watch(host, req, res); });
  router.add(verb::get, std::string(kPrefix) + "changes", [&host](HttpRequest& req, Reply res) { changes(host, req, res); });
}

}  // namespace boxcar::sandboxes
