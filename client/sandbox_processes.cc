#include "client/sandbox_processes.h"

#include <boost/json.hpp>

#include "base/url.h"
#include "client/answer_fields.h"
#include "client/sandbox_client.h"
#include "client/sse_parser.h"

namespace boxcar::client {

namespace json = boost::json;

namespace {

Result<SessionInfo> session_of(Result<json::value> answer) {
  if (!answer) return answer.error();
  if (!answer->is_object()) return Error{"the server's session is not a JSON object", 0, ErrorCode::unavailable};
  SessionInfo s;
  s.id = text_field(answer->as_object(), "id");
  s.cwd = text_field(answer->as_object(), "cwd");
  s.raw = answer->as_object();
  return s;
}

// The array under `key` of a listing answer.
Result<const json::array*> listed(const json::value& answer, const char* key) {
  if (answer.is_object()) {
    if (auto* a = answer.as_object().if_contains(key); a && a->is_array()) return &a->as_array();
  }
  if (answer.is_array()) return &answer.as_array();
  return Error{std::string("the server's listing has no \"") + key + "\" array", 0, ErrorCode::unavailable};
}

json::object env_object(const std::map<std::string, std::optional<std::string>>& env) {
  json::object out;
  for (const auto& [k, v] : env) {
    if (v) {
      out[k] = *v;
    } else {
      out[k] = nullptr;
    }
  }
  return out;
}

}  // namespace

Result<SessionInfo> Sessions::create(const std::string& id, const std::map<std::string, std::string>& env,
                                     const std::string& cwd) {
  json::object body;
  if (!id.empty()) body["id"] = id;
  if (!env.empty()) {
    json::object e;
    for (const auto& [k, v] : env) e[k] = v;
    body["env"] = std::move(e);
  }
  if (!cwd.empty()) body["cwd"] = cwd;
  return session_of(api_->call_json("POST", sandbox_path(sandbox_) + "/sessions", body));
}

Result<std::vector<SessionInfo>> Sessions::list() {
  auto answer = api_->call_json("GET", sandbox_path(sandbox_) + "/sessions");
  if (!answer) return answer.error();
  auto items = listed(*answer, "sessions");
  if (!items) return items.error();
  std::vector<SessionInfo> out;
  for (const auto& item : **items) {
    auto s = session_of(item);
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

Result<SessionInfo> Sessions::get(const std::string& id) {
  return session_of(api_->call_json("GET", sandbox_path(sandbox_) + "/sessions/" + percent_encode(id, false)));
}

Result<SessionInfo> Sessions::patch(const std::string& id,
                                    const std::map<std::string, std::optional<std::string>>& env,
                                    const std::string& cwd) {
  json::object body;
  if (!env.empty()) body["env"] = env_object(env);
  if (!cwd.empty()) body["cwd"] = cwd;
  return session_of(
      api_->call_json("PATCH", sandbox_path(sandbox_) + "/sessions/" + percent_encode(id, false), body));
}

Status Sessions::remove(const std::string& id, bool kill_processes) {
  auto answer = api_->call("DELETE", sandbox_path(sandbox_) + "/sessions/" + percent_encode(id, false) +
                                         (kill_processes ? "?kill=1" : ""));
  if (!answer) return answer.error();
  return {};
}

Result<ProcessInfo> process_info_from_json(const json::value& v) {
  if (!v.is_object()) return Error{"the server's process is not a JSON object", 0, ErrorCode::unavailable};
  const auto& o = v.as_object();
  ProcessInfo p;
  p.id = text_field(o, "id");
  if (p.id.empty()) return Error{"the server's process has no id", 0, ErrorCode::unavailable};
  p.status = text_field(o, "status");
  p.pid = int_field(o, "pid").value_or(0);
  if (auto c = int_field(o, "exit_code")) p.exit_code = static_cast<int>(*c);
  p.signal = signal_field(o);
  p.raw = o;
  return p;
}

std::string Processes::path(const std::string& id) const {
  std::string p = sandbox_path(sandbox_) + "/processes";
  if (!id.empty()) p += "/" + percent_encode(id, false);
  return p;
}

Result<ProcessInfo> Processes::start(const ProcessSpec& spec) {
  json::object body = exec_body(spec.command, spec.options);
  body.erase("stdin");  // a process's stdin is "pipe" or nothing: write_stdin() feeds it
  body.erase("stdin_b64");
  if (!spec.id.empty()) body["id"] = spec.id;
  if (spec.stdin_pipe) body["stdin"] = "pipe";
  auto answer = api_->call_json("POST", path(), body);
  if (!answer) return answer.error();
  return process_info_from_json(*answer);
}

Result<std::vector<ProcessInfo>> Processes::list() {
  auto answer = api_->call_json("GET", path());
  if (!answer) return answer.error();
  auto items = listed(*answer, "processes");
  if (!items) return items.error();
  std::vector<ProcessInfo> out;
  for (const auto& item : **items) {
    auto p = process_info_from_json(item);
    if (!p) return p.error();
    out.push_back(std::move(*p));
  }
  return out;
}

Result<ProcessInfo> Processes::get(const std::string& id) {
  auto answer = api_->call_json("GET", path(id));
  if (!answer) return answer.error();
  return process_info_from_json(*answer);
}

Result<std::string> Processes::logs(const std::string& id, uint64_t offset) {
  return api_->call("GET", path(id) + "/logs?offset=" + std::to_string(offset));
}

Status Processes::follow(const std::string& id, uint64_t offset,
                         const std::function<bool(const OutputEvent&)>& on_event) {
  SseParser parser;
  std::optional<Error> bad;
  auto handle = [&](const SseEvent& sse) {
    auto event = output_event_from_json(sse.event, sse.id, sse.data);
    if (!event) {
      bad = event.error();
      return false;
    }
    return on_event(*event);
  };
  Status st = api_->stream("GET", path(id) + "/logs?follow=1&offset=" + std::to_string(offset), "",
                           [&](std::string_view piece) {
                             Status fed = parser.feed(piece, handle);
                             if (!fed) bad = fed.error();
                             return fed.ok() && !parser.stopped();
                           });
  if (bad) return *bad;
  return st;
}

Result<uint64_t> Processes::write_stdin(const std::string& id, std::string data, bool eof) {
  auto answer = api_->call("POST", path(id) + "/stdin" + (eof ? "?eof=1" : ""), std::move(data),
                           "application/octet-stream");
  if (!answer) return answer.error();
  boost::system::error_code ec;
  auto v = json::parse(*answer, ec);
  if (ec || !v.is_object()) return uint64_t{0};
  return static_cast<uint64_t>(int_field(v.as_object(), "written").value_or(0));
}

Status Processes::signal(const std::string& id, const std::string& signal, bool tree) {
  json::object body;
  // A number goes as a number, a name as it is: the server reads both.
  if (!signal.empty() && signal.find_first_not_of("0123456789") == std::string::npos && signal.size() < 4) {
    body["signal"] = std::stoi(signal);
  } else {
    body["signal"] = signal;
  }
  body["scope"] = tree ? "tree" : "leader";
  auto answer = api_->call_json("POST", path(id) + "/signal", body);
  if (!answer) return answer.error();
  return {};
}

Result<ProcessInfo> Processes::kill(const std::string& id, std::optional<std::chrono::milliseconds> grace) {
  std::string target = path(id);
  if (grace) target += "?grace_ms=" + std::to_string(grace->count());
  auto answer = api_->call_json("DELETE", target);
  if (!answer) return answer.error();
  return process_info_from_json(*answer);
}

Result<WaitResult> Processes::wait(const std::string& id, const WaitSpec& spec) {
  json::object body;
  body["for"] = spec.for_what;
  if (spec.for_what == "log") body["pattern"] = spec.pattern;
  if (spec.for_what == "port") {
    body["port"] = spec.port;
    if (!spec.http.empty()) body["http"] = spec.http;
  }
  body["timeout_ms"] = spec.timeout.count();
  auto answer = api_->call_json("POST", path(id) + "/wait", body);
  if (!answer) return answer.error();
  if (!answer->is_object()) return Error{"the server's wait answer is not a JSON object", 0, ErrorCode::unavailable};
  const auto& o = answer->as_object();
  WaitResult r;
  r.met = bool_field(o, "met");
  r.reason = text_field(o, "reason");
  r.line = text_field(o, "line");
  if (auto c = int_field(o, "exit_code")) r.exit_code = static_cast<int>(*c);
  r.raw = o;
  return r;
}

}  // namespace boxcar::client
