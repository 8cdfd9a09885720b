// POST /api/v1/sandboxes/{id}/exec (SANDBOXES.md §2.2): a command run to its end, answered whole
// (200 even when it fails) or streamed as events (start, stdout, stderr, exit). The sessions and
// processes routes are registered from here too (routes_sessions.cc, routes_processes.cc).
#include <signal.h>
#include <string.h>

#include <boost/json.hpp>

#include "base/utf8.h"
#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/command_run.h"
#include "sandboxes/event_stream.h"
#include "sandboxes/exec_params.h"
#include "sandboxes/exec_setup.h"
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

namespace http = boost::beast::http;
namespace json = boost::json;
using executors::Outcome;
using executors::OutputStream;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;

void add_session_routes(server::Router& router, SandboxHost& host);
void add_process_routes(server::Router& router, SandboxHost& host);

namespace {

// Everything of one exec: its output as far as the answer takes it, and where it goes.
struct ExecCall : std::enable_shared_from_this<ExecCall> {
  SandboxHost& host;
  std::string sandbox_id;
  ExecParams params;
  CommandSetup setup;
  std::shared_ptr<Responder> res;
  std::shared_ptr<EventStream> stream;  // set: streamed
  std::shared_ptr<void> lease;          // activity (api_sandbox.h) until the answer went
  std::shared_ptr<CommandRun> run;
  std::function<void()> session_done;   // the session's next command may run
  std::shared_ptr<void> slot;           // ProcessTable::exec_slot, until it ended
  std::string out[2];
  bool truncated[2] = {false, false};
  uint64_t streamed[2] = {0, 0};
  OutputSplitter split[2];
  bool gone = false;   // the client left
  bool ended = false;

  ExecCall(SandboxHost& h, std::string id, ExecParams p, CommandSetup s, std::shared_ptr<Responder> r)
      : host(h), sandbox_id(std::move(id)), params(std::move(p)), setup(std::move(s)), res(std::move(r)) {}

  void start() {
    ApiSandbox* sb = host.find(sandbox_id);
    if (gone || sb == nullptr || !sb->running()) return finish_without_start("the sandbox was removed");
    auto self = shared_from_this();
    CommandEvents events;
    events.started = [self](int pid) {
      if (self->stream) self->stream->send(sse_event("start", json::object{{"pid", pid}}));
      if (self->params.stdin_data) {
        self->run->write_stdin(*self->params.stdin_data, [](bool) {});
        self->run->close_stdin();
      }
    };
    events.output = [self](OutputStream s, std::string_view data) { self->output(s, data); };
    events.exit = [self](const Outcome& o) { self->exited(o); };
    setup.request.stdin_pipe = params.stdin_data.has_value();
    auto r = CommandRun::start(host.io(), sb->sandbox(), setup.request, params.timeout, params.grace, std::move(events));
    if (!r) {
      host.stopped(*sb, "cannot start a command: " + r.error().message);
      return finish_without_start("sandbox " + sandbox_id + " cannot run commands: " + r.error().message);
    }
    run = *r;
  }

  void output(OutputStream s, std::string_view data) {
    int i = s == OutputStream::out ? 0 : 1;
    std::string filtered;
    if (i == 1 && setup.trailer) {
      filtered = setup.trailer->filter(data);
      data = filtered;
    }
    deliver(i, data);
  }

  // max_output bounds each stream, streamed or not: past it the bytes are dropped (and said so),
  // the command goes on. So an exec holds at most 2 x max_output however slow its client is.
  void deliver(int i, std::string_view data) {
    if (data.empty()) return;
    uint64_t have = stream ? streamed[i] : out[i].size();
    if (have >= params.max_output) {
      truncated[i] = true;
      return;
    }
    if (data.size() > params.max_output - have) {
      data = data.substr(0, params.max_output - have);
      truncated[i] = true;
    }
    if (!stream) {
      out[i].append(data);
      return;
    }
    streamed[i] += data.size();
    std::string text = split[i].take(data);
    if (!text.empty()) stream->send(sse_event(i == 0 ? "stdout" : "stderr", output_json(text)));
  }

