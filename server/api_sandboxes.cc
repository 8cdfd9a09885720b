// /api/v1/sandboxes: list, get and delete (create is api_sandbox_create.cc, PATCH
// api_sandbox_patch.cc), each scoped to the API token that owns the sandbox; the callers and
// ownership every sandbox route checks; and the TTL sweep.
#include "server/api_sandboxes.h"

#include <algorithm>
#include <set>

#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "protocol/sandbox_api.h"
#include "server/auth.h"
#include "server/sandbox_fields.h"
#include "server/sandbox_json.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

HttpResponse bad(std::string_view message, std::string_view field = {}) {
  return sandbox_bad_request(message, field);
}

void list(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto caller_or = sandbox_caller(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&caller_or)) return res->reply(std::move(*refused));
  const auto& caller = std::get<SandboxCaller>(caller_or);
  SandboxQuery q;
  q.owner = caller.owner_filter();
  q.state = req.query_or("state", "");
  q.name = req.query_or("name", "");
  q.after_id = req.query_or("cursor", "");
  static const std::set<std::string> kStates = {"creating", "running", "paused", "stopped",
                                                "error", "lost"};
  if (!q.state.empty() && !kStates.contains(q.state)) {
    return res->reply(bad("state: one of creating, running, paused, stopped, error, lost", "state"));
  }
  if (!q.after_id.empty() && !protocol::valid_sandbox_id(q.after_id)) {
    return res->reply(bad("cursor: pass the next_cursor of the previous page", "cursor"));
  }
  if (std::string label = req.query_or("label", ""); !label.empty()) {
    auto eq = label.find('=');
    if (eq == std::string::npos || eq == 0) return res->reply(bad("label: k=v", "label"));
    q.label_key = label.substr(0, eq);
    q.label_value = label.substr(eq + 1);
  }
  std::string limit = req.query_or("limit", "100");
  q.limit = 0;
  if (limit.empty() || limit.size() > 4 || !std::all_of(limit.begin(), limit.end(), ::isdigit) ||
      (q.limit = std::stoi(limit)) < 1 || q.limit > 1000) {
    return res->reply(bad("limit: a whole number from 1 to 1000", "limit"));
  }
  // `lost` is not stored: it is read from the agents' syncs, so that filter runs here.
  bool lost_only = q.state == "lost";
  if (lost_only) q.state.clear();
  int want = q.limit;
  q.limit = want + 1;
  UnixMillis now = now_ms();
  SandboxJson agents(ctx);
  json::array out;
  std::string next;
  for (;;) {
    auto page = ctx.store.sandboxes(q);
    if (!page) return res->reply(store_error(page.error()));
    for (const auto& s : *page) {
      json::value j = agents.of(s, now);
      std::string state(j.as_object()["state"].as_string());
      if ((lost_only && state != "lost") || (!q.state.empty() && state == "lost")) continue;
      if (out.size() == static_cast<size_t>(want)) {
        next = out.back().as_object()["id"].as_string();
        break;
      }
      out.push_back(std::move(j));
    }
    if (!next.empty() || page->size() < static_cast<size_t>(q.limit)) break;
    q.after_id = page->back().id;
  }
  res->reply(HttpResponse::json(200, {{"sandboxes", std::move(out)},
                                      {"next_cursor", next.empty() ? json::value(nullptr) : json::value(next)}}));
}

void get(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto caller_or = sandbox_caller(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&caller_or)) return res->reply(std::move(*refused));
  auto found = owned_sandbox(ctx, std::get<SandboxCaller>(caller_or), req.params["id"]);
  if (auto* refused = std::get_if<HttpResponse>(&found)) return res->reply(std::move(*refused));
  SandboxJson agents(ctx);
  res->reply(HttpResponse::json(200, agents.of(std::get<SandboxRecord>(found), now_ms())));
}

// The row goes whatever the agent says: an agent that missed the DELETE (unreachable, lost)
// learns it from its next sync, whose answer names the sandbox.
void remove(ApiContext& ctx, SandboxAgentCalls& calls, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto caller_or = sandbox_caller(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&caller_or)) return res->reply(std::move(*refused));
  const auto& caller = std::get<SandboxCaller>(caller_or);
  auto found = owned_sandbox(ctx, caller, req.params["id"]);
  if (auto* refused = std::get_if<HttpResponse>(&found)) return res->reply(std::move(*refused));
  SandboxRecord s = std::get<SandboxRecord>(found);
  auto agent = ctx.store.sandbox_agent(s.agent_id);
  if (!agent) return res->reply(store_error(agent.error()));
  auto finish = [&ctx, res, id = s.id] {
    auto deleted = ctx.store.delete_sandbox(id);
    if (!deleted) return res->reply(store_error(deleted.error()));
    if (!*deleted) return res->reply(HttpResponse::error_code(404, "sandbox_not_found", "no such sandbox: " + id));
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    res->reply(std::move(r));
  };
  if (!*agent) return finish();
  calls.call(**agent, caller.agent_owner(), "DELETE", "/agent/v1/sandboxes/" + s.id, "",
             kSandboxAgentCallTimeout,
             [finish](const boost::system::error_code&, HttpReply) { finish(); });
}

}  // namespace


