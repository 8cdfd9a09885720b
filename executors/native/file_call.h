// FileCall: the agent's end of one file helper request (file_wire.h): reads the helper's reply
// from its socket without blocking the io_context, refuses anything malformed or oversized, checks
// the passed fd, and kills the helper (through the pidfd it sent) when it does not answer in
// time or sends too much. Everything the helper sends is untrusted: it runs where the sandbox's
// root can reach it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/duration.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/file_request.h"

namespace boxcar::executors::native {

class FileCall : public std::enable_shared_from_this<FileCall> {
 public:
  using Done = std::function<void(Result<FileReply>)>;
  // `sock`: the agent's end of the reply socket; `done` runs once, on `io`.
  FileCall(boost::asio::io_context& io, unique_fd sock, FileRequest request, Millis timeout, Done done);
  void start();

 private:
  void read();
  void finish();
  void fail(std::string message, int err);
  Result<FileReply> parse();

  boost::asio::posix::stream_descriptor sock_;
  boost::asio::steady_timer timer_;
  FileRequest request_;
  Millis timeout_;
  Done done_;
  std::string data_;
  std::vector<unique_fd> fds_;  // in the order they came: the helper's pidfd, then the file's
  bool over_ = false;
};

// Validates a decoded reply against its request (names, paths, counts, the fd's type): an
// Error says what was wrong. Kept apart so that forged replies can be tested without a sandbox.
Status check_file_reply(const FileRequest& request, const FileReply& reply);

}  // namespace boxcar::executors::native
