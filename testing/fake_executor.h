// FakeExecutor: an executors::Executor whose commands follow a script instead of running, so
// the engine's handling of services, exposed ports and previews can be unit-tested; the
// servers a script opens are real loopback listeners, so ready checks and proxies reach them.
//
// A command is the text an exec runs (a step's `run` or a service's `run`, the last argv
// element). Its script says what it prints, how it ends and when, and which ports it opens.
// Tests wait for events (run_until a command started, a port listens) and can drive a command
// by hand (listen, exit) instead of racing a clock. Everything happens on one io_context: the
// executor's callbacks, its timers and its listeners.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "executors/executor.h"

namespace boxcar::testing {

// What one command does once exec'd. The default: prints nothing, exits 0 at once.
struct FakeCommand {
  struct Port {
    uint16_t port = 0;           // the port inside the sandbox
    Millis after{0};             // from the command's start
    int http_status = 200;       // what it answers any HTTP request with
  };
  std::vector<std::string> output;          // stdout lines, written when it starts
  std::optional<Millis> exits_after{0};     // none: runs until stopped (a server)
  executors::Outcome outcome;               // how it ends by itself: exited(n), oom, killed_by
  std::vector<Port> listens;                // ports it opens; they close when it ends
  bool ignores_sigterm = false;             // stop() ends it only after the grace period

  // A server: runs until stopped, listening on `port` after `after`.
  static FakeCommand server(uint16_t port, Millis after = Millis(0));
  // Runs until stopped, listening nowhere (a server that never comes up, or a hung step).
  static FakeCommand forever();
  static FakeCommand exits(executors::Outcome outcome, Millis after = Millis(0));
};

class FakeExecutor : public executors::Executor {
 public:
  // One exec: what the test can observe of it.
  struct Exec {
    std::string step;      // the sandbox's name (SandboxSpec::name)
    std::string command;   // argv.back()
    std::vector<std::string> env;
    std::optional<executors::Outcome> ended;  // set once on_exit was called
    std::optional<executors::Outcome::Kind> stopped;  // stop() was called with this reason
  };

  // `io` must outlive the executor and every job and sandbox it made.
  explicit FakeExecutor(boost::asio::io_context& io);
  ~FakeExecutor() override;

  void script(std::string command, FakeCommand what);

  std::string_view name() const override { return "fake"; }
  bool isolated() const override { return false; }
  Result<std::unique_ptr<executors::Job>> prepare(const executors::JobSpec& spec) override;

  // Runs the io_context until `done()` holds or `deadline` passed; returns done(). The
  // deadline is a generous bound for a broken test, never a measurement.
  bool run_until(const std::function<bool()>& done,
                 std::chrono::milliseconds deadline = std::chrono::seconds(10));

  // Execs of `command` started so far.
  size_t started(std::string_view command) const;
  // The latest exec of `command`, or null.
  const Exec* last(std::string_view command) const;
  const std::vector<std::shared_ptr<Exec>>& execs() const;
  // Whether a live sandbox of `step` has a server on `port`.
  bool listening(std::string_view step, uint16_t port) const;
  // connect_tcp calls on sandboxes of `step`: each ready check attempt makes one.
  size_t connects(std::string_view step) const;
  // Sandboxes started and not yet destroyed.
  size_t live_sandboxes() const;
  // Execs started and not ended.
  size_t running() const;
  size_t max_running() const;

  // By hand: the latest running exec of `command` opens `port` now, or ends now with `outcome`.
  void listen(std::string_view command, uint16_t port, int http_status = 200);
  void exit(std::string_view command, executors::Outcome outcome);

  // Makes every following Job::start fail (a sandbox that cannot be set up).
  void fail_starts(bool fail);

  struct State;

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<State> state_;
};

}  // namespace boxcar::testing
