// /api/v1/sandboxes: create (placement, then the agent's create), list, get, patch and delete,
// each scoped to the API token that owns the sandbox; and the TTL sweep.
#include "server/api_sandboxes.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <boost/json.hpp>

#include "base/random_token.h"
#include "base/rfc3339.h"
#include "base/size.h"
#include "protocol/json_reader.h"
#include "protocol/sandbox_api.h"
#include "server/auth.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

constexpr Millis kAgentCallTimeout{60'000};
constexpr UnixMillis kIdempotencyWindowMs = 24LL * 3600 * 1000;
constexpr size_t kMaxLabels = 64, kMaxEnv = 256, kMaxAgentLabels = 16;
constexpr size_t kMaxKey = 128, kMaxLabelValue = 256, kMaxEnvValue = 32 << 10;

// The resource maxima of §1.5, and what each field is called in the body.
struct ResourceLimit {
  const char* field;
  int64_t max;
  int64_t protocol::SandboxResources::*member;
  bool size;  // bytes (a number or "512MiB"); else a count
};
constexpr ResourceLimit kResourceLimits[] = {
    {"memory", 8LL << 30, &protocol::SandboxResources::memory_bytes, true},
    {"pids", 4096, &protocol::SandboxResources::pids, false},
    {"tmp", 4LL << 30, &protocol::SandboxResources::tmp_bytes, true},
    {"disk", 64LL << 30, &protocol::SandboxResources::disk_bytes, true},
};
constexpr int64_t kMaxCpuMillis = 2000;

HttpResponse bad(std::string_view message, std::string_view field = {}) {
  return HttpResponse::error_code(400, "bad_request", message, field);
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxKey || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A size field: bytes as an integer, or a string for base/size ("512MiB").
std::optional<HttpResponse> read_size(const json::value& v, const std::string& field, int64_t& out) {
  if (v.is_int64() && v.as_int64() > 0) {
    out = v.as_int64();
    return std::nullopt;
  }
  if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    out = static_cast<int64_t>(v.as_uint64());
    return std::nullopt;
  }
  if (v.is_string()) {
    auto parsed = parse_size(std::string(v.as_string()));
    if (parsed && *parsed > 0 && *parsed <= static_cast<uint64_t>(INT64_MAX)) {
      out = static_cast<int64_t>(*parsed);
      return std::nullopt;
    }
  }
  return bad(field + ": expected a size in bytes, as a number or a string like \"512MiB\", got " +
                 json::serialize(v),
             field);
}

std::optional<HttpResponse> read_resources(const json::value& v, protocol::SandboxResources& r) {
  if (!v.is_object()) return bad("resources: expected an object {memory, cpus, pids, tmp, disk}", "resources");
  protocol::JsonReader reader(v, "resources");
  reader.known({"memory", "cpus", "pids", "tmp", "disk"});
  if (!reader.ok()) return bad(reader.error().message, reader.error_field());
  const auto& o = v.as_object();
  for (const auto& limit : kResourceLimits) {
    const json::value* f = o.if_contains(limit.field);
    if (!f || f->is_null()) continue;
    std::string field = std::string("resources.") + limit.field;
    int64_t value = 0;
    if (limit.size) {
      if (auto refused = read_size(*f, field, value)) return refused;
    } else if (f->is_int64() && f->as_int64() > 0) {
      value = f->as_int64();
    } else {
      return bad(field + ": expected a whole number > 0, got " + json::serialize(*f), field);
    }
    if (value > limit.max) {
      return bad(field + ": " + std::to_string(value) + " is over the maximum of " +
                     (limit.size ? format_size(limit.max) : std::to_string(limit.max)),
                 field);
    }
    r.*limit.member = value;
  }
  if (const json::value* f = o.if_contains("cpus"); f && !f->is_null()) {
    double cpus = f->is_number() ? f->to_number<double>() : -1;
    if (!(cpus > 0) || !std::isfinite(cpus)) {
      return bad("resources.cpus: expected a number of CPUs > 0 (1.5 is one and a half), got " +
                     json::serialize(*f),
                 "resources.cpus");
    }
    if (cpus * 1000 > kMaxCpuMillis) {
      return bad("resources.cpus: " + json::serialize(*f) + " is over the maximum of " +
                     std::to_string(kMaxCpuMillis / 1000),
                 "resources.cpus");
    }
    r.cpu_millis = std::max<int64_t>(1, static_cast<int64_t>(std::llround(cpus * 1000)));
  }
  return std::nullopt;
}

// A `*_ms` duration: a whole number >= 0.
std::optional<HttpResponse> read_ms(const json::object& o, const char* field, int64_t& out) {
  const json::value* f = o.if_contains(field);
  if (!f || f->is_null()) return std::nullopt;
  if (!f->is_int64() || f->as_int64() < 0) {
    return bad(std::string(field) + ": expected milliseconds as a whole number >= 0, got " +
                   json::serialize(*f),
               field);
  }
  out = f->as_int64();
  return std::nullopt;
}

std::optional<HttpResponse> check_labels(const std::map<std::string, std::string>& labels) {
  if (labels.size() > kMaxLabels) {
    return bad("labels: at most " + std::to_string(kMaxLabels) + " labels", "labels");
  }
  for (const auto& [k, v] : labels) {
    if (!valid_name(k)) {
      return bad("labels: the key \"" + k.substr(0, 80) +
                     "\" must be 1-64 characters of letters, digits, _ . -",
                 "labels");
    }
    if (v.size() > kMaxLabelValue) {
      return bad("labels." + k + ": longer than " + std::to_string(kMaxLabelValue) + " bytes",
                 "labels");
    }
  }
  return std::nullopt;
}

struct TtlSettings {
  int64_t ttl_ms = 0, sleep_after_ms = 600'000, stop_after_ms = 3'600'000;
  bool keep_alive = false;
};

std::optional<HttpResponse> check_ttl(const ApiContext& ctx, int64_t ttl_ms) {
  int64_t max = ctx.options.sandbox_max_ttl_ms;
  if (max > 0 && (ttl_ms == 0 || ttl_ms > max)) {
    return bad("ttl_ms: " + (ttl_ms == 0 ? std::string("0 (no TTL)") : std::to_string(ttl_ms)) +
                   " is over the maximum of " + std::to_string(max) +
                   " (the server's --sandbox-max-ttl)",
               "ttl_ms");
  }
  return std::nullopt;
}

json::value ports_json(const std::string& text) {
  auto parsed = protocol::parse_json(text);
  return parsed && parsed->is_array() ? *parsed : json::value(json::array());
}

// Sandbox JSON (§2.1), from the row, its spec and its agent.
json::value to_api_json(const SandboxRecord& s, const std::optional<SandboxAgentRecord>& agent,
                        const std::string& agent_name, UnixMillis now) {
  json::object spec;
  if (auto parsed = protocol::parse_json(s.spec); parsed && parsed->is_object()) {
    spec = parsed->as_object();
  }
  json::object out;
  out["id"] = s.id;
  out["name"] = s.name.empty() ? json::value(nullptr) : json::value(s.name);
  out["state"] = visible_state(s, agent, now);
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

// Reads what a list or an answer needs of the sandboxes' agents, once per agent.
class AgentCache {
 public:
  explicit AgentCache(ApiContext& ctx) : ctx_(ctx) {}
  json::value json_of(const SandboxRecord& s, UnixMillis now) {
    auto& [agent, name] = lookup(s.agent_id);
    return to_api_json(s, agent, name, now);
  }

 private:
  std::pair<std::optional<SandboxAgentRecord>, std::string>& lookup(int64_t id) {
    auto it = agents_.find(id);
    if (it != agents_.end()) return it->second;
    std::pair<std::optional<SandboxAgentRecord>, std::string> entry;
    if (auto a = ctx_.store.sandbox_agent(id); a) entry.first = *a;
    if (auto r = ctx_.store.agent(id); r && *r) entry.second = (*r)->name;
    return agents_.emplace(id, std::move(entry)).first->second;
  }
  ApiContext& ctx_;
  std::map<int64_t, std::pair<std::optional<SandboxAgentRecord>, std::string>> agents_;
};

Result<std::string> new_sandbox_id() {
  auto bytes = random_bytes(12);
  if (!bytes) return bytes.error();
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string id;
  for (unsigned char b : *bytes) id += kAlphabet[b & 31];
  return id;
}

// What a create body asks for, checked.
struct CreateRequest {
  protocol::SandboxCreate spec;
  bool reuse = false;
  TtlSettings ttl;
  std::vector<std::string> agent_labels;
};

std::variant<CreateRequest, HttpResponse> parse_create(const ApiContext& ctx, const HttpRequest& req) {
  auto body = protocol::parse_json(req.body().empty() ? "{}" : req.body());
  if (!body) return bad("the body is not JSON: " + body.error().message);
  if (!body->is_object()) return bad("the body must be a JSON object");
  CreateRequest c;
  protocol::JsonReader reader(*body);
  reader.known({"name", "reuse", "image", "resources", "env", "cwd", "network", "ttl_ms",
                "sleep_after_ms", "stop_after_ms", "keep_alive", "labels", "agent_labels", "warm"});
  reader.optional("name", c.spec.name).optional("reuse", c.reuse).optional("image", c.spec.image);
  reader.optional("env", c.spec.env).optional("cwd", c.spec.cwd).optional("labels", c.spec.labels);
  reader.optional("keep_alive", c.ttl.keep_alive).optional("agent_labels", c.agent_labels);
  if (!reader.ok()) return bad(reader.error().message, reader.error_field());
  const auto& o = body->as_object();
  if (!c.spec.name.empty() && !valid_name(c.spec.name)) {
    return bad("name: \"" + c.spec.name.substr(0, 80) +
                   "\" must be 1-64 characters of letters, digits, _ . - (or leave it out)",
               "name");
  }
  if (c.reuse && c.spec.name.empty()) return bad("reuse: needs a name to reuse", "reuse");
  if (c.spec.image != "host") {
    return HttpResponse::error_code(501, "unsupported",
                                    "image: only \"host\" is supported for now, not \"" +
                                        c.spec.image.substr(0, 80) + "\"",
                                    "image");
  }
  if (auto* r = o.if_contains("resources"); r && !r->is_null()) {
    if (auto refused = read_resources(*r, c.spec.resources)) return *refused;
  }
  if (c.spec.env.size() > kMaxEnv) return bad("env: at most " + std::to_string(kMaxEnv) + " variables", "env");
  for (const auto& [k, v] : c.spec.env) {
    if (!valid_env_name(k)) return bad("env: \"" + k.substr(0, 80) + "\" is not a variable name", "env");
    if (v.size() > kMaxEnvValue || v.find('\0') != std::string::npos) {
      return bad("env." + k + ": longer than 32 KiB or has a NUL byte", "env");
    }
  }
  if (c.spec.cwd.empty() || c.spec.cwd[0] != '/' || c.spec.cwd.size() > 4096 ||
      c.spec.cwd.find('\0') != std::string::npos) {
    return bad("cwd: an absolute path inside the sandbox, like /workspace", "cwd");
  }
  if (auto refused = check_labels(c.spec.labels)) return *refused;
  if (c.agent_labels.size() > kMaxAgentLabels) return bad("agent_labels: at most 16", "agent_labels");
  if (auto* n = o.if_contains("network"); n && !n->is_null()) {
    if (n->is_string() && (n->as_string() == "job" || n->as_string() == "none")) {
      c.spec.network = std::string(n->as_string());
    } else if (n->is_object()) {
      protocol::JsonReader net(*n, "network");
      net.known({"egress"}).required("egress", c.spec.egress);
      if (!net.ok()) return bad(net.error().message, net.error_field());
      if (c.spec.egress.size() > 64) return bad("network.egress: at most 64 names", "network.egress");
    } else {
      return bad("network: \"job\" (egress by the agent's policy), \"none\", or {\"egress\": [names]}",
                 "network");
    }
  }
  c.ttl.ttl_ms = ctx.options.sandbox_max_ttl_ms > 0 ? ctx.options.sandbox_max_ttl_ms : 24LL * 3600 * 1000;
  for (auto [field, out] : {std::pair{"ttl_ms", &c.ttl.ttl_ms},
                            std::pair{"sleep_after_ms", &c.ttl.sleep_after_ms},
                            std::pair{"stop_after_ms", &c.ttl.stop_after_ms}}) {
    if (auto refused = read_ms(o, field, *out)) return *refused;
  }
  if (auto refused = check_ttl(ctx, c.ttl.ttl_ms)) return *refused;
  return c;
}

std::optional<SandboxAgentRecord> place(const std::vector<SandboxAgentRecord>& agents,
                                        const std::vector<std::string>& labels) {
  const SandboxAgentRecord* best = nullptr;
  for (const auto& a : agents) {
    if (a.slots_free <= 0) continue;
    bool all = std::all_of(labels.begin(), labels.end(), [&](const std::string& l) {
      return std::find(a.labels.begin(), a.labels.end(), l) != a.labels.end();
    });
    if (all && (!best || a.memory_free_bytes > best->memory_free_bytes)) best = &a;
  }
  if (!best) return std::nullopt;
  return *best;
}

// The agent's error answer passed on when it is one of ours ({error, code}), else 503.
HttpResponse agent_failure(const boost::system::error_code& ec, const HttpReply& reply,
                           const SandboxAgentRecord& agent) {
  if (!ec && reply.status >= 400) {
    auto body = protocol::parse_json(reply.body);
    if (body && body->is_object() && body->as_object().contains("code")) {
      HttpResponse r;
      r.status = reply.status;
      r.body = reply.body;
      return r;
    }
  }
  return HttpResponse::error_code(
      503, "sandbox_unavailable",
      "the agent at " + agent.endpoint + " could not create the sandbox: " + reply_failure(ec, reply) +
          " (try again; the server places it on another agent if one can host it)");
}

void create(ApiContext& ctx, SandboxAgentCalls& calls, HttpRequest& req,
            std::shared_ptr<Responder> res) {
  auto caller_or = sandbox_caller(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&caller_or)) return res->reply(std::move(*refused));
  SandboxCaller caller = std::get<SandboxCaller>(caller_or);
  auto parsed = parse_create(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&parsed)) return res->reply(std::move(*refused));
  CreateRequest c = std::move(std::get<CreateRequest>(parsed));
  UnixMillis now = now_ms();
  AgentCache agents(ctx);

  std::string key = req.header("Idempotency-Key");
  if (key.size() > 256) return res->reply(bad("Idempotency-Key: longer than 256 bytes", "Idempotency-Key"));
  if (!key.empty()) {
    auto earlier = ctx.store.sandbox_by_key(caller.owner, key);
    if (!earlier) return res->reply(store_error(earlier.error()));
    if (*earlier && now - (*earlier)->created_at < kIdempotencyWindowMs) {
      return res->reply(HttpResponse::json(201, agents.json_of(**earlier, now)));
    }
    if (*earlier) key.clear();  // past the window: a new request that records no key
  }
  if (!c.spec.name.empty()) {
    auto named = ctx.store.sandbox_named(caller.owner, c.spec.name);
    if (!named) return res->reply(store_error(named.error()));
    if (*named) {
      if (c.reuse) return res->reply(HttpResponse::json(200, agents.json_of(**named, now)));
      return res->reply(HttpResponse::error_code(
          409, "exists",
          "name: this token already has a sandbox named \"" + c.spec.name + "\" (" + (*named)->id +
              "): pass \"reuse\": true to get it, or choose another name",
          "name"));
    }
  }
  // The limits: the server's, then the token's.
  auto all = ctx.store.count_sandboxes("");
  if (!all) return res->reply(store_error(all.error()));
  if (*all >= ctx.options.max_sandboxes) {
    return res->reply(HttpResponse::error_code(
        429, "limit_reached",
        "this server holds its maximum of " + std::to_string(ctx.options.max_sandboxes) +
            " sandboxes (--max-sandboxes): delete some first"));
  }
  int64_t own_max = caller.token->max_sandboxes.value_or(ctx.options.max_sandboxes_per_token);
  auto own = ctx.store.count_sandboxes(caller.owner);
  if (!own) return res->reply(store_error(own.error()));
  if (*own >= own_max) {
    return res->reply(HttpResponse::error_code(
        429, "limit_reached",
        "the token \"" + caller.owner + "\" holds its maximum of " + std::to_string(own_max) +
            " sandboxes (max_sandboxes, or the server's --max-sandboxes-per-token): delete some first"));
  }
  auto candidates = ctx.store.sandbox_agents(now - kSandboxAgentLostMs);
  if (!candidates) return res->reply(store_error(candidates.error()));
  auto agent = place(*candidates, c.agent_labels);
  if (!agent) {
    std::string why = c.agent_labels.empty() ? "" : " with the labels in agent_labels";
    return res->reply(HttpResponse::error_code(
        503, "sandbox_unavailable",
        "no agent" + why + " can host a sandbox: start one with --sandbox-slots (and --label), or "
        "free a slot"));
  }

  auto id = new_sandbox_id();
  if (!id) return res->reply(HttpResponse::error(500, id.error().message));
  c.spec.id = *id;
  c.spec.owner = caller.owner;
  c.spec.timers = {c.ttl.sleep_after_ms, c.ttl.stop_after_ms, c.ttl.keep_alive};
  SandboxRecord row;
  row.id = *id;
  row.owner = caller.owner;
  row.name = c.spec.name;
  row.agent_id = agent->agent_id;
  row.spec = json::serialize(protocol::to_json(c.spec));
  row.labels = c.spec.labels;
  row.created_at = row.last_active_at = now;
  row.ttl_ms = c.ttl.ttl_ms;
  if (row.ttl_ms > 0) row.expires_at = now + row.ttl_ms;
  row.sleep_after_ms = c.ttl.sleep_after_ms;
  row.stop_after_ms = c.ttl.stop_after_ms;
  row.keep_alive = c.ttl.keep_alive;
  row.idempotency_key = key;
  auto inserted = ctx.store.insert_sandbox(row);
  if (!inserted) return res->reply(store_error(inserted.error()));
  if (!*inserted) {
    // A concurrent create of the same name or key won the unique index: answer as it will.
    return res->reply(HttpResponse::error_code(
        409, "exists",
        "a sandbox with this name or Idempotency-Key is being created right now: try again", "name"));
  }
  std::string agent_name;
  if (auto r = ctx.store.agent(agent->agent_id); r && *r) agent_name = (*r)->name;
  calls.call(*agent, caller.owner, "POST", "/agent/v1/sandboxes", json::serialize(protocol::to_json(c.spec)),
             kAgentCallTimeout,
             [&ctx, res, row, agent = *agent, agent_name](const boost::system::error_code& ec,
                                                          HttpReply reply) mutable {
               std::optional<protocol::SandboxReport> report;
               if (!ec && reply.status == 201) {
                 if (auto body = protocol::parse_json(reply.body); body) {
                   if (auto r = protocol::sandbox_report_from_json(*body); r) report = *r;
                 }
               }
               if (!report) {
                 (void)ctx.store.delete_sandbox(row.id);
                 return res->reply(agent_failure(ec, reply, agent));
               }
               row.state = report->state.empty() ? "running" : report->state;
               row.create_ms = report->create_ms;
               row.error = report->error;
               json::array ports;
               for (const auto& p : report->ports) ports.push_back(protocol::to_json(p));
               row.ports = json::serialize(ports);
               if (report->last_active_at > 0) row.last_active_at = report->last_active_at;
               auto updated = ctx.store.update_sandbox(row);
               if (!updated) return res->reply(store_error(updated.error()));
               res->reply(HttpResponse::json(201, to_api_json(row, agent, agent_name, now_ms())));
             });
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
  AgentCache agents(ctx);
  json::array out;
  std::string next;
  for (;;) {
    auto page = ctx.store.sandboxes(q);
    if (!page) return res->reply(store_error(page.error()));
    for (const auto& s : *page) {
      json::value j = agents.json_of(s, now);
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
  AgentCache agents(ctx);
  res->reply(HttpResponse::json(200, agents.json_of(std::get<SandboxRecord>(found), now_ms())));
}

void patch(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto caller_or = sandbox_caller(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&caller_or)) return res->reply(std::move(*refused));
  auto found = owned_sandbox(ctx, std::get<SandboxCaller>(caller_or), req.params["id"]);
  if (auto* refused = std::get_if<HttpResponse>(&found)) return res->reply(std::move(*refused));
  SandboxRecord s = std::get<SandboxRecord>(found);
  auto body = protocol::parse_json(req.body());
  if (!body) return res->reply(bad("the body is not JSON: " + body.error().message));
  if (!body->is_object()) return res->reply(bad("the body must be a JSON object"));
  protocol::JsonReader reader(*body);
  reader.known({"ttl_ms", "sleep_after_ms", "stop_after_ms", "keep_alive", "labels"});
  reader.optional("keep_alive", s.keep_alive).optional("labels", s.labels);
  if (!reader.ok()) return res->reply(bad(reader.error().message, reader.error_field()));
  const auto& o = body->as_object();
  if (auto refused = check_labels(s.labels)) return res->reply(std::move(*refused));
  if (auto refused = read_ms(o, "sleep_after_ms", s.sleep_after_ms)) return res->reply(std::move(*refused));
  if (auto refused = read_ms(o, "stop_after_ms", s.stop_after_ms)) return res->reply(std::move(*refused));
  if (o.contains("ttl_ms") && !o.at("ttl_ms").is_null()) {
    if (auto refused = read_ms(o, "ttl_ms", s.ttl_ms)) return res->reply(std::move(*refused));
    if (auto refused = check_ttl(ctx, s.ttl_ms)) return res->reply(std::move(*refused));
    // The TTL counts from creation, as on create.
    s.expires_at = s.ttl_ms > 0 ? std::optional<UnixMillis>(s.created_at + s.ttl_ms) : std::nullopt;
  }
  auto updated = ctx.store.update_sandbox(s);
  if (!updated) return res->reply(store_error(updated.error()));
  if (!*updated) return res->reply(HttpResponse::error_code(404, "sandbox_not_found", "no such sandbox: " + s.id));
  AgentCache agents(ctx);
  res->reply(HttpResponse::json(200, agents.json_of(s, now_ms())));
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
             kAgentCallTimeout,
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
                          UnixMillis now) {
  if (s.state == "creating" || s.state == "error") return s.state;
  if (!agent || now - agent->synced_at > kSandboxAgentLostMs) return "lost";
  return s.state;
}

void add_sandbox_routes(Router& router, ApiContext& ctx, SandboxAgentCalls& agents) {
  RouteOptions small;
  small.body_limit = 1 << 20;
  router.add(http::verb::post, "/api/v1/sandboxes",
             [&ctx, &agents](HttpRequest& req, std::shared_ptr<Responder> res) {
               create(ctx, agents, req, std::move(res));
             },
             small);
  router.add(http::verb::get, "/api/v1/sandboxes",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { list(ctx, req, std::move(res)); });
  router.add(http::verb::get, "/api/v1/sandboxes/{id}",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { get(ctx, req, std::move(res)); });
  router.add(http::verb::patch, "/api/v1/sandboxes/{id}",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { patch(ctx, req, std::move(res)); },
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
                 kAgentCallTimeout, [](const boost::system::error_code&, HttpReply) {});
    }
  }
  return removed;
}

}  // namespace boxcar::server
