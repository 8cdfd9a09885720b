#include "testing/sandbox_run.h"

#include <gtest/gtest.h>

#include <utility>

namespace boxcar::testing {

Status start_in(executors::Sandbox& sandbox, executors::ExecRequest request, Ran& ran, bool& done) {
  done = false;
  return sandbox.exec(std::move(request),
                      executors::ExecHandlers{[&ran](executors::OutputStream which, std::string_view data) {
                                                (which == executors::OutputStream::out ? ran.out : ran.err).append(data);
                                              },
                                              [&ran, &done](const executors::Outcome& o) {
                                                ran.outcome = o;
                                                done = true;
                                              }});
}

void run_until(boost::asio::io_context& io, const bool& done) {
  io.restart();
  while (!done) io.run_one();
}

Ran run_in(boost::asio::io_context& io, executors::Sandbox& sandbox, executors::ExecRequest request) {
  Ran ran;
  bool done = false;
  Status s = start_in(sandbox, std::move(request), ran, done);
  EXPECT_TRUE(s.ok()) << s.error().message;
  if (s.ok()) run_until(io, done);
  return ran;
}

}  // namespace boxcar::testing
