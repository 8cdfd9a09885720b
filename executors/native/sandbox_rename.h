// rename_native_sandbox: gives a native sandbox that was set up ahead of time, with nothing run in
// it yet, its name (the hostname its commands see): the sandbox API's warm pool
// (sandboxes/warm_pool.h) takes such a sandbox for a create. Its own header, so the callers that
// wire it in do not depend on the whole native executor's.
#pragma once

#include <string>

#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::executors {

// An Error when `sandbox` is not a native one, or is not running.
Status rename_native_sandbox(Sandbox& sandbox, const std::string& name);

}  // namespace boxcar::executors