  void exited(const Outcome& o) {
    if (setup.trailer) deliver(1, setup.trailer->finish());
    ApiSandbox* sb = host.find(sandbox_id);
    bool completed = o.kind == Outcome::Kind::ok || o.kind == Outcome::Kind::failed;
    if (sb && setup.session_id && setup.trailer && completed && setup.trailer->found()) {
      if (Session* session = sb->sessions().find(*setup.session_id, sb->spec().cwd)) {
        apply_session_state(*session, *setup.trailer, setup.request.env);
      }
    }
    if (sb && run && run->stopped_sandbox()) host.stopped(*sb, "a command's timeout or kill without a command tree");
    json::object end = outcome_json(o);
    end["duration_ms"] = run ? run->duration_ms() : 0.0;
    if (stream) {
      for (int i : {0, 1}) {
        std::string rest = split[i].flush();
        if (!rest.empty()) stream->send(sse_event(i == 0 ? "stdout" : "stderr", output_json(rest)));
      }
      end["stdout_truncated"] = truncated[0];
      end["stderr_truncated"] = truncated[1];
      stream->end(sse_event("exit", end));
    } else if (!gone) {
      for (int i : {0, 1}) {
        std::string name = i == 0 ? "stdout" : "stderr";
        json::object text = output_json(out[i]);
        if (text.contains("data")) {
          end[name] = text["data"];
        } else {
          end[name] = json::string(to_valid_utf8(out[i]));
          end[name + "_b64"] = text["data_b64"];
        }
        end[name + "_truncated"] = truncated[i];
      }
      end["pid"] = run ? run->pid() : 0;
      res->reply(HttpResponse::json(200, end));
    }
    finish();
  }

  void finish_without_start(const std::string& why) {
    if (stream) {
      stream->end(sse_event("error", json::object{{"error", why}, {"code", "sandbox_unavailable"}}));
    } else if (!gone) {
      res->reply(HttpResponse::error_code(503, "sandbox_unavailable", why));
    }
    finish();
  }

  void finish() {
    if (ended) return;
    ended = true;
    run.reset();
    lease.reset();
    slot.reset();
    if (auto done = std::exchange(session_done, nullptr)) done();
  }

  // The client went away: the command goes too (detached work is what processes are for).
  void client_gone() {
    gone = true;
    if (run && !run->finished()) run->stop(Outcome::Kind::cancelled, params.grace);
  }
};

void post_exec(SandboxHost& host, HttpRequest& req, std::shared_ptr<Responder> res) {
  HttpResponse error;
  ApiSandbox* sb = host.resolve(req, error);
  if (sb == nullptr) return res->reply(std::move(error));
  if (auto refused = sb->disk().gate("exec")) return res->reply(std::move(*refused));
  auto body = protocol::parse_json(req.body());
  if (!body) return res->reply(HttpResponse::error_code(400, "bad_request", "the body is not JSON: " + body.error().message));
  auto params = parse_exec_params(*body, ExecBody::exec);
  if (!params) return res->reply(HttpResponse::error_code(400, "bad_request", params.error().message, params.error().subject));
  if (req.header("Accept").find("text/event-stream") != std::string::npos) params->stream = true;
  Session* session = nullptr;
  if (params->session) {
    session = sb->sessions().find(*params->session, sb->spec().cwd);
    if (session == nullptr) {
      return res->reply(HttpResponse::error_code(404, "not_found", "no session \"" + *params->session +
                                                 "\" (create it with POST /sessions, or send \"session\": null)", "session"));
    }
  }
  std::string why;
  auto slot = sb->processes().exec_slot(why);
  if (!slot) return res->reply(HttpResponse::error_code(429, "limit_reached", why));
  CommandSetup setup = command_setup(*sb, *params, session, /*trailer=*/true);
  auto call = std::make_shared<ExecCall>(host, sb->id(), std::move(*params), std::move(setup), res);
  call->lease = sb->activity_lease();  // a running exec is activity until it answers
  call->slot = std::move(slot);
  std::weak_ptr<ExecCall> weak = call;
  if (call->params.stream) {
    call->stream = EventStream::open(res, [weak] {
      if (auto c = weak.lock()) c->client_gone();
    });
  } else {
    res->on_close([weak] {
      if (auto c = weak.lock()) c->client_gone();
    });
  }
  if (session == nullptr) return call->start();
  Sessions::enqueue(*session, [call](std::function<void()> done) {
    call->session_done = std::move(done);
    call->start();
  });
}

}  // namespace

void add_exec_routes(server::Router& router, SandboxHost& host) {
  server::RouteOptions body;
  body.body_limit = 16 << 20;
  router.add(http::verb::post, "/api/v1/sandboxes/{id}/exec",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) { post_exec(host, req, std::move(res)); }, body);
  add_session_routes(router, host);
  add_process_routes(router, host);
}

}  // namespace boxcar::sandboxes
