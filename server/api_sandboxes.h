// The sandbox API's control plane in the server (SANDBOXES.md §1.1, §1.4, §1.5, §2.1):
// create/list/get/patch/delete under /api/v1/sandboxes (api_sandboxes.cc, api_sandbox_create.cc,
// api_sandbox_patch.cc; the Sandbox JSON in sandbox_json.h), the agents' sandbox
// sync (api_sandbox_sync.cc), and the gateway that forwards every other
// /api/v1/sandboxes/{id}/... request to the owning agent (sandbox_gateway.cc).
#pragma once

#include <optional>
#include <string>
#include <variant>

#include <boost/json/value.hpp>

#include "server/api.h"
#include "server/sandbox_agent_calls.h"

namespace boxcar::server {

// An agent that has not synced for ServerConfig::sandbox_lost_after_ms (--sandbox-lost-after,
// by default 15 s: 3 periods of 5 s) is lost: its sandboxes read `lost`, and requests for them
// get 503 sandbox_unavailable.

// How long the server waits for an agent's answer to a create, patch or delete.
inline constexpr Millis kSandboxAgentCallTimeout{60'000};

// Who calls a sandbox route: the API token's name owns what it creates; an admin token sees
// every owner's (owner_filter "").
struct SandboxCaller {
  const ApiToken* token = nullptr;
  std::string owner;
  bool admin = false;
  std::string owner_filter() const { return admin ? "" : owner; }
  // The X-Boxcar-Owner the agent gets: "*" for an admin, who may reach any owner's sandbox.
  std::string agent_owner() const;
};

// The caller, or the answer refusing it: 401 unauthorized (no or an unknown token; --public-read
// opens nothing here), 403 permission_denied (a token without the sandboxes scope).
std::variant<SandboxCaller, HttpResponse> sandbox_caller(const ApiContext& ctx, const HttpRequest& req);

// The sandbox `id` when `caller` may see it; otherwise the answer: 404 sandbox_not_found (also
// for another owner's: existence does not leak), 500 when the store failed.
std::variant<SandboxRecord, HttpResponse> owned_sandbox(ApiContext& ctx, const SandboxCaller& caller,
                                                        const std::string& id);

// The state as the API shows it: `lost` once the hosting agent has not synced for lost_after_ms.
std::string visible_state(const SandboxRecord& s, const std::optional<SandboxAgentRecord>& agent,
                          UnixMillis now, UnixMillis lost_after_ms);

// The answer to a failed call to `agent`: its own error passed on when it is one of ours
// ({error, code}), else 503 sandbox_unavailable saying "the agent at ENDPOINT <what>: <why>".
HttpResponse sandbox_agent_failure(const boost::system::error_code& ec, const HttpReply& reply,
                                   const SandboxAgentRecord& agent, const std::string& what);

// POST /api/v1/sandboxes (api_sandbox_create.cc) and PATCH /api/v1/sandboxes/{id}
// (api_sandbox_patch.cc: a change to the timers reaches the agent before the row).
void create_sandbox(ApiContext& ctx, SandboxAgentCalls& calls, HttpRequest& req, std::shared_ptr<Responder> res);
void patch_sandbox(ApiContext& ctx, SandboxAgentCalls& calls, HttpRequest& req, std::shared_ptr<Responder> res);

void add_sandbox_routes(Router& router, ApiContext& ctx, SandboxAgentCalls& agents);
void add_sandbox_sync_route(Router& router, ApiContext& ctx);
void add_sandbox_gateway(Router& router, ApiContext& ctx);

// The TTL: deletes up to a batch of expired sandboxes (rows first, then each agent is told;
// an agent that misses it learns it from its next sync). Returns how many went.
size_t sweep_expired_sandboxes(ApiContext& ctx, SandboxAgentCalls& agents);

}  // namespace boxcar::server
