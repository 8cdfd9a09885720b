#include "protocol/sandbox_api.h"

#include <boost/json.hpp>

#include "protocol/json_reader.h"

namespace boxcar::protocol {

namespace json = boost::json;

namespace {

json::object string_map(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

// Reads an array field of objects with `each`; an Error names the element.
template <typename T, typename F>
Status read_list(JsonReader& in, std::string_view key, std::vector<T>& out, F each) {
  const json::value* list = in.field(key, false);
  if (!in.ok()) return in.error();
  if (list == nullptr) return {};
  if (!list->is_array()) return Error{"\"" + in.name(key) + "\": expected an array, got " + json_kind(*list)};
  for (const auto& item : list->get_array()) {
    auto r = each(item);
    if (!r.ok()) return Error{in.name(key) + "[" + std::to_string(out.size()) + "]: " + r.error().message};
    out.push_back(std::move(*r));
  }
  return {};
}

}  // namespace

bool valid_sandbox_id(std::string_view id) {
  if (id.size() != 12) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
  }
  return true;
}

json::value to_json(const SandboxResources& r) {
  return {{"memory_bytes", r.memory_bytes}, {"cpu_millis", r.cpu_millis}, {"pids", r.pids},
          {"tmp_bytes", r.tmp_bytes}, {"disk_bytes", r.disk_bytes}};
}

json::value to_json(const SandboxTimers& t) {
  return {{"sleep_after_ms", t.sleep_after_ms}, {"stop_after_ms", t.stop_after_ms}, {"keep_alive", t.keep_alive}};
}

json::value to_json(const SandboxCreate& c) {
  json::array egress;
  for (const auto& e : c.egress) egress.push_back(json::string(e));
  return {{"id", c.id},          {"owner", c.owner},     {"name", c.name},
          {"image", c.image},    {"resources", to_json(c.resources)},
          {"env", string_map(c.env)}, {"cwd", c.cwd}, {"network", c.network},
          {"egress", std::move(egress)}, {"labels", string_map(c.labels)},
          {"timers", to_json(c.timers)}};
}

json::value to_json(const SandboxPort& p) {
  return {{"port", p.port}, {"name", p.name}, {"url", p.url}, {"path_url", p.path_url}, {"token", p.token}};
}

json::value to_json(const SandboxReport& r) {
  json::array ports;
  for (const auto& p : r.ports) ports.push_back(to_json(p));
  json::object o{{"id", r.id}, {"state", r.state}, {"last_active_at", r.last_active_at},
                 {"create_ms", r.create_ms}, {"ports", std::move(ports)}};
  if (!r.error.empty()) o["error"] = r.error;
  return o;
}

json::value to_json(const SandboxSync& s) {
  json::array list;
  for (const auto& r : s.sandboxes) list.push_back(to_json(r));
  return {{"endpoint", s.endpoint}, {"key", s.key}, {"slots_free", s.slots_free},
          {"memory_free_bytes", s.memory_free_bytes}, {"sandboxes", std::move(list)}};
}

json::value to_json(const SandboxSyncAnswer& a) {
  json::array deleted;
  for (const auto& id : a.deleted) deleted.push_back(json::string(id));
  return {{"deleted", std::move(deleted)}};
}

namespace {

// A meta.json written before timers existed has none: the defaults.
Status read_timers(JsonReader& in, SandboxTimers& t) {
  in.optional("sleep_after_ms", t.sleep_after_ms).optional("stop_after_ms", t.stop_after_ms);
  in.optional("keep_alive", t.keep_alive);
  if (!in.ok()) return in.error();
  for (auto [name, ms] : {std::pair{"sleep_after_ms", t.sleep_after_ms}, std::pair{"stop_after_ms", t.stop_after_ms}}) {
    if (ms < 0 || ms > kMaxSandboxMs) {
      return Error{"\"" + std::string(name) + "\": must be from 0 to " + std::to_string(kMaxSandboxMs) + " (366 days)"};
    }
  }
  return {};
}

}  // namespace

Result<SandboxTimers> sandbox_timers_from_json(const json::value& v) {
  SandboxTimers t;
  JsonReader in(v);
  if (Status s = read_timers(in, t); !s.ok()) return s.error();
  return t;
}

Result<SandboxCreate> sandbox_create_from_json(const json::value& v) {
  SandboxCreate c;
  JsonReader in(v);
  in.required("id", c.id).required("owner", c.owner).optional("name", c.name).optional("image", c.image);
  in.optional("env", c.env).optional("cwd", c.cwd).optional("network", c.network);
  in.optional("egress", c.egress).optional("labels", c.labels);
  if (const json::value* r = in.field("resources", false)) {
    JsonReader res(*r, "resources");
    res.optional("memory_bytes", c.resources.memory_bytes).optional("cpu_millis", c.resources.cpu_millis);
    res.optional("pids", c.resources.pids).optional("tmp_bytes", c.resources.tmp_bytes);
    res.optional("disk_bytes", c.resources.disk_bytes);
    if (!res.ok()) return res.error();
  }
  if (const json::value* t = in.field("timers", false)) {
    JsonReader tin(*t, "timers");
    if (Status s = read_timers(tin, c.timers); !s.ok()) return s.error();
  }
  if (!in.ok()) return in.error();
  if (!valid_sandbox_id(c.id)) return Error{"\"id\": not a sandbox id ([a-z2-7]{12})"};
  if (c.owner.empty()) return Error{"\"owner\": must not be empty"};
  if (c.network != "job" && c.network != "none") return Error{"\"network\": must be \"job\" or \"none\""};
  return c;
}

Result<SandboxReport> sandbox_report_from_json(const json::value& v) {
  SandboxReport r;
  JsonReader in(v);
  in.required("id", r.id).required("state", r.state).optional("last_active_at", r.last_active_at);
  in.optional("create_ms", r.create_ms).optional("error", r.error);
  Status ports = read_list(in, "ports", r.ports, [](const json::value& item) -> Result<SandboxPort> {
    SandboxPort p;
    JsonReader pin(item);
    pin.required("port", p.port).optional("name", p.name).optional("url", p.url);
    pin.optional("path_url", p.path_url).optional("token", p.token);
    if (!pin.ok()) return pin.error();
    if (p.port < 1 || p.port > 65535) return Error{"\"port\": must be 1-65535"};
    return p;
  });
  if (!ports.ok()) return ports.error();
  if (!in.ok()) return in.error();
  if (!valid_sandbox_id(r.id)) return Error{"\"id\": not a sandbox id ([a-z2-7]{12})"};
  return r;
}

Result<SandboxSync> sandbox_sync_from_json(const json::value& v) {
  SandboxSync s;
  JsonReader in(v);
  in.required("endpoint", s.endpoint).required("key", s.key).optional("slots_free", s.slots_free);
  in.optional("memory_free_bytes", s.memory_free_bytes);
  if (!in.ok()) return in.error();
  Status list = read_list(in, "sandboxes", s.sandboxes, [](const json::value& item) { return sandbox_report_from_json(item); });
  if (!list.ok()) return list.error();
  return s;
}

Result<SandboxSyncAnswer> sandbox_sync_answer_from_json(const json::value& v) {
  SandboxSyncAnswer a;
  JsonReader in(v);
  in.optional("deleted", a.deleted);
  if (!in.ok()) return in.error();
  return a;
}

}  // namespace boxcar::protocol
