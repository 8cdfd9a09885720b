#include "server/sandbox_json.h"

#include <boost/json.hpp>

#include "base/rfc3339.h"
#include "protocol/json_reader.h"
#include "protocol/sandbox_api.h"
#include "server/api_sandboxes.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

json::value ports_json(const std::string& text) {
  auto parsed = protocol::parse_json(text);
  return parsed && parsed->is_array() ? *parsed : json::value(json::array());
}

}  // namespace

json::value sandbox_json(const SandboxRecord& s, const std::optional<SandboxAgentRecord>& agent,
                         const std::string& agent_name, UnixMillis now, UnixMillis lost_after_ms) {
  json::object spec;
  if (auto parsed = protocol::parse_json(s.spec); parsed && parsed->is_object()) {
    spec = parsed->as_object();
  }
  json::object out;
  out["id"] = s.id;
  out["name"] = s.name.empty() ? json::value(nullptr) : json::value(s.name);
  out["state"] = visible_state(s, agent, now, lost_after_ms);
  out["image"] = spec.contains("image") ? spec["image"] : json::value("host");
  json::object resources;
  if (auto* r = spec.if_contains("resources"); r && r->is_object()) {
    const auto& ro = r->as_object();
    auto num = [&](const char* k) { return ro.contains(k) ? ro.at(k) : json::value(nullptr); };
    resources["memory"] = num("memory_bytes");
    resources["cpus"] = ro.contains("cpu_millis") && ro.at("cpu_millis").is_int64()
                            ? json::value(static_cast<double>(ro.at("cpu_millis").as_int64()) / 1000)
                            : json::value(nullptr);
    resources["pids"] = num("pids");
    resources["tmp"] = num("tmp_bytes");
    resources["disk"] = num("disk_bytes");
  }
  out["resources"] = std::move(resources);
  json::value network = spec.contains("network") ? spec["network"] : json::value("job");
  if (auto* e = spec.if_contains("egress"); e && e->is_array() && !e->as_array().empty()) {
    network = json::object{{"egress", *e}};
  }
  out["network"] = std::move(network);
  out["env"] = spec.contains("env") ? spec["env"] : json::value(json::object());
  json::object labels;
  for (const auto& [k, v] : s.labels) labels[k] = v;
  out["labels"] = std::move(labels);
  out["agent"] = agent_name;
  out["created_at"] = format_rfc3339(s.created_at);
  out["last_active_at"] = format_rfc3339(s.last_active_at);
  out["expires_at"] = rfc3339_or_null(s.expires_at);
  out["ttl_ms"] = s.ttl_ms;
  out["sleep_after_ms"] = s.sleep_after_ms;
  out["stop_after_ms"] = s.stop_after_ms;
  out["keep_alive"] = s.keep_alive;
  out["ports"] = ports_json(s.ports);
  out["create_ms"] = s.create_ms;
  if (!s.error.empty()) out["error"] = s.error;
  return out;
}

json::value SandboxJson::of(const SandboxRecord& s, UnixMillis now) {
  auto& [agent, name] = lookup(s.agent_id);
  return sandbox_json(s, agent, name, now, ctx_.options.sandbox_lost_after_ms);
}

SandboxJson::Agent& SandboxJson::lookup(int64_t id) {
  auto it = agents_.find(id);
  if (it != agents_.end()) return it->second;
  Agent entry;
  if (auto a = ctx_.store.sandbox_agent(id); a) entry.first = *a;
  if (auto r = ctx_.store.agent(id); r && *r) entry.second = (*r)->name;
  return agents_.emplace(id, std::move(entry)).first->second;
}

}  // namespace boxcar::server
