#include "client/sandbox_client.h"

#include <boost/json.hpp>

#include "base/base64.h"
#include "base/url.h"
#include "base/utf8.h"
#include "client/answer_fields.h"
#include "client/sse_parser.h"

namespace boxcar::client {

namespace json = boost::json;

std::string sandbox_path(const std::string& id) {
  return "/api/v1/sandboxes/" + percent_encode(id, /*keep_slash=*/false);
}

json::object create_body(const CreateOptions& o) {
  json::object body;
  if (!o.name.empty()) body["name"] = o.name;
  if (o.reuse) body["reuse"] = true;
  json::object resources;
  auto size = [&](const char* key, const std::string& value) {
    if (!value.empty()) resources[key] = value;
  };
  size("memory", o.memory);
  if (o.cpus) resources["cpus"] = *o.cpus;
  if (o.pids) resources["pids"] = *o.pids;
  size("tmp", o.tmp);
  size("disk", o.disk);
  if (!resources.empty()) body["resources"] = std::move(resources);
  if (o.ttl) body["ttl_ms"] = o.ttl->count();
  auto map = [](const std::map<std::string, std::string>& m) {
    json::object out;
    for (const auto& [k, v] : m) out[k] = v;
    return out;
  };
  if (!o.labels.empty()) body["labels"] = map(o.labels);
  if (!o.env.empty()) body["env"] = map(o.env);
  if (!o.network.empty()) body["network"] = o.network;
  return body;
}

json::object exec_body(const Command& command, const ExecOptions& o) {
  json::object body;
  if (!command.shell.empty()) {
    body["command"] = command.shell;
  } else {
    json::array argv;
    for (const auto& a : command.argv) argv.emplace_back(a);
    body["argv"] = std::move(argv);
  }
  if (!o.cwd.empty()) body["cwd"] = o.cwd;
  if (!o.env.empty()) {
    json::object env;
    for (const auto& [k, v] : o.env) {
      if (v) {
        env[k] = *v;
      } else {
        env[k] = nullptr;
      }
    }
    body["env"] = std::move(env);
  }
  if (o.session) body["session"] = *o.session;
  // JSON carries text: bytes that are not UTF-8 go base64-encoded.
  if (o.stdin_data && is_valid_utf8(*o.stdin_data)) body["stdin"] = *o.stdin_data;
  if (o.stdin_data && !is_valid_utf8(*o.stdin_data)) body["stdin_b64"] = base64_encode(*o.stdin_data);
  if (o.timeout) body["timeout_ms"] = o.timeout->count();
  if (o.grace) body["grace_ms"] = o.grace->count();
  if (!o.max_output.empty()) body["max_output"] = o.max_output;
  return body;
}

Result<std::unique_ptr<SandboxClient>> SandboxClient::connect(const std::string& server, std::string token,
                                                              const ConnectOptions& options) {
  auto api = ApiConnection::open(server, std::move(token), options);
  if (!api) return api.error();
  return std::make_unique<SandboxClient>(std::move(*api));
}

namespace {

Result<Sandbox> sandbox_of(const std::shared_ptr<ApiConnection>& api, Result<json::value> answer) {
  if (!answer) return answer.error();
  auto info = sandbox_info_from_json(*answer);
  if (!info) return info.error();
  return Sandbox(api, std::move(*info));
}

}  // namespace

Result<Sandbox> SandboxClient::create(const CreateOptions& options) {
  HttpHeaders headers;
  if (!options.idempotency_key.empty()) headers.emplace_back("Idempotency-Key", options.idempotency_key);
  return sandbox_of(api_, api_->call_json("POST", "/api/v1/sandboxes", create_body(options), headers));
}

Result<std::vector<SandboxInfo>> SandboxClient::list(const ListFilter& filter) {
  std::string query;
  auto add = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    query += (query.empty() ? "?" : "&") + std::string(key) + "=" + percent_encode(value, false);
  };
  add("state", filter.state);
  add("name", filter.name);
  for (const auto& l : filter.labels) add("label", l);
  std::vector<SandboxInfo> out;
  std::string cursor;
  // Pages until the server says there are no more (bounded: a server that never ends it stops
  // at 1,000 pages).
  for (int page = 0; page < 1000; ++page) {
    std::string target = "/api/v1/sandboxes" + query;
    if (!cursor.empty()) target += (query.empty() ? "?" : "&") + std::string("cursor=") + percent_encode(cursor, false);
    auto answer = api_->call_json("GET", target);
    if (!answer) return answer.error();
    const json::array* items = nullptr;
    if (answer->is_object()) {
      if (auto* a = answer->as_object().if_contains("sandboxes"); a && a->is_array()) items = &a->as_array();
    }
    if (!items) return Error{"the server's sandbox list has no \"sandboxes\" array", 0, ErrorCode::unavailable};
    for (const auto& item : *items) {
      auto info = sandbox_info_from_json(item);
      if (!info) return info.error();
      out.push_back(std::move(*info));
    }
    cursor = text_field(answer->as_object(), "next_cursor");
    if (cursor.empty()) break;
  }
  return out;
}

