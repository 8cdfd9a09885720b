// WatchCall: the agent's end of one watch helper (init_watch.h): reads its watch_wire.h records
// on the io_context, refuses anything malformed or oversized (the helper runs where the
// sandbox's root can reach it: its output is untrusted), and turns the rest into WatchHandlers
// calls. It kills the helper through the pidfd it sent when it misbehaves, does not say
// `watching` within the start timeout, or the handle goes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/duration.h"
#include "base/unique_fd.h"
#include "executors/watch_request.h"

namespace boxcar::executors::native {

class WatchCall : public std::enable_shared_from_this<WatchCall> {
 public:
  WatchCall(boost::asio::io_context& io, unique_fd sock, WatchRequest request, Millis start_timeout,
            WatchHandlers handlers);
  void start();
  // Kills the helper and closes the socket; no handler runs from now on.
  void cancel();

  // Parses the records at the front of `data` (consumed as parsed) into handler calls; an
  // Error when one is malformed. Public so forged records can be tested without a sandbox.
  Status parse(std::string& data);

 private:
  void read();
  void end(Status why);

  boost::asio::posix::stream_descriptor sock_;
  boost::asio::steady_timer timer_;
  WatchRequest request_;
  Millis start_timeout_;
  WatchHandlers handlers_;
  std::string data_;
  unique_fd pidfd_;
  bool have_pidfd_ = false;
  bool watching_ = false;
  bool over_ = false;
};

// The handle Sandbox::watch returns: cancels its call when destroyed.
class WatchCallHandle final : public WatchHandle {
 public:
  explicit WatchCallHandle(std::shared_ptr<WatchCall> call) : call_(std::move(call)) {}
  ~WatchCallHandle() override { call_->cancel(); }

 private:
  std::shared_ptr<WatchCall> call_;
};

}  // namespace boxcar::executors::native
