// Running a command in a sandbox from a test, for any executor: its output, its Outcome, and the
// io_context run until it ended.
#pragma once

#include <string>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::testing {

struct Ran {
  executors::Outcome outcome;
  std::string out, err;
};

// Starts `request` in `sandbox` and returns at once: `ran` collects its output and outcome and
// `done` becomes true when it ended (both must outlive it). An error: nothing started.
Status start_in(executors::Sandbox& sandbox, executors::ExecRequest request, Ran& ran, bool& done);

// Runs `io` until `done` (restarting it first: an earlier run may have stopped it).
void run_until(boost::asio::io_context& io, const bool& done);

// start_in, then run_until. A start that fails fails the test and returns an empty Ran.
Ran run_in(boost::asio::io_context& io, executors::Sandbox& sandbox, executors::ExecRequest request);

}  // namespace boxcar::testing
