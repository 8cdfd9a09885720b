// The gateway: every /api/v1/sandboxes/{id}/{rest...} request other than the control plane's is
// authorized here (the API token owns the sandbox, or is an admin) and forwarded on the same
// path to the agent hosting it, with the agent's data-plane key and X-Boxcar-Owner in place of
// the caller's Authorization, through the streaming reverse proxy (http/reverse_proxy.h).
#include "http/reverse_proxy.h"
#include "base/url.h"
#include "protocol/sandbox_api.h"
#include "server/api_sandboxes.h"

namespace boxcar::server {

namespace {

HttpResponse unavailable(const std::string& why) {
  return HttpResponse::error_code(503, "sandbox_unavailable", why);
}

void forward(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto caller_or = sandbox_caller(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&caller_or)) return res->reply(std::move(*refused));
  const auto& caller = std::get<SandboxCaller>(caller_or);
  std::string id = req.params["id"];
  auto found = owned_sandbox(ctx, caller, id);
  if (auto* refused = std::get_if<HttpResponse>(&found)) return res->reply(std::move(*refused));
  // The agent routes on the path as sent: it must name the sandbox checked here, literally
  // (no percent-encoded id, no dot segment that would turn it into another one).
  std::string target(req.raw.target());
  std::string prefix = "/api/v1/sandboxes/" + id + "/";
  if (!target.starts_with(prefix) || req.path.find("/../") != std::string::npos ||
      req.path.find("/./") != std::string::npos || req.path.ends_with("/..")) {
    return res->reply(HttpResponse::error_code(400, "bad_path",
                                               "the path must name the sandbox as /api/v1/sandboxes/" +
                                                   id + "/..., without . or .. segments"));
  }
  const SandboxRecord& s = std::get<SandboxRecord>(found);
  if (s.state == "creating") {
    return res->reply(HttpResponse::error_code(409, "not_running", "sandbox " + id + " is still being created"));
  }
  auto agent = ctx.store.sandbox_agent(s.agent_id);
  if (!agent) return res->reply(store_error(agent.error()));
  if (visible_state(s, *agent, now_ms(), ctx.options.sandbox_lost_after_ms) == "lost" || !*agent) {
    return res->reply(unavailable("sandbox " + id + "'s agent has not synced for " +
                                  std::to_string(ctx.options.sandbox_lost_after_ms / 1000) +
                                  " s: it is lost until the agent is back"));
  }
  auto url = parse_server_url((*agent)->endpoint);
  if (!url) return res->reply(unavailable("the agent's endpoint is not usable: " + url.error().message));
  ProxyTarget t;
  t.host = url->host;
  t.port = url->port;
  t.target = std::move(target);
  t.drop = {"Authorization", "Cookie", protocol::kOwnerHeader};
  t.add = {{"Authorization", "Bearer " + (*agent)->key}, {protocol::kOwnerHeader, caller.agent_owner()}};
  ProxyOptions options;
  options.unreachable = [endpoint = (*agent)->endpoint, id](const std::string& why) {
    return unavailable("sandbox " + id + "'s agent at " + endpoint + " is unreachable (" + why + ")");
  };
  reverse_proxy(req, std::move(res), std::move(t), std::move(options));
}

}  // namespace

void add_sandbox_gateway(Router& router, ApiContext& ctx) {
  RouteOptions options;
  options.take_connection = true;
  for (auto verb : {http::verb::get, http::verb::head, http::verb::post, http::verb::put,
                    http::verb::patch, http::verb::delete_}) {
    router.add(verb, "/api/v1/sandboxes/{id}/{rest...}",
               [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { forward(ctx, req, std::move(res)); },
               options);
  }
}

}  // namespace boxcar::server
