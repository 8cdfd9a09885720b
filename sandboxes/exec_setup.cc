#include "sandboxes/exec_setup.h"

#include <signal.h>
#include <string.h>

#include <charconv>

#include <boost/json.hpp>

#include "sandboxes/api_sandbox.h"

namespace boxcar::sandboxes {

namespace json = boost::json;
using executors::Outcome;

CommandSetup command_setup(const ApiSandbox& sandbox, const ExecParams& params, const Session* session,
                           bool with_trailer) {
  CommandSetup s;
  const EnvChanges* session_env = session ? &session->env : nullptr;
  s.request.env = command_env(sandbox.base_env(), {session_env, &params.env});
  std::string base = session ? session->cwd : sandbox.spec().cwd;
  s.request.workdir = params.cwd ? resolve_path(base, *params.cwd) : base;
  if (session) s.session_id = session->id;
  if (params.command) {
    if (session && with_trailer) {
      s.trailer = std::make_shared<ShellTrailer>();
      s.request.argv = s.trailer->argv(*params.command);
    } else {
      s.request.argv = {"bash", "-c", *params.command};
    }
  } else {
    s.request.argv = params.argv;
  }
  return s;
}

void apply_session_state(Session& session, const ShellTrailer& trailer, const std::vector<std::string>& env_before) {
  std::string cwd = trailer.cwd();
  if (!cwd.empty() && cwd[0] == '/' && cwd.size() <= kMaxPathBytes) session.cwd = cwd;
  // Only what the command itself changed: a request's own "env" applies to that command alone.
  for (auto& [k, v] : trailer.changes(env_before)) session.env[k] = v;
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : std::to_string(sig);
}

int parse_signal(std::string_view text) {
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc() && end == text.data() + text.size()) return n >= 1 && n < NSIG ? n : 0;
  if (text.rfind("SIG", 0) == 0) text.remove_prefix(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    if (abbrev && text == abbrev) return sig;
  }
  return 0;
}

json::object outcome_json(const Outcome& o) {
  json::object out{{"outcome", executors::to_string(o.kind)}, {"exit_code", nullptr}, {"signal", nullptr}};
  if (o.kind == Outcome::Kind::ok || o.kind == Outcome::Kind::failed) out["exit_code"] = o.exit_code;
  if (o.kind == Outcome::Kind::signaled) out["signal"] = signal_name(o.signal);
  if (!o.message.empty()) out["message"] = o.message;
  return out;
}

}  // namespace boxcar::sandboxes
