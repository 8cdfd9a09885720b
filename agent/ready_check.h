// Ready checks of a step's services ([[step.service]] ready = { tcp = P } or { http = "/path" }):
// one attempt at a time, through the sandbox's own loopback, never blocking the io_context.
#pragma once

#include <functional>

#include <boost/asio/io_context.hpp>

#include "executors/executor.h"
#include "pipeline/pipeline.h"

namespace boxcar::agent {

// One attempt: `done(true)` when the port accepts a connection (tcp) or answers a GET of the
// path with a 2xx or 3xx status (http), `done(false)` otherwise, at the latest 2 s after the
// call (a server too busy to accept is not ready). For http the port is `check.tcp` when set,
// else `default_port`. Uses `sandbox` only during the call. Calls `done` exactly once, from the
// io_context.
void check_ready_once(boost::asio::io_context& io, executors::Sandbox& sandbox,
                      const pipeline::ReadyCheck& check, int default_port,
                      std::function<void(bool ready)> done);

}  // namespace boxcar::agent
