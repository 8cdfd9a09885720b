// LoopbackSandbox: a sandbox whose "inside" is the host's loopback, for tests of what reaches a
// step's servers (ready checks, the preview proxy) against real listeners and no real sandbox.
#pragma once

#include <atomic>
#include <cstdint>

#include "executors/executor.h"

namespace boxcar::testing {

// Runs nothing: exec() accepts and never reports, stop() and destroy() do nothing.
// connect_tcp(port) connects to 127.0.0.1:port the way a sandbox reaches its own loopback.
class LoopbackSandbox : public executors::Sandbox {
 public:
  Status exec(const executors::ExecRequest& request, executors::ExecHandlers handlers) override;
  void stop(executors::Outcome::Kind reason, Millis grace) override;
  void destroy() override;
  Result<unique_fd> connect_tcp(uint16_t port) override;

  // How many times connect_tcp was called: whether a proxy reached for the sandbox at all.
  // Atomic: the proxy under test may call from its own threads.
  std::atomic<int> connects = 0;
};

}  // namespace boxcar::testing
