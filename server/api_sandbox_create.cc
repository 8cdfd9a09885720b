// POST /api/v1/sandboxes: the body checked, the name and Idempotency-Key honoured, the limits,
// placement on an agent, the row inserted as `creating`, then the agent's create.
#include <algorithm>
#include <cmath>

#include <boost/json.hpp>

#include "base/random_token.h"
#include "base/size.h"
#include "protocol/json_reader.h"
#include "protocol/sandbox_api.h"
#include "server/api_sandboxes.h"
#include "server/sandbox_fields.h"
#include "server/sandbox_json.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

constexpr UnixMillis kIdempotencyWindowMs = 24LL * 3600 * 1000;
constexpr size_t kMaxEnv = 256, kMaxAgentLabels = 16;
constexpr size_t kMaxKey = 128, kMaxEnvValue = 32 << 10;

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
  return sandbox_bad_request(message, field);
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

struct TtlSettings {
  int64_t ttl_ms = 0, sleep_after_ms = 600'000, stop_after_ms = 3'600'000;
  bool keep_alive = false;
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
  if (!c.spec.name.empty() && !valid_sandbox_name(c.spec.name)) {
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
  if (auto refused = check_sandbox_labels(c.spec.labels)) return *refused;
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
    if (auto refused = read_sandbox_ms(o, field, *out)) return *refused;
  }
  if (auto refused = check_sandbox_ttl(ctx, c.ttl.ttl_ms)) return *refused;
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

}  // namespace

void create_sandbox(ApiContext& ctx, SandboxAgentCalls& calls, HttpRequest& req,
                    std::shared_ptr<Responder> res) {
  auto caller_or = sandbox_caller(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&caller_or)) return res->reply(std::move(*refused));
  SandboxCaller caller = std::get<SandboxCaller>(caller_or);
  auto parsed = parse_create(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&parsed)) return res->reply(std::move(*refused));
  CreateRequest c = std::move(std::get<CreateRequest>(parsed));
  UnixMillis now = now_ms();
  SandboxJson agents(ctx);

  std::string key = req.header("Idempotency-Key");
  if (key.size() > 256) return res->reply(bad("Idempotency-Key: longer than 256 bytes", "Idempotency-Key"));
  if (!key.empty()) {
    auto earlier = ctx.store.sandbox_by_key(caller.owner, key);
    if (!earlier) return res->reply(store_error(earlier.error()));
    if (*earlier && now - (*earlier)->created_at < kIdempotencyWindowMs) {
      return res->reply(HttpResponse::json(201, agents.of(**earlier, now)));
    }
    if (*earlier) key.clear();  // past the window: a new request that records no key
  }
  if (!c.spec.name.empty()) {
    auto named = ctx.store.sandbox_named(caller.owner, c.spec.name);
    if (!named) return res->reply(store_error(named.error()));
    if (*named) {
      if (c.reuse) return res->reply(HttpResponse::json(200, agents.of(**named, now)));
      return res->reply(HttpResponse::error_code(
          409, "exists",
          "name: this token already has a sandbox named \"" + c.spec.name + "\" (" + (*named)->id +
              "): pass \"reuse\": true to get it, or choose another name",
          "name"));
    }
  }
  auto candidates = ctx.store.sandbox_agents(now - ctx.options.sandbox_lost_after_ms);
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
  // The limits, the server's then the token's, are checked by the insert itself, so that
  // concurrent creates cannot all pass a count taken before any of them is written.
  int64_t own_max = caller.token->max_sandboxes.value_or(ctx.options.max_sandboxes_per_token);
  auto inserted = ctx.store.insert_sandbox(row, SandboxLimits{ctx.options.max_sandboxes, own_max});
  if (!inserted) return res->reply(store_error(inserted.error()));
  switch (*inserted) {
    case SandboxInsert::inserted:
      break;
    case SandboxInsert::exists:
      // A concurrent create of the same name or key won the unique index: answer as it will.
      return res->reply(HttpResponse::error_code(
          409, "exists",
          "a sandbox with this name or Idempotency-Key is being created right now: try again", "name"));
    case SandboxInsert::server_full:
      return res->reply(HttpResponse::error_code(
          429, "limit_reached",
          "this server holds its maximum of " + std::to_string(ctx.options.max_sandboxes) +
              " sandboxes (--max-sandboxes): delete some first"));
    case SandboxInsert::owner_full:
      return res->reply(HttpResponse::error_code(
          429, "limit_reached",
          "the token \"" + caller.owner + "\" holds its maximum of " + std::to_string(own_max) +
              " sandboxes (max_sandboxes, or the server's --max-sandboxes-per-token): delete some first"));
  }
  std::string agent_name;
  if (auto r = ctx.store.agent(agent->agent_id); r && *r) agent_name = (*r)->name;
  calls.call(*agent, caller.owner, "POST", "/agent/v1/sandboxes", json::serialize(protocol::to_json(c.spec)),
             kSandboxAgentCallTimeout,
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
                 return res->reply(sandbox_agent_failure(
                     ec, reply, agent,
                     "could not create the sandbox (try again; the server places it on another agent if one can host it)"));
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
               res->reply(HttpResponse::json(201, sandbox_json(row, agent, agent_name, now_ms(), ctx.options.sandbox_lost_after_ms)));
             });
}

}  // namespace boxcar::server
