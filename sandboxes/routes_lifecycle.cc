// POST /agent/v1/sandboxes, PATCH and DELETE /agent/v1/sandboxes/{id}: what the server's control
// plane asks of this agent (protocol/sandbox_api.h). Nothing else on the data plane creates or
// removes. The public state routes (pause, resume, stop, metrics, events) are in routes_state.cc.
#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

namespace http = boost::beast::http;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;

namespace {

HttpResponse unauthorized() {
  return HttpResponse::error_code(401, "unauthorized", "the data plane needs its key (Authorization: Bearer)");
}

HttpResponse create_error(const Error& e) {
  switch (e.code) {
    case ErrorCode::conflict:
      return HttpResponse::error_code(409, "exists", e.message, e.subject);
    case ErrorCode::limit_exceeded:
      return HttpResponse::error_code(429, "limit_reached", e.message, e.subject);
    case ErrorCode::invalid_input:
      return HttpResponse::error_code(400, "bad_request", e.message, e.subject);
    default:
      return HttpResponse::error_code(500, "internal", "cannot create the sandbox: " + e.message);
  }
}

}  // namespace

void add_lifecycle_routes(server::Router& router, SandboxHost& host) {
  server::RouteOptions small;
  small.body_limit = 1 << 20;
  small.admit = [&host](const HttpRequest& head) -> std::optional<HttpResponse> {
    if (!host.key_ok(head)) return unauthorized();
    return std::nullopt;
  };
  router.add(http::verb::post, "/agent/v1/sandboxes",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
               auto v = protocol::parse_json(req.body());
               if (!v) return res->reply(HttpResponse::error_code(400, "bad_request", v.error().message));
               auto spec = protocol::sandbox_create_from_json(*v);
               if (!spec) return res->reply(HttpResponse::error_code(400, "bad_request", spec.error().message));
               auto report = host.create(*spec);
               if (!report) return res->reply(create_error(report.error()));
               res->reply(HttpResponse::json(201, protocol::to_json(*report)));
             },
             small);
  router.add(http::verb::patch, "/agent/v1/sandboxes/{id}",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
               ApiSandbox* sb = host.find(req.params["id"]);
               if (sb == nullptr) {
                 return res->reply(HttpResponse::error_code(404, "sandbox_not_found",
                                                            "no sandbox \"" + req.params["id"] + "\"", "id"));
               }
               auto v = protocol::parse_json(req.body());
               if (!v) return res->reply(HttpResponse::error_code(400, "bad_request", v.error().message));
               // The server sends exactly these; anything else is a mistake to report, not to ignore.
               protocol::JsonReader keys(*v);
               keys.known({"sleep_after_ms", "stop_after_ms", "keep_alive"});
               if (!keys.ok()) return res->reply(HttpResponse::error_code(400, "bad_request", keys.error().message));
               auto timers = protocol::sandbox_timers_from_json(*v);
               if (!timers) return res->reply(HttpResponse::error_code(400, "bad_request", timers.error().message));
               if (Status s = host.set_timers(*sb, *timers); !s) {
                 return res->reply(HttpResponse::error_code(500, "internal", "cannot keep the timers: " + s.error().message));
               }
               res->reply(HttpResponse::json(200, protocol::to_json(host.report(*sb))));
             },
             small);
  router.add(http::verb::delete_, "/agent/v1/sandboxes/{id}",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
               if (!host.remove(req.params["id"])) {
                 return res->reply(HttpResponse::error_code(404, "sandbox_not_found",
                                                            "no sandbox \"" + req.params["id"] + "\"", "id"));
               }
               res->reply(HttpResponse::text(204, ""));
             },
             small);
  add_state_routes(router, host);
}

}  // namespace boxcar::sandboxes
