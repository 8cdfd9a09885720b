// The sandbox service's wire types between the server (control plane and gateway) and the agents
// that host sandboxes (shared/SANDBOXES.md §1.1; docs/sandboxes.md is the public API):
//
//   agent -> server  POST /api/v1/agent/sandboxes/sync     SandboxSync -> 200 SandboxSyncAnswer
//                    (agent credential; every 5 s and on every change)
//   server -> agent  POST   {endpoint}/agent/v1/sandboxes           SandboxCreate -> 201 SandboxReport
//                    PATCH  {endpoint}/agent/v1/sandboxes/{id}      SandboxTimers -> 200 SandboxReport
//                    DELETE {endpoint}/agent/v1/sandboxes/{id}      -> 204 (404 when unknown)
//                    any    {endpoint}/api/v1/sandboxes/{id}/...    the public routes, proxied as is
//   Every server -> agent request carries "Authorization: Bearer <key>" (the data-plane key the
//   agent reported in its last sync: a random secret of its own, never the agent credential) and
//   "X-Boxcar-Owner: <token name>" (the caller's; "*" for an admin token). The agent answers a
//   sandbox of another owner with 404, as the server does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "base/result.h"

namespace boxcar::protocol {

// Header names of the data plane.
inline constexpr const char* kOwnerHeader = "X-Boxcar-Owner";
inline constexpr const char* kAnyOwner = "*";

struct SandboxResources {
  int64_t memory_bytes = 1ll << 30;
  int64_t cpu_millis = 1000;  // 1000 = one CPU
  int64_t pids = 1024;
  int64_t tmp_bytes = 256ll << 20;
  int64_t disk_bytes = 4ll << 30;
};

// When an idle sandbox is paused (frozen) and a paused one stopped (SANDBOXES.md §1.3). Idle:
// no API request, open stream or preview connection for that long. keep_alive: neither.
// The longest ttl_ms, sleep_after_ms and stop_after_ms (366 days): far from where a deadline
// computed in steady_clock nanoseconds would overflow.
inline constexpr int64_t kMaxSandboxMs = 366LL * 24 * 3600 * 1000;

struct SandboxTimers {
  int64_t sleep_after_ms = 600'000;
  int64_t stop_after_ms = 3'600'000;
  bool keep_alive = false;
};

// What the server asks an agent to create (and keeps in its store as the sandbox's spec).
struct SandboxCreate {
  std::string id;     // [a-z2-7]{12}, chosen by the server
  std::string owner;  // the API token's name
  std::string name;
  std::string image = "host";
  SandboxResources resources;
  std::map<std::string, std::string> env;
  std::string cwd = "/workspace";
  std::string network = "job";  // "job" (egress by the agent's policy) or "none"
  std::vector<std::string> egress;  // network {egress: [...]}: names allowed out (empty: policy)
  std::map<std::string, std::string> labels;
  SandboxTimers timers;  // changed later by PATCH /agent/v1/sandboxes/{id}
};

struct SandboxPort {
  int port = 0;
  std::string name;
  std::string url;       // http://{port}-{id}-{token}.{domain}:{pport}/
  std::string path_url;  // http://{addr}:{pport}/preview/{token}/
  std::string token;
};

// One sandbox as its agent sees it.
struct SandboxReport {
  std::string id;
  std::string state;  // creating | running | paused | stopped | error
  int64_t last_active_at = 0;  // Unix ms
  int64_t create_ms = 0;       // how long the agent took to create it (answer to create only)
  std::string error;           // state error: why
  std::vector<SandboxPort> ports;
};

struct SandboxSync {
  std::string endpoint;  // http://host:port the server reaches the data plane at
  std::string key;       // the data plane's bearer secret
  int64_t slots_free = 0;
  int64_t memory_free_bytes = 0;  // the agent's memory budget left for sandboxes
  std::vector<SandboxReport> sandboxes;  // every sandbox the agent holds
};

struct SandboxSyncAnswer {
  std::vector<std::string> deleted;  // sandboxes the server no longer has: the agent removes them
};

// True for [a-z2-7]{12}.
bool valid_sandbox_id(std::string_view id);

boost::json::value to_json(const SandboxResources&);
boost::json::value to_json(const SandboxTimers&);
boost::json::value to_json(const SandboxCreate&);
boost::json::value to_json(const SandboxPort&);
boost::json::value to_json(const SandboxReport&);
boost::json::value to_json(const SandboxSync&);
boost::json::value to_json(const SandboxSyncAnswer&);
// A field missing or mistyped, or an id that is not a sandbox id, is an Error naming it.
Result<SandboxTimers> sandbox_timers_from_json(const boost::json::value& v);
Result<SandboxCreate> sandbox_create_from_json(const boost::json::value& v);
Result<SandboxReport> sandbox_report_from_json(const boost::json::value& v);
Result<SandboxSync> sandbox_sync_from_json(const boost::json::value& v);
Result<SandboxSyncAnswer> sandbox_sync_answer_from_json(const boost::json::value& v);

}  // namespace boxcar::protocol
