#include "client/sandbox_types.h"

#include <csignal>
#include <cstring>

#include <boost/json.hpp>

#include "base/base64.h"
#include "client/answer_fields.h"

namespace boxcar::client {

namespace {

Result<const boost::json::object*> object_of(const boost::json::value& v, const char* what) {
  if (!v.is_object()) {
    return Error{std::string("the server's ") + what + " is not a JSON object", 0, ErrorCode::unavailable};
  }
  return &v.as_object();
}

std::optional<int> small_int(const boost::json::object& o, const char* key) {
  auto v = int_field(o, key);
  if (!v || *v < INT32_MIN || *v > INT32_MAX) return std::nullopt;
  return static_cast<int>(*v);
}

}  // namespace

std::optional<int> signal_field(const boost::json::object& o) {
  if (auto n = small_int(o, "signal")) return n;
  std::string name = text_field(o, "signal");
  if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
  if (name.empty()) return std::nullopt;
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    if (abbrev && name == abbrev) return sig;
  }
  return std::nullopt;
}

Result<SandboxInfo> sandbox_info_from_json(const boost::json::value& v) {
  auto o = object_of(v, "sandbox");
  if (!o) return o.error();
  SandboxInfo s;
  s.id = text_field(**o, "id");
  if (s.id.empty()) return Error{"the server's sandbox has no id", 0, ErrorCode::unavailable};
  s.name = text_field(**o, "name");
  s.state = text_field(**o, "state");
  s.created_at = text_field(**o, "created_at");
  s.expires_at = text_field(**o, "expires_at");
  s.raw = **o;
  return s;
}

Result<ExecResult> exec_result_from_json(const boost::json::value& v) {
  auto o = object_of(v, "exec result");
  if (!o) return o.error();
  ExecResult r;
  r.outcome = text_field(**o, "outcome");
  r.exit_code = small_int(**o, "exit_code");
  r.signal = signal_field(**o);
  r.stdout_text = text_field(**o, "stdout");
  r.stderr_text = text_field(**o, "stderr");
  // Output that is not UTF-8 comes base64-encoded.
  if (auto b = base64_decode(text_field(**o, "stdout_b64")); b && !b->empty()) r.stdout_text = *b;
  if (auto b = base64_decode(text_field(**o, "stderr_b64")); b && !b->empty()) r.stderr_text = *b;
  r.stdout_truncated = bool_field(**o, "stdout_truncated");
  r.stderr_truncated = bool_field(**o, "stderr_truncated");
  r.duration_ms = number_field(**o, "duration_ms");
  r.pid = int_field(**o, "pid").value_or(0);
  r.raw = **o;
  return r;
}

Result<OutputEvent> output_event_from_json(const std::string& kind, const std::string& id,
                                           const std::string& data) {
  OutputEvent e;
  e.kind = kind;
  e.id = id;
  boost::system::error_code ec;
  auto v = boost::json::parse(data, ec);
  if (ec || !v.is_object()) {
    return Error{"the server sent a \"" + kind + "\" event whose data is not a JSON object", 0,
                 ErrorCode::unavailable};
  }
  e.raw = v.as_object();
  e.data = text_field(e.raw, "data");
  if (auto* b = e.raw.if_contains("data_b64"); b && b->is_string()) {
    auto bytes = base64_decode(b->as_string());
    if (!bytes) {
      return Error{"the server sent a \"" + kind + "\" event with bad base64 in data_b64", 0,
                   ErrorCode::unavailable};
    }
    e.data = std::move(*bytes);
  }
  return e;
}

int exit_code_of(const ExecResult& r) {
  if (r.outcome == "timeout") return 124;
  if (r.outcome == "setup_error") return 3;
  if (r.outcome == "oom") return 128 + SIGKILL;
  if (r.signal && *r.signal > 0 && *r.signal < 128) return 128 + *r.signal;
  if (r.exit_code) return *r.exit_code & 0xff;
  // No exit code and no signal: a command that never ran to an end (cancelled).
  return r.outcome == "ok" ? 0 : 1;
}

}  // namespace boxcar::client