Result<SandboxInfo> Sandbox::pause() const {
  auto answer = api_->call_json("POST", sandbox_path(id()) + "/pause");
  if (!answer) return answer.error();
  return sandbox_info_from_json(*answer);
}

Result<SandboxInfo> Sandbox::resume() const {
  auto answer = api_->call_json("POST", sandbox_path(id()) + "/resume");
  if (!answer) return answer.error();
  return sandbox_info_from_json(*answer);
}

Result<SandboxInfo> Sandbox::stop() const {
  auto answer = api_->call_json("POST", sandbox_path(id()) + "/stop");
  if (!answer) return answer.error();
  return sandbox_info_from_json(*answer);
}

Result<SandboxMetrics> Sandbox::metrics() const {
  auto answer = api_->call_json("GET", sandbox_path(id()) + "/metrics");
  if (!answer) return answer.error();
  if (!answer->is_object()) return Error{"the server's metrics are not an object", 0, ErrorCode::unavailable};
  const json::object& o = answer->as_object();
  SandboxMetrics m;
  m.cpu_ms = int_field(o, "cpu_ms").value_or(0);
  m.memory_bytes = int_field(o, "memory_bytes").value_or(0);
  m.memory_peak_bytes = int_field(o, "memory_peak_bytes").value_or(0);
  m.pids = int_field(o, "pids").value_or(0);
  m.disk_bytes = int_field(o, "disk_bytes").value_or(0);
  m.oom_kills = int_field(o, "oom_kills").value_or(0);
  m.processes = int_field(o, "processes").value_or(0);
  m.raw = o;
  return m;
}

Result<Sandbox> SandboxClient::get(const std::string& id) {
  return sandbox_of(api_, api_->call_json("GET", sandbox_path(id)));
}

Result<Sandbox> SandboxClient::patch(const std::string& id, const PatchOptions& options) {
  json::object body;
  if (options.ttl) body["ttl_ms"] = options.ttl->count();
  if (options.keep_alive) body["keep_alive"] = *options.keep_alive;
  if (!options.labels.empty()) {
    json::object labels;
    for (const auto& [k, v] : options.labels) {
      if (v) {
        labels[k] = *v;
      } else {
        labels[k] = nullptr;
      }
    }
    body["labels"] = std::move(labels);
  }
  return sandbox_of(api_, api_->call_json("PATCH", sandbox_path(id), body));
}

Status SandboxClient::remove(const std::string& id) {
  auto answer = api_->call("DELETE", sandbox_path(id));
  if (!answer) return answer.error();
  return {};
}

Sandbox SandboxClient::sandbox(const std::string& id) const {
  SandboxInfo info;
  info.id = id;
  return Sandbox(api_, std::move(info));
}

Result<ExecResult> Sandbox::exec(const Command& command, const ExecOptions& options) const {
  auto answer = api_->call_json("POST", sandbox_path(info_.id) + "/exec", exec_body(command, options));
  if (!answer) return answer.error();
  return exec_result_from_json(*answer);
}

Result<ExecResult> Sandbox::exec_stream(const Command& command, const ExecOptions& options,
                                        const std::function<bool(const OutputEvent&)>& on_event) const {
  json::object body = exec_body(command, options);
  body["stream"] = true;
  SseParser parser;
  std::optional<ExecResult> exit;
  std::optional<Error> bad;
  auto handle = [&](const SseEvent& sse) {
    auto event = output_event_from_json(sse.event, sse.id, sse.data);
    if (!event) {
      bad = event.error();
      return false;
    }
    if (event->kind == "exit") {
      auto r = exec_result_from_json(event->raw);
      if (!r) {
        bad = r.error();
        return false;
      }
      exit = std::move(*r);
    } else if (event->kind == "error") {
      bad = Error{text_field(event->raw, "error"), 0, ErrorCode::unavailable};
      return false;
    }
    return on_event(*event);
  };
  Status st = api_->stream("POST", sandbox_path(info_.id) + "/exec", json::serialize(body),
                           [&](std::string_view piece) {
                             Status fed = parser.feed(piece, handle);
                             if (!fed) bad = fed.error();
                             return fed.ok() && !parser.stopped();
                           });
  if (bad) return *bad;
  if (!st) return st.error();
  if (!exit) {
    return Error{"the exec stream ended without an exit event (the server or the connection broke)", 0,
                 ErrorCode::unavailable};
  }
  return std::move(*exit);
}

}  // namespace boxcar::client
