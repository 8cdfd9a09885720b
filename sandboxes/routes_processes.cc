// /api/v1/sandboxes/{id}/processes (SANDBOXES.md §2.4): background processes with their output
// spooled to disk: start, list, get, logs (text, or SSE resumable by offset), stdin, signal,
// kill, and wait for exit or a log line.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>

#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <re2/re2.h>

#include "base/rfc3339.h"
#include "base/unique_fd.h"
#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/event_stream.h"
#include "sandboxes/exec_params.h"
#include "sandboxes/exec_setup.h"
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

namespace http = boost::beast::http;
namespace json = boost::json;
using executors::Outcome;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;

namespace {

constexpr size_t kMaxPattern = 1024;
constexpr size_t kMaxLine = 64 << 10;
constexpr size_t kFollowLag = 1 << 20;  // unsent bytes past which a follower is ended (it resumes)

json::value process_json(const Process& p) {
  json::array argv;
  for (const auto& a : p.argv) argv.push_back(json::string(a));
  json::object o{{"id", p.id}, {"pid", p.pid}, {"argv", std::move(argv)}, {"status", p.status},
                 {"exit_code", nullptr}, {"signal", nullptr}, {"started_at", format_rfc3339(p.started_at_ms)},
                 {"exited_at", nullptr}, {"pty", false},
                 {"output_bytes", p.log ? p.log->output_bytes() : 0},
                 {"output_dropped", p.log ? p.log->dropped() : 0}};
  o["command"] = p.command ? json::value(*p.command) : json::value(nullptr);
  o["session"] = p.session ? json::value(*p.session) : json::value(nullptr);
  if (!p.running()) {
    json::object out = outcome_json(p.outcome);
    o["exit_code"] = out["exit_code"];
    o["signal"] = out["signal"];
    o["exited_at"] = format_rfc3339(p.exited_at_ms);
  }
  return o;
}

HttpResponse bad(const std::string& message, const std::string& field = "") {
  return HttpResponse::error_code(400, "bad_request", message, field);
}

std::optional<uint64_t> parse_u64(const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// The sandbox and the process a request names, or the answer already sent.
struct Target {
  ApiSandbox* sandbox = nullptr;
  std::shared_ptr<Process> process;
};
std::optional<Target> target(SandboxHost& host, HttpRequest& req, Responder& res) {
  HttpResponse error;
  ApiSandbox* sb = host.resolve(req, error);
  if (sb == nullptr) {
    res.reply(std::move(error));
    return std::nullopt;
  }
  auto p = sb->processes().find(req.params["proc"]);
  if (!p) {
    res.reply(HttpResponse::error_code(404, "process_not_found", "no process \"" + req.params["proc"] + "\"", "proc"));
    return std::nullopt;
  }
  return Target{sb, p};
}

void start_process(SandboxHost& host, HttpRequest& req, std::shared_ptr<Responder> res) {
  HttpResponse error;
  ApiSandbox* sb = host.resolve(req, error);
  if (sb == nullptr) return res->reply(std::move(error));
  if (auto refused = sb->disk().gate("POST /processes")) return res->reply(std::move(*refused));
  auto body = protocol::parse_json(req.body());
  if (!body) return res->reply(bad("the body is not JSON: " + body.error().message));
  auto params = parse_exec_params(*body, ExecBody::process);
  if (!params) return res->reply(bad(params.error().message, params.error().subject));
  Session* session = nullptr;
  if (params->session) {
    session = sb->sessions().find(*params->session, sb->spec().cwd);
    if (!session) return res->reply(HttpResponse::error_code(404, "not_found", "no session \"" + *params->session + "\"", "session"));
  }
  std::string why;
  bool full = false;
  auto p = sb->processes().add(params->id, why, full);
  if (!p) return res->reply(HttpResponse::error_code(full ? 429 : 409, full ? "limit_reached" : "exists", why, "id"));
  auto log = OutputLog::open(sb->logs_dir() / (p->id + ".log"));
  if (!log) {
    sb->processes().remove(p->id);
    return res->reply(HttpResponse::error_code(500, "internal", log.error().message));
  }
  p->log = std::move(*log);
  p->argv = params->argv;
  p->command = params->command;
  p->session = params->session;
  p->stdin_pipe = params->stdin_pipe;
  // A process does not hold its session: it starts from its env and cwd, and runs beside it.
  CommandSetup setup = command_setup(*sb, *params, session, /*with_trailer=*/false);
  setup.request.stdin_pipe = params->stdin_pipe;
  std::weak_ptr<Process> weak = p;
  CommandEvents events;
  events.started = [weak](int pid) {
    if (auto self = weak.lock()) self->pid = pid;
  };
  events.output = [weak](executors::OutputStream s, std::string_view data) {
    if (auto self = weak.lock()) self->log->append(s == executors::OutputStream::out ? 0 : 1, data);
  };
  events.exit = [weak, &host, sandbox_id = sb->id()](const Outcome& o) {
    auto self = weak.lock();
    if (!self) return;
    bool whole_sandbox = self->run && self->run->stopped_sandbox();
    ProcessTable::finished(*self, o);
    if (ApiSandbox* s = host.find(sandbox_id)) s->publish_exit(self->id, o);
    if (ApiSandbox* s = host.find(sandbox_id); s && whole_sandbox) host.stopped(*s, "a process was stopped without a command tree");
  };
  auto run = CommandRun::start(host.io(), sb->sandbox(), setup.request, params->timeout, params->grace, std::move(events));
  if (!run) {
    sb->processes().remove(p->id);
    host.stopped(*sb, "cannot start a command: " + run.error().message);
    return res->reply(HttpResponse::error_code(503, "sandbox_unavailable", run.error().message));
  }
  p->run = *run;
  res->reply(HttpResponse::json(201, process_json(*p)));
}

// Output as SSE from an offset: what the log holds, then live chunks, never one twice (one
// thread: nothing is appended between the replay and the subscription); `exit` at the end.
class LogFollower : public std::enable_shared_from_this<LogFollower> {
 public:
  LogFollower(std::shared_ptr<Process> p, uint64_t offset, int only, bool base64)
      : p_(std::move(p)), offset_(offset), only_(only), base64_(base64) {}

  void start(std::shared_ptr<Responder> res) {
    auto self = shared_from_this();
    stream_ = EventStream::open(res, [weak = weak_from_this()] {
      if (auto s = weak.lock()) s->stop();
    });
    while (offset_ < p_->log->end()) {
      auto chunks = p_->log->read(offset_, 256 << 10);
      if (!chunks) return stream_->end(sse_event("error", json::object{{"error", chunks.error().message}}));
      for (const auto& c : *chunks) send(c);
      if (stream_->unsent() > kFollowLag) return lagging();
    }
    if (!p_->running()) return finish();
    sub_ = p_->log->subscribe([weak = weak_from_this()](const OutputLog::Chunk& c) {
      if (auto s = weak.lock()) {
        s->send(c);
        if (s->stream_->unsent() > kFollowLag) s->lagging();
      }
    });
    // The process holds the follower until it ends or the client leaves (stop() lets go).
    exit_ = p_->next_waiter++;
    p_->on_exit[exit_] = [self] { self->finish(); };
  }

 private:
  void send(const OutputLog::Chunk& c) {
    offset_ = std::max(offset_, c.next);
    if (only_ >= 0 && c.stream != only_) return;
    stream_->send(sse_event(c.stream == 0 ? "stdout" : "stderr", output_json(c.data, base64_), c.next));
  }
  // A client that does not keep up is ended: it resumes from its last id (Last-Event-ID), read
  // from disk, so a slow reader never holds the process's output in memory.
  void lagging() {
    stop();
    stream_->end(sse_event("lagging", json::object{{"offset", offset_}}, offset_));
  }
  void finish() {
    stop();
    json::object end = outcome_json(p_->outcome);
    end["status"] = p_->status;
    end["output_dropped"] = p_->log->dropped();
    stream_->end(sse_event("exit", end, offset_));
  }
  void stop() {
    if (sub_) p_->log->unsubscribe(std::exchange(sub_, 0));
    if (exit_) p_->on_exit.erase(std::exchange(exit_, 0));
  }

  std::shared_ptr<Process> p_;
  uint64_t offset_;
  int only_;
  bool base64_;
  std::shared_ptr<EventStream> stream_;
  uint64_t sub_ = 0;
  uint64_t exit_ = 0;
};

void get_logs(SandboxHost& host, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto t = target(host, req, *res);
  if (!t) return;
  std::string from = req.query_or("offset", "0");
  if (std::string resume = req.header("Last-Event-ID"); !resume.empty()) from = resume;
  auto offset = parse_u64(from);
  if (!offset) return res->reply(bad("\"offset\": expected a byte offset this API gave, got \"" + from + "\"", "offset"));
  std::string which = req.query_or("stream", "both");
  if (which != "both" && which != "stdout" && which != "stderr") {
    return res->reply(bad("\"stream\": expected both, stdout or stderr", "stream"));
  }
  int only = which == "stdout" ? 0 : which == "stderr" ? 1 : -1;
  bool follow = req.query_or("follow", "0") == "1" || req.header("Accept").find("text/event-stream") != std::string::npos;
  auto probe = t->process->log->read(*offset, 0);
  if (!probe) return res->reply(bad(probe.error().message, "offset"));
  if (follow) {
    auto f = std::make_shared<LogFollower>(t->process, *offset, only, req.query_or("encoding", "") == "base64");
    return f->start(res);
  }
  std::string text;
  uint64_t at = *offset;
  auto chunks = t->process->log->read(at, 8 << 20);
  if (!chunks) return res->reply(bad(chunks.error().message, "offset"));
  for (const auto& c : *chunks) {
    if (only < 0 || c.stream == only) text += c.data;
    at = c.next;
  }
  HttpResponse r = HttpResponse::text(200, std::move(text), "application/octet-stream");
  r.headers.emplace_back("X-Boxcar-Offset", std::to_string(at));
  r.headers.emplace_back("X-Boxcar-Process-Status", t->process->status);
  res->reply(std::move(r));
}

// POST /wait {for: exit | log}: answered when met, when the process ended first, or at timeout_ms.
class Waiter : public std::enable_shared_from_this<Waiter> {
 public:
  Waiter(boost::asio::io_context& io, std::shared_ptr<Process> p, std::shared_ptr<Responder> res)
      : p_(std::move(p)), res_(std::move(res)), timer_(io), poll_(io) {}

  // {for: port}: met once `port` accepts a connection inside the sandbox (and, with `http`, once
  // a GET of that path answers with a status in [lo, hi]). Polled every 100 ms through the host,
  // by id, so a sandbox removed meanwhile is never touched.
  struct PortCheck {
    SandboxHost* host = nullptr;
    std::string sandbox;
    uint16_t port = 0;
    std::string http;
    int lo = 200, hi = 399;
  };
  void watch_port(PortCheck check) { port_ = std::move(check); }

  void start(Millis timeout, std::unique_ptr<RE2> pattern, int only, bool from_start) {
    pattern_ = std::move(pattern);
    only_ = only;
    if (pattern_ && from_start) {
      uint64_t at = 0;
      while (at < p_->log->end() && !done_) {
        auto chunks = p_->log->read(at, 1 << 20);
        if (!chunks) break;
        for (const auto& c : *chunks) {
          chunk(c);
          at = c.next;
        }
      }
    }
    if (done_) return;
    if (!p_->running()) return exited();
    if (pattern_) {
      sub_ = p_->log->subscribe([weak = weak_from_this()](const OutputLog::Chunk& c) {
        if (auto s = weak.lock()) s->chunk(c);
      });
    }
    // The process holds the waiter until it is answered (stop() lets go).
    exit_ = p_->next_waiter++;
    p_->on_exit[exit_] = [self = shared_from_this()] { self->exited(); };
    res_->on_close([weak = weak_from_this()] {
      if (auto s = weak.lock()) s->stop();
    });
    if (port_) poll_port();
    if (timeout.count() > 0) {
      timer_.expires_after(timeout);
      timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->answer(json::object{{"met", false}, {"reason", "timeout"}, {"exit_code", nullptr}});
      });
    }
  }