std::string SandboxCaller::agent_owner() const { return admin ? protocol::kAnyOwner : owner; }

std::variant<SandboxCaller, HttpResponse> sandbox_caller(const ApiContext& ctx, const HttpRequest& req) {
  const ApiToken* token = api_caller(ctx, req);
  if (!token) {
    HttpResponse r = HttpResponse::error_code(
        401, "unauthorized",
        req.header("Authorization").empty()
            ? "the sandbox API needs an API token: send Authorization: Bearer <token>"
            : "the API token is not one this server knows");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  if (!token->allows(Scope::sandboxes)) {
    return HttpResponse::error_code(403, "permission_denied",
                                    "the token \"" + token->name +
                                        "\" lacks the sandboxes scope (add \"sandboxes\" to its scopes)");
  }
  return SandboxCaller{token, token->name, token->allows(Scope::admin)};
}

std::variant<SandboxRecord, HttpResponse> owned_sandbox(ApiContext& ctx, const SandboxCaller& caller,
                                                        const std::string& id) {
  auto not_found = [&] {
    return HttpResponse::error_code(404, "sandbox_not_found",
                                    "no such sandbox: " + id.substr(0, 64) + " (GET /api/v1/sandboxes lists yours)");
  };
  if (!protocol::valid_sandbox_id(id)) return not_found();
  auto found = ctx.store.sandbox(id);
  if (!found) return store_error(found.error());
  if (!*found || (!caller.admin && (*found)->owner != caller.owner)) return not_found();
  return std::move(**found);
}

std::string visible_state(const SandboxRecord& s, const std::optional<SandboxAgentRecord>& agent,
                          UnixMillis now, UnixMillis lost_after_ms) {
  if (s.state == "creating" || s.state == "error") return s.state;
  if (!agent || now - agent->synced_at > lost_after_ms) return "lost";
  return s.state;
}

HttpResponse sandbox_agent_failure(const boost::system::error_code& ec, const HttpReply& reply,
                                   const SandboxAgentRecord& agent, const std::string& what) {
  if (!ec && reply.status >= 400) {
    auto body = protocol::parse_json(reply.body);
    if (body && body->is_object() && body->as_object().contains("code")) {
      HttpResponse r;
      r.status = reply.status;
      r.body = reply.body;
      return r;
    }
  }
  return HttpResponse::error_code(503, "sandbox_unavailable",
                                  "the agent at " + agent.endpoint + " " + what + ": " + reply_failure(ec, reply));
}

void add_sandbox_routes(Router& router, ApiContext& ctx, SandboxAgentCalls& agents) {
  RouteOptions small;
  small.body_limit = 1 << 20;
  router.add(http::verb::post, "/api/v1/sandboxes",
             [&ctx, &agents](HttpRequest& req, std::shared_ptr<Responder> res) {
               create_sandbox(ctx, agents, req, std::move(res));
             },
             small);
  router.add(http::verb::get, "/api/v1/sandboxes",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { list(ctx, req, std::move(res)); });
  router.add(http::verb::get, "/api/v1/sandboxes/{id}",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { get(ctx, req, std::move(res)); });
  router.add(http::verb::patch, "/api/v1/sandboxes/{id}",
             [&ctx, &agents](HttpRequest& req, std::shared_ptr<Responder> res) {
               patch_sandbox(ctx, agents, req, std::move(res));
             },
             small);
  router.add(http::verb::delete_, "/api/v1/sandboxes/{id}",
             [&ctx, &agents](HttpRequest& req, std::shared_ptr<Responder> res) {
               remove(ctx, agents, req, std::move(res));
             });
}

size_t sweep_expired_sandboxes(ApiContext& ctx, SandboxAgentCalls& calls) {
  auto expired = ctx.store.expired_sandboxes(now_ms(), 50);
  if (!expired) return 0;
  size_t removed = 0;
  for (const auto& s : *expired) {
    auto deleted = ctx.store.delete_sandbox(s.id);
    if (!deleted || !*deleted) continue;
    ++removed;
    auto agent = ctx.store.sandbox_agent(s.agent_id);
    if (agent && *agent) {
      calls.call(**agent, protocol::kAnyOwner, "DELETE", "/agent/v1/sandboxes/" + s.id, "",
                 kSandboxAgentCallTimeout, [](const boost::system::error_code&, HttpReply) {});
    }
  }
  return removed;
}

}  // namespace boxcar::server
