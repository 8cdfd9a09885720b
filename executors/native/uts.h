// UTS namespace: the sandbox's own hostname (the step's name), invisible to the host.
#pragma once

#include <string>

#include "executors/native/facility.h"

namespace boxcar::executors::native {

// A valid hostname made from a step name: [a-z0-9-], at most 63 characters, never empty.
std::string hostname_for(const std::string& step_name);
Failure set_hostname(const std::string& hostname);

}  // namespace boxcar::executors::native