 private:
  void chunk(const OutputLog::Chunk& c) {
    if (done_ || (only_ >= 0 && c.stream != only_)) return;
    std::string& partial = partial_[c.stream];
    for (char ch : c.data) {
      if (ch != '\n') {
        if (partial.size() < kMaxLine) partial += ch;
        continue;
      }
      line(partial);
      partial.clear();
      if (done_) return;
    }
  }
  void line(const std::string& text) {
    int n = pattern_->NumberOfCapturingGroups();
    std::vector<re2::StringPiece> groups(n + 1);
    if (!pattern_->Match(text, 0, text.size(), RE2::UNANCHORED, groups.data(), n + 1)) return;
    json::array g;
    for (int i = 1; i <= n; ++i) {
      if (groups[i].data()) {
        g.push_back(json::string(std::string_view(groups[i].data(), groups[i].size())));
      } else {
        g.push_back(nullptr);
      }
    }
    answer(json::object{{"met", true}, {"line", text}, {"groups", std::move(g)}});
  }
  void exited() {
    if (done_) return;
    for (auto& [s, partial] : partial_) {
      if (pattern_ && !partial.empty() && !done_) line(partial);
    }
    if (done_) return;
    json::object out = outcome_json(p_->outcome);
    if (pattern_ || port_) {
      answer(json::object{{"met", false}, {"reason", "exited"}, {"exit_code", out["exit_code"]}});
    } else {
      answer(json::object{{"met", true}, {"exit_code", out["exit_code"]}, {"status", p_->status}});
    }
  }
  void answer(json::object body) {
    if (done_) return;
    stop();
    res_->reply(HttpResponse::json(200, body));
  }
  void poll_port() {
    if (done_) return;
    ApiSandbox* sb = port_->host->find(port_->sandbox);
    if (sb == nullptr || !sb->running()) return;  // removed or stopped: its processes' exit answers
    if (!conn_) {
      if (auto fd = sb->sandbox().connect_tcp(port_->port)) {
        conn_ = std::move(*fd);
        sent_ = false;
        reply_.clear();
      }
    }
    if (conn_ && !sent_) {
      pollfd pf{conn_.get(), POLLOUT, 0};
      if (::poll(&pf, 1, 0) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(conn_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
          conn_.reset();
        } else if (port_->http.empty()) {
          return answer(json::object{{"met", true}, {"port", port_->port}});
        } else {
          std::string request = "GET " + port_->http + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
          sent_ = ::send(conn_.get(), request.data(), request.size(), MSG_DONTWAIT | MSG_NOSIGNAL) ==
                  static_cast<ssize_t>(request.size());
          if (!sent_) conn_.reset();
        }
      }
    }
    if (conn_ && sent_) {
      char buf[512];
      ssize_t n = ::recv(conn_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) reply_.append(buf, static_cast<size_t>(std::min<ssize_t>(n, 1024)));
      // "HTTP/1.x NNN": 12 bytes are enough to judge; anything else is not (yet) an answer.
      if (reply_.size() >= 12 || n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        int status = 0;
        if (reply_.size() >= 12 && reply_.compare(0, 5, "HTTP/") == 0) {
          std::from_chars(reply_.data() + 9, reply_.data() + 12, status);
        }
        if (status >= port_->lo && status <= port_->hi) {
          return answer(json::object{{"met", true}, {"port", port_->port}, {"http_status", status}});
        }
        conn_.reset();  // not up yet (or an answer out of range): ask again on the next poll
      }
    }
    poll_.expires_after(std::chrono::milliseconds(100));
    poll_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (auto s = weak.lock(); s && !ec) s->poll_port();
    });
  }

  void stop() {
    done_ = true;
    poll_.cancel();
    conn_.reset();
    timer_.cancel();
    if (sub_) p_->log->unsubscribe(std::exchange(sub_, 0));
    if (exit_) p_->on_exit.erase(std::exchange(exit_, 0));
  }

  std::shared_ptr<Process> p_;
  std::shared_ptr<Responder> res_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer poll_;
  std::optional<PortCheck> port_;
  unique_fd conn_;
  bool sent_ = false;
  std::string reply_;
  std::unique_ptr<RE2> pattern_;
  int only_ = -1;
  std::map<int, std::string> partial_;
  bool done_ = false;
  uint64_t sub_ = 0;
  uint64_t exit_ = 0;
};

