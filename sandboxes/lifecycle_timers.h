// When an idle sandbox pauses and a paused one stops (SANDBOXES.md §1.3), as a pure decision
// SandboxHost arms one timer per sandbox with: idle (no request, no open stream or preview
// connection: no activity lease) for sleep_after_ms -> pause; paused for stop_after_ms -> stop.
// keep_alive disables both, and 0 disables that one timer. Running processes do not count.
#pragma once

#include <chrono>
#include <string_view>

#include "protocol/sandbox_api.h"

namespace boxcar::sandboxes {

struct IdleInputs {
  using Time = std::chrono::steady_clock::time_point;
  std::string_view state;  // running | paused | stopped | error | creating
  protocol::SandboxTimers timers;
  int leases = 0;          // open streams and connections: activity while they last
  Time last_active{};      // the last request, or when the last lease ended
  Time paused_at{};
  Time now{};
};

struct IdleStep {
  enum class Action {
    none,   // no timer: nothing can happen without a request
    wait,   // look again at `at`
    pause,  // now
    stop,   // now
  };
  Action action = Action::none;
  IdleInputs::Time at{};
};

IdleStep next_idle_step(const IdleInputs& in);

}  // namespace boxcar::sandboxes
