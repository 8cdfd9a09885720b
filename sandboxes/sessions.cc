#include "sandboxes/sessions.h"

#include <chrono>
#include <set>

#include "base/random_token.h"

namespace boxcar::sandboxes {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

// Variables bash keeps for itself and exports: not the user's.
bool shell_own(std::string_view name) {
  return name == "_" || name == "SHLVL" || name == "PWD" || name == "OLDPWD" || name.rfind("__boxcar", 0) == 0;
}

std::map<std::string, std::string> env_map(const std::vector<std::string>& env) {
  std::map<std::string, std::string> m;
  for (const auto& e : env) {
    size_t eq = e.find('=');
    if (eq != std::string::npos) m[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return m;
}

}  // namespace

Session* Sessions::find(const std::string& id, const std::string& default_cwd) {
  auto it = sessions_.find(id);
  if (it != sessions_.end()) return it->second.get();
  if (id != "default") return nullptr;
  auto s = std::make_unique<Session>();
  s->id = id;
  s->cwd = default_cwd;
  s->created_at_ms = now_ms();
  return sessions_.emplace(id, std::move(s)).first->second.get();
}

Session* Sessions::create(const std::string& id_in, EnvChanges env, std::string cwd, std::string& why) {
  std::string id = id_in;
  if (id.empty()) {
    do id = "s" + std::to_string(next_++);
    while (sessions_.count(id));
  }
  if (sessions_.count(id) || id == "default") {
    why = "session \"" + id + "\" exists";
    return nullptr;
  }
  if (sessions_.size() >= kMaxSessions) {
    why = "this sandbox has " + std::to_string(kMaxSessions) + " sessions, the limit: delete one first";
    return nullptr;
  }
  auto s = std::make_unique<Session>();
  s->id = id;
  s->env = std::move(env);
  s->cwd = std::move(cwd);
  s->created_at_ms = now_ms();
  return sessions_.emplace(id, std::move(s)).first->second.get();
}

bool Sessions::remove(const std::string& id) { return sessions_.erase(id) > 0; }

std::vector<const Session*> Sessions::list() const {
  std::vector<const Session*> out;
  for (const auto& [id, s] : sessions_) out.push_back(s.get());
  return out;
}

void Sessions::enqueue(Session& session, std::function<void(std::function<void()> done)> task) {
  // A busy session cannot be deleted (409 busy), and a destroyed sandbox runs no handler, so
  // `s` outlives every task of its queue.
  Session* s = &session;
  auto run = [s, task = std::move(task)] {
    s->busy = true;
    task([s] {
      s->busy = false;
      if (!s->waiting.empty()) {
        auto next = std::move(s->waiting.front());
        s->waiting.pop_front();
        next();
      }
    });
  };
  if (s->busy) {
    s->waiting.push_back(std::move(run));
  } else {
    run();
  }
}

std::vector<std::string> command_env(const std::vector<std::string>& base,
                                     std::initializer_list<const EnvChanges*> layers) {
  auto m = env_map(base);
  for (const EnvChanges* layer : layers) {
    if (layer == nullptr) continue;
    for (const auto& [k, v] : *layer) {
      if (v) {
        m[k] = *v;
      } else {
        m.erase(k);
      }
    }
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k + "=" + v);
  return out;
}

ShellTrailer::ShellTrailer() {
  auto token = random_token(16);
  if (!token) abort_without_randomness(token.error());
  marker_ = "\n@boxcar-session-" + *token + "@";
}

std::vector<std::string> ShellTrailer::argv(const std::string& command) const {
  // The marker begins with a newline, written by the trap's printf: the user's last line and
  // the marker never run together. $? is the command's status, kept as the exit status.
  std::string trap = "trap '__boxcar_rc=$?; printf \"\\n%s\" \"" + marker_.substr(1) +
                     "\" >&2; pwd -P >&2; env -0 >&2; exit $__boxcar_rc' EXIT\n";
  return {"bash", "-c", trap + command};
}

std::string ShellTrailer::filter(std::string_view chunk) {
  if (found_) {
    if (state_.size() + chunk.size() > kMaxState) {
      overflow_ = true;
    } else {
      state_.append(chunk);
    }
    return {};
  }
  pending_.append(chunk);
  size_t at = pending_.find(marker_);
  if (at != std::string::npos) {
    found_ = true;
    std::string mine = pending_.substr(0, at);
    state_ = pending_.substr(at + marker_.size());
    pending_.clear();
    return mine;
  }
  size_t keep = std::min(pending_.size(), marker_.size() - 1);
  std::string mine = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return mine;
}

std::string ShellTrailer::finish() { return std::exchange(pending_, {}); }

std::string ShellTrailer::cwd() const {
  size_t nl = state_.find('\n');
  return nl == std::string::npos ? std::string() : state_.substr(0, nl);
}

EnvChanges ShellTrailer::changes(const std::vector<std::string>& before) const {
  EnvChanges out;
  size_t nl = state_.find('\n');
  if (nl == std::string::npos) return out;
  std::map<std::string, std::string> after;
  std::string_view rest(state_);
  rest.remove_prefix(nl + 1);
  while (!rest.empty()) {
    size_t end = rest.find('\0');
    std::string_view entry = rest.substr(0, end);
    size_t eq = entry.find('=');
    if (eq != std::string_view::npos && !shell_own(entry.substr(0, eq))) {
      after[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  auto was = env_map(before);
  for (const auto& [k, v] : after) {
    auto it = was.find(k);
    if (it == was.end() || it->second != v) out[k] = v;
  }
  for (const auto& [k, v] : was) {
    if (!shell_own(k) && !after.count(k)) out[k] = std::nullopt;
  }
  return out;
}

}  // namespace boxcar::sandboxes