void post_wait(SandboxHost& host, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto t = target(host, req, *res);
  if (!t) return;
  auto body = protocol::parse_json(req.body());
  if (!body || !body->is_object()) return res->reply(bad("the body must be a JSON object"));
  protocol::JsonReader in(*body);
  std::string what, pattern, stream = "both", from = "start";
  int64_t timeout_ms = 0;
  in.known({"for", "pattern", "stream", "from", "timeout_ms", "port", "http", "status"});
  in.required("for", what).optional("pattern", pattern).optional("stream", stream).optional("from", from);
  in.optional("timeout_ms", timeout_ms);
  if (!in.ok()) return res->reply(bad(in.error().message, in.error_field()));
  if (timeout_ms < 0) return res->reply(bad("\"timeout_ms\": must be 0 (none) or more", "timeout_ms"));
  std::unique_ptr<RE2> re;
  int only = -1;
  if (what == "log") {
    if (pattern.empty()) return res->reply(bad("\"pattern\": required for \"for\": \"log\" (an RE2 expression)", "pattern"));
    if (pattern.size() > kMaxPattern) return res->reply(bad("\"pattern\": longer than 1 KiB", "pattern"));
    RE2::Options options;
    options.set_log_errors(false);
    re = std::make_unique<RE2>(pattern, options);
    if (!re->ok()) return res->reply(bad("\"pattern\": " + re->error(), "pattern"));
    if (stream != "both" && stream != "stdout" && stream != "stderr") return res->reply(bad("\"stream\": expected both, stdout or stderr", "stream"));
    if (from != "start" && from != "now") return res->reply(bad("\"from\": expected start or now", "from"));
    only = stream == "stdout" ? 0 : stream == "stderr" ? 1 : -1;
  } else if (what != "exit" && what != "port") {
    return res->reply(bad("\"for\": expected exit, log or port", "for"));
  }
  std::optional<Waiter::PortCheck> check;
  if (what == "port") {
    check.emplace();
    int64_t port = 0;
    in.required("port", port).optional("http", check->http);
    if (const json::value* range = body->as_object().if_contains("status")) {
      if (!range->is_array() || range->as_array().size() != 2 || !range->as_array()[0].is_int64() ||
          !range->as_array()[1].is_int64()) {
        return res->reply(bad("\"status\": expected [lowest, highest], like [200, 399]", "status"));
      }
      check->lo = static_cast<int>(std::clamp<int64_t>(range->as_array()[0].as_int64(), 100, 599));
      check->hi = static_cast<int>(std::clamp<int64_t>(range->as_array()[1].as_int64(), 100, 599));
    }
    if (!in.ok()) return res->reply(bad(in.error().message, in.error_field()));
    if (port < 1 || port > 65535) return res->reply(bad("\"port\": expected 1-65535", "port"));
    if (!check->http.empty() && (check->http[0] != '/' || check->http.size() > 2048 ||
                                 check->http.find_first_of(" \r\n\t") != std::string::npos)) {
      return res->reply(bad("\"http\": expected a path like \"/\" or \"/health\" (no spaces)", "http"));
    }
    check->host = &host;
    check->sandbox = t->sandbox->id();
    check->port = static_cast<uint16_t>(port);
  }
  auto w = std::make_shared<Waiter>(host.io(), t->process, res);
  if (check) w->watch_port(std::move(*check));
  w->start(Millis(timeout_ms), std::move(re), only, from == "start");
}

}  // namespace

