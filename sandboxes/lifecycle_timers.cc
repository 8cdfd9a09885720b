#include "sandboxes/lifecycle_timers.h"

namespace boxcar::sandboxes {

IdleStep next_idle_step(const IdleInputs& in) {
  using Action = IdleStep::Action;
  if (in.timers.keep_alive) return {};
  if (in.state == "running") {
    if (in.timers.sleep_after_ms <= 0) return {};
    auto sleep_after = std::chrono::milliseconds(in.timers.sleep_after_ms);
    // A lease held is activity now; its end moves last_active, so look again a whole period on.
    if (in.leases > 0) return {Action::wait, in.now + sleep_after};
    auto due = in.last_active + sleep_after;
    if (due <= in.now) return {Action::pause, in.now};
    return {Action::wait, due};
  }
  if (in.state == "paused") {
    if (in.timers.stop_after_ms <= 0) return {};
    auto due = in.paused_at + std::chrono::milliseconds(in.timers.stop_after_ms);
    if (due <= in.now) return {Action::stop, in.now};
    return {Action::wait, due};
  }
  return {};
}

}  // namespace boxcar::sandboxes
