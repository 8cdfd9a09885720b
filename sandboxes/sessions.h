// Sessions of one sandbox (SANDBOXES.md §2.3): env and cwd that persist between commands, kept as
// data rather than in a long-lived shell. A session's commands run one at a time, in order.
// ShellTrailer is how a shell-form command hands back its final cwd and exported env.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boxcar::sandboxes {

// NAME -> value; nullopt removes NAME from the sandbox's base environment.
using EnvChanges = std::map<std::string, std::optional<std::string>>;

struct Session {
  std::string id;
  EnvChanges env;
  std::string cwd = "/workspace";
  int64_t created_at_ms = 0;

  // The queue: `busy` while one command runs, the next ones waiting in order.
  bool busy = false;
  std::deque<std::function<void()>> waiting;
};

class Sessions {
 public:
  static constexpr size_t kMaxSessions = 64;

  // The session `id`; "default" always exists (made on first use with `default_cwd`).
  Session* find(const std::string& id, const std::string& default_cwd);
  // nullptr when the id is taken or there are kMaxSessions already (`why` says which).
  Session* create(const std::string& id, EnvChanges env, std::string cwd, std::string& why);
  bool remove(const std::string& id);
  std::vector<const Session*> list() const;

  // Runs `task` once the session is free; the task calls the function it is given when its
  // command ended (so the next one runs). A task may be dropped before it runs: it then never
  // gets called and must not be counted on.
  static void enqueue(Session& session, std::function<void(std::function<void()> done)> task);

 private:
  std::map<std::string, std::unique_ptr<Session>> sessions_;
  uint64_t next_ = 1;
};

// The environment a command starts with: `base` ("NAME=value") with each layer of changes
// applied in order.
std::vector<std::string> command_env(const std::vector<std::string>& base,
                                     std::initializer_list<const EnvChanges*> layers);

// The shell form in a session: `bash -c` with a trap on EXIT that writes a random marker, `pwd -P`
// and `env -0` to stderr. The executor gives a command only fds 0-2, so stderr carries the state,
// behind a marker drawn per command; filter() strips it from what the client sees. A command can
// print the marker itself only to mislead its own session (it can `cd` and `export` anyway);
// another session's state comes from another command's stderr, which it cannot write to.
class ShellTrailer {
 public:
  static constexpr size_t kMaxState = 4 << 20;

  ShellTrailer();
  std::vector<std::string> argv(const std::string& command) const;
  // The part of a stderr chunk that is the command's own (held back: a possible marker start).
  std::string filter(std::string_view chunk);
  // At the end: what was held back, when no marker came.
  std::string finish();
  // The new cwd and env once the trailer ran, measured against `before` (the command's env).
  bool found() const { return found_ && !overflow_; }
  std::string cwd() const;
  EnvChanges changes(const std::vector<std::string>& before) const;

 private:
  std::string marker_;
  std::string pending_;
  std::string state_;
  bool found_ = false;
  bool overflow_ = false;
};

}  // namespace boxcar::sandboxes
