// PreviewPublisher: the seam between the run engine and whatever serves previews. The engine
// only publishes and withdraws; previews/ holds the proxy that `boxcar run` and the agents use.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "executors/executor.h"

namespace boxcar::agent {

struct PreviewUrls {
  std::string host_url;  // http://{port}-{job}-{token}.{domain}:{listen port}/
  std::string path_url;  // http://{listen addr}:{listen port}/preview/{token}/
  std::string token;     // the {token} of both (the sandbox API reports it)
};

// The seam between the scheduler and whatever serves previews: tests of the scheduler need
// none, `boxcar run` uses the PreviewProxy.
class PreviewPublisher {
 public:
  virtual ~PreviewPublisher() = default;
  // Makes `port` inside `sandbox` of job `job` (a run id or a job id) reachable until
  // withdraw(sandbox) or `until`, whichever comes first. `sandbox` must stay alive until
  // withdraw(sandbox).
  virtual PreviewUrls publish(executors::Sandbox& sandbox, std::string_view job, uint16_t port) = 0;
  // Moves the expiry of every preview of `sandbox`.
  virtual void expire_at(executors::Sandbox& sandbox,
                         std::chrono::steady_clock::time_point until) = 0;
  // Every preview of `sandbox` answers 404 from now on.
  virtual void withdraw(executors::Sandbox& sandbox) = 0;
};

}  // namespace boxcar::agent
