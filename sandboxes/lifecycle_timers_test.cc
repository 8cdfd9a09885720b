// next_idle_step: when a sandbox pauses and stops (pure; the real timers are in pause_test.cc).
#include "sandboxes/lifecycle_timers.h"

#include <gtest/gtest.h>

namespace boxcar::sandboxes {
namespace {

using namespace std::chrono_literals;
using Action = IdleStep::Action;

IdleInputs running(int64_t sleep_ms, std::chrono::milliseconds idle_for) {
  IdleInputs in;
  in.state = "running";
  in.timers.sleep_after_ms = sleep_ms;
  in.now = std::chrono::steady_clock::time_point{} + 1h;
  in.last_active = in.now - idle_for;
  return in;
}

TEST(NextIdleStep, IdleLongEnoughPausesElseWaitsForTheRest) {
  EXPECT_EQ(next_idle_step(running(1000, 1000ms)).action, Action::pause);
  IdleStep wait = next_idle_step(running(1000, 400ms));
  EXPECT_EQ(wait.action, Action::wait);
  EXPECT_EQ(wait.at, running(1000, 400ms).now + 600ms);
}

TEST(NextIdleStep, ALeaseIsActivityAndZeroOrKeepAliveDisable) {
  IdleInputs leased = running(1000, 5000ms);
  leased.leases = 1;
  EXPECT_EQ(next_idle_step(leased).action, Action::wait);
  EXPECT_EQ(next_idle_step(running(0, 5000ms)).action, Action::none);
  IdleInputs kept = running(1000, 5000ms);
  kept.timers.keep_alive = true;
  EXPECT_EQ(next_idle_step(kept).action, Action::none);
}

TEST(NextIdleStep, PausedStopsAfterStopAfter) {
  IdleInputs in;
  in.state = "paused";
  in.now = std::chrono::steady_clock::time_point{} + 1h;
  in.timers.stop_after_ms = 2000;
  in.paused_at = in.now - 2s;
  EXPECT_EQ(next_idle_step(in).action, Action::stop);
  in.paused_at = in.now - 1s;
  EXPECT_EQ(next_idle_step(in).action, Action::wait);
  in.timers.stop_after_ms = 0;
  EXPECT_EQ(next_idle_step(in).action, Action::none);
  in.state = "stopped";
  in.timers.stop_after_ms = 1;
  EXPECT_EQ(next_idle_step(in).action, Action::none);
}

}  // namespace
}  // namespace boxcar::sandboxes
