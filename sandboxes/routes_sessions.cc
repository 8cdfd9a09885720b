// /api/v1/sandboxes/{id}/sessions (SANDBOXES.md §2.3): create, list, get, patch (env, cwd) and
// delete the sessions whose env and cwd later commands start from.
#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/exec_params.h"
#include "sandboxes/sandbox_host.h"

namespace boxcar::sandboxes {

namespace http = boost::beast::http;
namespace json = boost::json;
using server::HttpRequest;
using server::HttpResponse;
using server::Responder;

namespace {

json::object session_json(const Session& s) {
  json::object env;
  for (const auto& [k, v] : s.env) {
    if (v) {
      env[k] = *v;
    } else {
      env[k] = nullptr;
    }
  }
  return {{"id", s.id}, {"env", std::move(env)}, {"cwd", s.cwd}, {"created_at", s.created_at_ms},
          {"busy", s.busy}};
}

// {env?, cwd?} as sessions take them; an Error names the field.
Status read_env_cwd(const json::value& body, EnvChanges& env, std::optional<std::string>& cwd,
                    const std::vector<std::string>& known) {
  protocol::JsonReader in(body);
  in.known(known).optional("cwd", cwd);
  if (!in.ok()) return Error{in.error().message, 0, ErrorCode::invalid_input, in.error_field()};
  // env reads as exec's does (null removes a variable).
  json::object probe{{"argv", json::array{"true"}}};
  if (const json::value* e = body.as_object().if_contains("env")) probe["env"] = *e;
  auto p = parse_exec_params(probe, ExecBody::exec);
  if (!p) return p.error();
  env = std::move(p->env);
  if (cwd) {
    if (std::string why = path_problem(*cwd); !why.empty()) return Error{"\"cwd\": " + why, 0, ErrorCode::invalid_input, "cwd"};
    if ((*cwd)[0] != '/') return Error{"\"cwd\": must be absolute", 0, ErrorCode::invalid_input, "cwd"};
  }
  return {};
}

HttpResponse bad(const Error& e) { return HttpResponse::error_code(400, "bad_request", e.message, e.subject); }

std::optional<json::value> json_body(const HttpRequest& req, Responder& res) {
  auto v = protocol::parse_json(req.body().empty() ? "{}" : req.body());
  if (!v || !v->is_object()) {
    res.reply(HttpResponse::error_code(400, "bad_request", "the body must be a JSON object"));
    return std::nullopt;
  }
  return *v;
}

HttpResponse no_session(const std::string& id) {
  return HttpResponse::error_code(404, "not_found", "no session \"" + id + "\"", "session");
}

}  // namespace

void add_session_routes(server::Router& router, SandboxHost& host) {
  server::RouteOptions small;
  small.body_limit = 1 << 20;
  router.add(http::verb::post, "/api/v1/sandboxes/{id}/sessions",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
               HttpResponse error;
               ApiSandbox* sb = host.resolve(req, error);
               if (sb == nullptr) return res->reply(std::move(error));
               auto body = json_body(req, *res);
               if (!body) return;
               std::string id;
               EnvChanges env;
               std::optional<std::string> cwd;
               protocol::JsonReader in(*body);
               in.optional("id", id);
               if (!in.ok()) return res->reply(bad(Error{in.error().message, 0, ErrorCode::invalid_input, "id"}));
               if (!id.empty() && !valid_custom_id(id)) {
                 return res->reply(bad(Error{"\"id\": expected [A-Za-z0-9_.-]{1,64}", 0, ErrorCode::invalid_input, "id"}));
               }
               if (Status s = read_env_cwd(*body, env, cwd, {"id", "env", "cwd"}); !s) return res->reply(bad(s.error()));
               sb->sessions().find("default", sb->spec().cwd);
               std::string why;
               Session* s = sb->sessions().create(id, std::move(env), cwd.value_or(sb->spec().cwd), why);
               if (s == nullptr) {
                 bool exists = why.find("exists") != std::string::npos;
                 return res->reply(HttpResponse::error_code(exists ? 409 : 429, exists ? "exists" : "limit_reached", why, "id"));
               }
               res->reply(HttpResponse::json(201, session_json(*s)));
             },
             small);
  router.add(http::verb::get, "/api/v1/sandboxes/{id}/sessions",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
               HttpResponse error;
               ApiSandbox* sb = host.resolve(req, error);
               if (sb == nullptr) return res->reply(std::move(error));
               sb->sessions().find("default", sb->spec().cwd);
               json::array list;
               for (const Session* s : sb->sessions().list()) list.push_back(session_json(*s));
               res->reply(HttpResponse::json(200, json::object{{"sessions", std::move(list)}}));
             });
  router.add(http::verb::get, "/api/v1/sandboxes/{id}/sessions/{sid}",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
               HttpResponse error;
               ApiSandbox* sb = host.resolve(req, error);
               if (sb == nullptr) return res->reply(std::move(error));
               Session* s = sb->sessions().find(req.params["sid"], sb->spec().cwd);
               if (s == nullptr) return res->reply(no_session(req.params["sid"]));
               res->reply(HttpResponse::json(200, session_json(*s)));
             });
  router.add(http::verb::patch, "/api/v1/sandboxes/{id}/sessions/{sid}",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
               HttpResponse error;
               ApiSandbox* sb = host.resolve(req, error);
               if (sb == nullptr) return res->reply(std::move(error));
               Session* s = sb->sessions().find(req.params["sid"], sb->spec().cwd);
               if (s == nullptr) return res->reply(no_session(req.params["sid"]));
               auto body = json_body(req, *res);
               if (!body) return;
               EnvChanges env;
               std::optional<std::string> cwd;
               if (Status st = read_env_cwd(*body, env, cwd, {"env", "cwd"}); !st) return res->reply(bad(st.error()));
               for (auto& [k, v] : env) s->env[k] = v;
               if (cwd) s->cwd = *cwd;
               res->reply(HttpResponse::json(200, session_json(*s)));
             },
             small);
  router.add(http::verb::delete_, "/api/v1/sandboxes/{id}/sessions/{sid}",
             [&host](HttpRequest& req, std::shared_ptr<Responder> res) {
               HttpResponse error;
               ApiSandbox* sb = host.resolve(req, error);
               if (sb == nullptr) return res->reply(std::move(error));
               const std::string& sid = req.params["sid"];
               if (sid == "default") {
                 return res->reply(HttpResponse::error_code(409, "busy", "the default session cannot be deleted (PATCH it instead)", "session"));
               }
               Session* s = sb->sessions().find(sid, sb->spec().cwd);
               if (s == nullptr) return res->reply(no_session(sid));
               if (s->busy) {
                 return res->reply(HttpResponse::error_code(409, "busy", "session \"" + sid + "\" is running a command: wait for it or cancel it", "session"));
               }
               sb->sessions().remove(sid);
               res->reply(HttpResponse::text(204, ""));
             });
}

}  // namespace boxcar::sandboxes
