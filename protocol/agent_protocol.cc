#include "protocol/agent_protocol.h"

#include <algorithm>
#include <cctype>

#include <boost/json.hpp>

#include "base/base64.h"
#include "base/run_state.h"
#include "base/utf8.h"

namespace boxcar::protocol {

namespace json = boost::json;

namespace {

template <typename T>
Result<T> finish(JsonReader& r, T value) {
  if (!r.ok()) return r.error();
  return value;
}

json::value optional_int(const std::optional<int64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object string_map(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

Result<LogChunkWire> chunk_from_json(const json::value& v, const std::string& path) {
  LogChunkWire c;
  JsonReader in(v, path);
  in.required("step", c.step).required("seq", c.seq);
  in.optional("attempt", c.attempt);
  if (in.ok() && c.seq < 0) in.fail("\"" + in.name("seq") + "\": must not be negative");
  std::optional<std::string> encoded;
  in.optional("data_base64", encoded);
  if (!encoded) {
    in.required("data", c.data);
  } else if (in.ok()) {
    if (in.field("data", false)) {
      in.fail("\"" + in.name("data") + "\" and \"" + in.name("data_base64") + "\": send one, not both");
    } else if (auto bytes = base64_decode(*encoded)) {
      c.data = std::move(*bytes);
    } else {
      in.fail("\"" + in.name("data_base64") + "\": not base64 (RFC 4648, padded)");
    }
  }
  return finish(in, std::move(c));
}

Result<PreviewWire> preview_from_json(const json::value& v, const std::string& path) {
  PreviewWire p;
  JsonReader in(v, path);
  in.required("step", p.step).required("name", p.name).required("port", p.port);
  in.required("url", p.url).required("path_url", p.path_url).optional("expires_at", p.expires_at);
  if (in.ok() && (p.port < 1 || p.port > 65535)) in.fail("\"" + in.name("port") + "\": must be 1-65535");
  return finish(in, std::move(p));
}

}  // namespace

bool is_agent_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

json::value to_json(const RegisterRequest& r) {
  return {{"name", r.name}, {"labels", strings(r.labels)}};
}

json::value to_json(const RegisterResponse& r) {
  return {{"agent_id", r.agent_id}, {"name", r.name}, {"credential", r.credential}};
}

json::value to_json(const ClaimRequest& r) {
  return {{"labels", strings(r.labels)}, {"wait_ms", r.wait_ms}};
}

json::value to_json(const JobSpec& j) {
  return {{"id", j.id},         {"attempt", j.attempt}, {"repo", j.repo},
          {"ref", j.ref},       {"commit", j.commit},   {"file", j.file},
          {"event", j.event},   {"env", string_map(j.env)}, {"lease_ms", j.lease_ms},
          {"lease_token", j.lease_token}, {"fork", j.fork},
          {"rerun_of", optional_int(j.rerun_of)}, {"previous_steps", string_map(j.previous_steps)}};
}

json::value to_json(const ClaimResponse& r) { return {{"job", to_json(r.job)}}; }

json::value to_json(const HeartbeatRequest&) { return json::object{}; }

json::value to_json(const HeartbeatResponse& r) { return {{"cancel", r.cancel}, {"lost", r.lost}}; }

json::value to_json(const LogChunkWire& c) {
  json::object o{{"step", c.step}, {"attempt", c.attempt}, {"seq", c.seq}};
  if (is_valid_utf8(c.data)) {
    o["data"] = c.data;
  } else {
    o["data_base64"] = base64_encode(c.data);
  }
  return o;
}

json::value to_json(const LogUpload& u) {
  json::array chunks;
  for (const auto& c : u.chunks) chunks.push_back(to_json(c));
  return {{"chunks", std::move(chunks)}};
}

json::value to_json(const StepUpdate& s) {
  json::object o{{"name", s.name}, {"state", s.state}, {"reason", s.reason}};
  o["exit_code"] = s.exit_code ? json::value(*s.exit_code) : json::value(nullptr);
  o["started_at"] = optional_int(s.started_at);
  o["finished_at"] = optional_int(s.finished_at);
  if (s.egress_refused) o["egress_refused"] = *s.egress_refused;
  if (!s.needs.empty()) o["needs"] = strings(s.needs);
  return o;
}

json::value to_json(const CompleteRequest& r) {
  return {{"state", r.state}, {"reason", r.reason}};
}

json::value to_json(const PipelineReport& r) {
  return {{"name", r.name}, {"cancel_superseded", r.cancel_superseded}};
}

json::value to_json(const PreviewWire& p) {
  return {{"step", p.step}, {"name", p.name}, {"port", p.port}, {"url", p.url},
          {"path_url", p.path_url}, {"expires_at", optional_int(p.expires_at)}};
}

json::value to_json(const PreviewSync& s) {
  json::array a;
  for (const auto& p : s.previews) a.push_back(to_json(p));
  return {{"previews", std::move(a)}};
}

json::value to_json(const PreviewSyncResponse& r) { return {{"close", r.close}}; }

json::value to_json(const SecretsRequest& r) {
  json::array names;
  for (const auto& n : r.names) names.emplace_back(n);
  return {{"names", std::move(names)}};
}

json::value to_json(const SecretsResponse& r) {
  json::array errors;
  for (const auto& e : r.errors) errors.emplace_back(e);
  return {{"secrets", string_map(r.secrets)}, {"fork", r.fork}, {"errors", std::move(errors)}};
}

template <>
Result<RegisterRequest> from_json(const json::value& v) {
  RegisterRequest r;
  JsonReader in(v);
  in.required("name", r.name).optional("labels", r.labels);
  if (in.ok() && !is_agent_name(r.name)) {
    in.fail("\"name\": \"" + r.name.substr(0, 64) +
            "\" is not an agent name (1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit)");
  }
  return finish(in, std::move(r));
}

template <>
Result<RegisterResponse> from_json(const json::value& v) {
  RegisterResponse r;
  JsonReader in(v);
  in.required("agent_id", r.agent_id).required("name", r.name).required("credential", r.credential);
  return finish(in, std::move(r));
}

template <>
Result<ClaimRequest> from_json(const json::value& v) {
  ClaimRequest r;
  JsonReader in(v);
  if (!v.is_object()) return Error{"the body: expected a JSON object, got " + json_kind(v)};
  in.optional("labels", r.labels).optional("wait_ms", r.wait_ms);
  if (in.ok() && r.wait_ms < 0) in.fail("\"wait_ms\": must not be negative");
  return finish(in, std::move(r));
}

template <>
Result<JobSpec> from_json(const json::value& v) {
  JobSpec j;
  JsonReader in(v, "job");
  in.required("id", j.id).required("repo", j.repo).optional("attempt", j.attempt);
  in.optional("ref", j.ref).optional("commit", j.commit).optional("file", j.file);
  in.optional("event", j.event).optional("env", j.env).optional("lease_ms", j.lease_ms);
  in.optional("lease_token", j.lease_token).optional("fork", j.fork);
  in.optional("rerun_of", j.rerun_of).optional("previous_steps", j.previous_steps);
  return finish(in, std::move(j));
}

template <>
Result<ClaimResponse> from_json(const json::value& v) {
  JsonReader in(v);
  const json::value* job = in.field("job", true);
  if (!in.ok()) return in.error();
  auto spec = from_json<JobSpec>(*job);
  if (!spec) return spec.error();
  return ClaimResponse{std::move(*spec)};
}

template <>
Result<HeartbeatRequest> from_json(const json::value& v) {
  if (!v.is_object()) return Error{"the body: expected a JSON object, got " + json_kind(v)};
  return HeartbeatRequest{};
}

template <>
Result<HeartbeatResponse> from_json(const json::value& v) {
  HeartbeatResponse r;
  JsonReader in(v);
  if (!v.is_object()) return Error{"the body: expected a JSON object, got " + json_kind(v)};
  in.optional("cancel", r.cancel).optional("lost", r.lost);
  return finish(in, r);
}

template <>
Result<LogChunkWire> from_json(const json::value& v) {
  return chunk_from_json(v, "");
}

template <>
Result<LogUpload> from_json(const json::value& v) {
  LogUpload u;
  JsonReader in(v);
  const json::value* chunks = in.field("chunks", true);
  if (!in.ok()) return in.error();
  if (!chunks->is_array()) {
    return Error{"\"chunks\": expected an array of chunks, got " + json_kind(*chunks)};
  }
  for (size_t i = 0; i < chunks->get_array().size(); ++i) {
    auto c = chunk_from_json(chunks->get_array()[i], "chunks[" + std::to_string(i) + "]");
    if (!c) return c.error();
    u.chunks.push_back(std::move(*c));
  }
  return u;
}

template <>
Result<StepUpdate> from_json(const json::value& v) {
  StepUpdate s;
  JsonReader in(v);
  in.required("name", s.name).required("state", s.state);
  in.optional("exit_code", s.exit_code).optional("started_at", s.started_at);
  in.optional("finished_at", s.finished_at).optional("reason", s.reason);
  in.optional("egress_refused", s.egress_refused).optional("needs", s.needs);
  if (in.ok() && s.egress_refused && *s.egress_refused < 0) in.fail("\"egress_refused\": must not be negative");
  if (in.ok() && s.needs.size() > kMaxStepNeeds) {
    in.fail("\"needs\": more than " + std::to_string(kMaxStepNeeds) + " names");
  }
  if (in.ok() && !parse_step_state(s.state)) {
    in.fail("\"state\": unknown step state \"" + s.state + "\" (one of " + step_state_names() +
            ")");
  }
  return finish(in, std::move(s));
}

template <>
Result<CompleteRequest> from_json(const json::value& v) {
  CompleteRequest r;
  JsonReader in(v);
  in.required("state", r.state).optional("reason", r.reason);
  if (in.ok() && !is_final_job_state(r.state)) {
    in.fail("\"state\": not a final job state: \"" + r.state + "\" (one of " +
            job_state_names(true) + ")");
  }
  return finish(in, std::move(r));
}

template <>
Result<PipelineReport> from_json(const json::value& v) {
  PipelineReport r;
  JsonReader in(v);
  in.optional("name", r.name).required("cancel_superseded", r.cancel_superseded);
  if (in.ok() && r.name.size() > kMaxPipelineName) {
    in.fail("\"name\": longer than " + std::to_string(kMaxPipelineName) + " bytes");
  }
  return finish(in, std::move(r));
}

template <>
Result<PreviewWire> from_json(const json::value& v) {
  return preview_from_json(v, "");
}

template <>
Result<PreviewSync> from_json(const json::value& v) {
  PreviewSync s;
  JsonReader in(v);
  const json::value* list = in.field("previews", true);
  if (!in.ok()) return in.error();
  if (!list->is_array()) {
    return Error{"\"previews\": expected an array of previews, got " + json_kind(*list)};
  }
  for (size_t i = 0; i < list->get_array().size(); ++i) {
    auto p = preview_from_json(list->get_array()[i], "previews[" + std::to_string(i) + "]");
    if (!p) return p.error();
    s.previews.push_back(std::move(*p));
  }
  return s;
}

template <>
Result<PreviewSyncResponse> from_json(const json::value& v) {
  PreviewSyncResponse r;
  if (!v.is_object()) return Error{"the body: expected a JSON object, got " + json_kind(v)};
  JsonReader in(v);
  in.optional("close", r.close);
  return finish(in, r);
}

template <>
Result<SecretsRequest> from_json(const json::value& v) {
  SecretsRequest r;
  JsonReader in(v);
  in.required("names", r.names);
  if (in.ok() && r.names.size() > kMaxSecretsAsked) {
    in.fail("\"names\": more than " + std::to_string(kMaxSecretsAsked) + " secrets asked");
  }
  return finish(in, std::move(r));
}

template <>
Result<SecretsResponse> from_json(const json::value& v) {
  SecretsResponse r;
  JsonReader in(v);
  in.optional("secrets", r.secrets).optional("fork", r.fork).optional("errors", r.errors);
  return finish(in, std::move(r));
}

}  // namespace boxcar::protocol
