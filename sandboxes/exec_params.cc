#include "sandboxes/exec_params.h"

#include <boost/json.hpp>

#include "base/base64.h"
#include "base/size.h"
#include "protocol/json_reader.h"

namespace boxcar::sandboxes {

namespace json = boost::json;

namespace {

constexpr int64_t kMaxTimeoutMs = 7ll * 24 * 3600 * 1000;
constexpr int64_t kMaxGraceMs = 600'000;
constexpr size_t kMaxCommandBytes = 1 << 20;

Error bad(std::string field, std::string message) {
  return Error{"\"" + field + "\": " + message, 0, ErrorCode::invalid_input, field};
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

bool valid_custom_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

std::string path_problem(std::string_view path) {
  if (path.empty()) return "must not be empty";
  if (path.size() > kMaxPathBytes) return "longer than 4096 bytes";
  if (has_nul(path)) return "contains a NUL byte";
  if (path.find("//") != std::string_view::npos) return "contains \"//\"";
  size_t start = path[0] == '/' ? 1 : 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg == "." || seg == "..") return "contains a \"" + std::string(seg) + "\" segment";
    start = end + 1;
  }
  return "";
}

std::string resolve_path(const std::string& base, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  if (base.empty() || base == "/") return "/" + path;
  return base + "/" + path;
}

Result<ExecParams> parse_exec_params(const json::value& body, ExecBody kind) {
  ExecParams p;
  if (!body.is_object()) return Error{"the body must be a JSON object", 0, ErrorCode::invalid_input};
  const json::object& o = body.as_object();
  protocol::JsonReader in(body);
  std::vector<std::string> known{"argv", "command", "env", "cwd", "session", "stdin", "timeout_ms",
                                 "grace_ms", "max_output"};
  if (kind == ExecBody::exec) {
    known.insert(known.end(), {"stdin_b64", "stream"});
  } else {
    known.push_back("id");
  }
  in.known(known);
  std::optional<std::vector<std::string>> argv;
  int64_t timeout_ms = 0, grace_ms = p.grace.count();
  in.optional("argv", argv).optional("command", p.command).optional("cwd", p.cwd);
  in.optional("timeout_ms", timeout_ms).optional("grace_ms", grace_ms);
  if (kind == ExecBody::exec) in.optional("stream", p.stream);
  if (kind == ExecBody::process) in.optional("id", p.id);
  if (!in.ok()) return Error{in.error().message, 0, ErrorCode::invalid_input, in.error_field()};

  if (argv.has_value() == p.command.has_value()) {
    return bad(argv ? "command" : "argv", "give exactly one of \"argv\" (a list) and \"command\" (a shell line)");
  }
  if (argv) {
    if (argv->empty()) return bad("argv", "must not be empty");
    for (const auto& a : *argv) {
      if (has_nul(a)) return bad("argv", "an argument contains a NUL byte");
    }
    p.argv = std::move(*argv);
  } else if (p.command->empty() || has_nul(*p.command)) {
    return bad("command", p.command->empty() ? "must not be empty" : "contains a NUL byte");
  }

  if (const json::value* env = o.if_contains("env"); env && !env->is_null()) {
    if (!env->is_object()) return bad("env", "expected an object of NAME: value (null removes), got " + protocol::json_kind(*env));
    for (const auto& [k, v] : env->as_object()) {
      std::string name(k);
      if (name.empty() || name.find('=') != std::string::npos || has_nul(name)) {
        return bad("env." + name, "not a variable name (no \"=\" or NUL, not empty)");
      }
      if (v.is_null()) {
        p.env[name] = std::nullopt;
      } else if (v.is_string() && !has_nul(v.as_string())) {
        p.env[name] = std::string(v.as_string());
      } else {
        return bad("env." + name, "expected a string without NUL, or null, got " + protocol::json_kind(v));
      }
    }
  }
  // What the kernel takes for a command line and environment (and what one control message
  // carries) is bounded: past that a command could not start at all, so it is a bad request.
  size_t command_bytes = p.command ? p.command->size() : 0;
  for (const auto& a : p.argv) command_bytes += a.size() + 1;
  if (command_bytes > kMaxCommandBytes) return bad(p.command ? "command" : "argv", "longer than 1 MiB in all");
  size_t env_bytes = 0;
  for (const auto& [k, v] : p.env) env_bytes += k.size() + (v ? v->size() : 0) + 2;
  if (env_bytes > kMaxCommandBytes) return bad("env", "longer than 1 MiB in all");
  if (p.cwd) {
    if (std::string why = path_problem(*p.cwd); !why.empty()) return bad("cwd", why);
  }
  if (const json::value* s = o.if_contains("session")) {
    if (s->is_null()) {
      p.session.reset();
    } else if (!s->is_string() || !valid_custom_id(s->as_string())) {
      return bad("session", "expected a session id ([A-Za-z0-9_.-]{1,64}) or null (sessionless)");
    } else {
      p.session = std::string(s->as_string());
    }
  }
  if (timeout_ms < 0 || timeout_ms > kMaxTimeoutMs) return bad("timeout_ms", "must be 0 (none) to 604800000 (7 days)");
  if (grace_ms < 0 || grace_ms > kMaxGraceMs) return bad("grace_ms", "must be 0 to 600000");
  p.timeout = Millis(timeout_ms);
  p.grace = Millis(grace_ms);

  if (const json::value* m = o.if_contains("max_output"); m && !m->is_null()) {
    std::optional<uint64_t> size;
    if (m->is_int64() && m->as_int64() >= 0) size = static_cast<uint64_t>(m->as_int64());
    if (m->is_uint64()) size = m->as_uint64();
    if (m->is_string()) size = parse_size(m->as_string());
    if (!size) return bad("max_output", "expected bytes or a size like \"16MiB\"");
    if (*size > kMaxMaxOutput) return bad("max_output", "at most 64MiB");
    p.max_output = *size;
  }

  const json::value* in_text = o.if_contains("stdin");
  if (kind == ExecBody::exec) {
    const json::value* in_b64 = o.if_contains("stdin_b64");
    if (in_text && !in_text->is_null() && in_b64 && !in_b64->is_null()) {
      return bad("stdin_b64", "give \"stdin\" or \"stdin_b64\", not both");
    }
    if (in_text && !in_text->is_null()) {
      if (!in_text->is_string()) return bad("stdin", "expected a string, got " + protocol::json_kind(*in_text));
      p.stdin_data = std::string(in_text->as_string());
    }
    if (in_b64 && !in_b64->is_null()) {
      auto bytes = in_b64->is_string() ? base64_decode(in_b64->as_string()) : std::nullopt;
      if (!bytes) return bad("stdin_b64", "expected base64 text");
      p.stdin_data = std::move(*bytes);
    }
  } else {
    if (in_text && !in_text->is_null()) {
      if (!in_text->is_string() || (in_text->as_string() != "pipe" && in_text->as_string() != "null")) {
        return bad("stdin", "expected \"null\" or \"pipe\"");
      }
      p.stdin_pipe = in_text->as_string() == "pipe";
    }
    if (!p.id.empty() && !valid_custom_id(p.id)) return bad("id", "expected [A-Za-z0-9_.-]{1,64}");
  }
  return p;
}

}  // namespace boxcar::sandboxes