void add_process_routes(server::Router& router, SandboxHost& host) {
  server::RouteOptions body;
  body.body_limit = 16 << 20;
  const std::string base = "/api/v1/sandboxes/{id}/processes";
  router.add(http::verb::post, base, [&host](HttpRequest& req, std::shared_ptr<Responder> res) { start_process(host, req, res); }, body);
  router.add(http::verb::get, base, [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
    HttpResponse error;
    ApiSandbox* sb = host.resolve(req, error);
    if (sb == nullptr) return res->reply(std::move(error));
    std::string status = req.query_or("status", "");
    json::array list;
    for (const auto& p : sb->processes().list()) {
      if (status.empty() || p->status == status || (status == "finished" && !p->running())) list.push_back(process_json(*p));
    }
    res->reply(HttpResponse::json(200, json::object{{"processes", std::move(list)}}));
  });
  router.add(http::verb::delete_, base, [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
    HttpResponse error;
    ApiSandbox* sb = host.resolve(req, error);
    if (sb == nullptr) return res->reply(std::move(error));
    std::string status = req.query_or("status", "");
    if (status == "running") {
      int n = 0;
      for (const auto& p : sb->processes().list()) {
        if (p->running() && p->run) {
          p->run->stop(Outcome::Kind::cancelled, Millis(0));
          ++n;
        }
      }
      return res->reply(HttpResponse::json(200, json::object{{"killed", n}}));
    }
    if (status == "finished") {
      int n = 0;
      for (const auto& p : sb->processes().list()) {
        if (!p->running()) n += sb->processes().remove(p->id);
      }
      return res->reply(HttpResponse::json(200, json::object{{"removed", n}}));
    }
    res->reply(bad("\"status\": expected running or finished", "status"));
  });
  router.add(http::verb::get, base + "/{proc}", [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
    if (auto t = target(host, req, *res)) res->reply(HttpResponse::json(200, process_json(*t->process)));
  });
  router.add(http::verb::get, base + "/{proc}/logs", [&host](HttpRequest& req, std::shared_ptr<Responder> res) { get_logs(host, req, res); });
  router.add(http::verb::post, base + "/{proc}/stdin", [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
    auto t = target(host, req, *res);
    if (!t) return;
    if (!t->process->running() || !t->process->stdin_pipe || !t->process->run) {
      return res->reply(HttpResponse::error_code(409, "not_running", "process \"" + t->process->id + "\" " +
          (t->process->running() ? "was started without \"stdin\": \"pipe\"" : "has ended")));
    }
    size_t n = req.body().size();
    bool eof = req.query_or("eof", "0") == "1";
    auto p = t->process;
    p->run->write_stdin(req.body(), [res, n, p, eof](bool ok) {
      if (eof) p->run->close_stdin();
      if (!ok) return res->reply(HttpResponse::error_code(409, "not_running", "the process closed its stdin"));
      res->reply(HttpResponse::json(200, json::object{{"written", n}}));
    });
  }, body);
  router.add(http::verb::post, base + "/{proc}/signal", [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
    auto t = target(host, req, *res);
    if (!t) return;
    auto v = protocol::parse_json(req.body());
    if (!v || !v->is_object()) return res->reply(bad("the body must be a JSON object"));
    protocol::JsonReader in(*v);
    in.known({"signal", "scope"});
    std::string scope = "tree";
    in.optional("scope", scope);
    if (!in.ok()) return res->reply(bad(in.error().message, in.error_field()));
    const json::value* s = v->as_object().if_contains("signal");
    int sig = 0;
    if (s && s->is_string()) sig = parse_signal(s->as_string());
    if (s && s->is_int64()) sig = s->as_int64() > 0 && s->as_int64() < NSIG ? static_cast<int>(s->as_int64()) : 0;
    if (sig == 0) return res->reply(bad("\"signal\": expected a signal name (\"SIGUSR1\") or number (10)", "signal"));
    if (scope != "tree" && scope != "leader") return res->reply(bad("\"scope\": expected tree or leader", "scope"));
    if (!t->process->running() || !t->process->run) {
      return res->reply(HttpResponse::error_code(409, "not_running", "process \"" + t->process->id + "\" has ended"));
    }
    if (Status st = t->process->run->signal(sig, scope == "tree"); !st) {
      return res->reply(HttpResponse::error_code(st.error().code == ErrorCode::unavailable ? 501 : 409,
                                                 st.error().code == ErrorCode::unavailable ? "unsupported" : "not_running", st.error().message));
    }
    res->reply(HttpResponse::json(200, process_json(*t->process)));
  });
  router.add(http::verb::delete_, base + "/{proc}", [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
    auto t = target(host, req, *res);
    if (!t) return;
    auto grace = parse_u64(req.query_or("grace_ms", "5000"));
    if (!grace || *grace > 600000) return res->reply(bad("\"grace_ms\": expected 0 to 600000", "grace_ms"));
    auto p = t->process;
    if (!p->running() || !p->run) return res->reply(HttpResponse::json(200, process_json(*p)));
    uint64_t w = p->next_waiter++;
    p->on_exit[w] = [p, res] { res->reply(HttpResponse::json(200, process_json(*p))); };
    p->run->stop(Outcome::Kind::cancelled, Millis(*grace));
  });
  router.add(http::verb::post, base + "/{proc}/wait", [&host](HttpRequest& req, std::shared_ptr<Responder> res) { post_wait(host, req, res); }, body);
}

}  // namespace boxcar::sandboxes
