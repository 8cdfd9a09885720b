#include "testing/loopback_sandbox.h"

#include "executors/loopback.h"

namespace boxcar::testing {

Status LoopbackSandbox::exec(const executors::ExecRequest&, executors::ExecHandlers) { return {}; }

void LoopbackSandbox::stop(executors::Outcome::Kind, Millis) {}

void LoopbackSandbox::destroy() {}

Result<unique_fd> LoopbackSandbox::connect_tcp(uint16_t port) {
  ++connects;
  return executors::connect_loopback(port);
}

}  // namespace boxcar::testing
