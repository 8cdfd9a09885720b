// Grace: how a cancel stops what runs. `step`: SIGTERM, the step's grace period, then SIGKILL;
// `none`: killed at once (a second Ctrl-C, a lost lease, a workspace over its limit).
#pragma once

namespace boxcar::agent {

enum class Grace { step, none };

}  // namespace boxcar::agent
