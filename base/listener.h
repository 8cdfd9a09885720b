// Listener: a TCP accept loop that holds its connections to ConnectionLimits and never spins.
// A connection over a cap is closed at once (after a canned 503 saying why, when the protocol
// is plain HTTP), so accepting never blocks on it. Running out of file descriptors (EMFILE,
// ENFILE) pauses accepting for 100 ms, doubling up to 1 s, with one log line, while the open
// connections go on being served; the kernel's backlog holds the waiting clients meanwhile.
// Shared by the API server (server/) and the preview proxy (agent/).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/connection_limits.h"
#include "base/result.h"

namespace boxcar {

class Listener {
 public:
  struct Options {
    ConnectionLimits limits;
    // Plain HTTP: a refused connection is sent a 503 with the reason before it is closed
    // (best effort, never waiting on the client). Off for TLS, where it would be noise.
    bool http_refusal = false;
    std::string name;                           // in log lines: "API listener"
    std::function<void(std::string_view)> log;  // empty: "boxcar: NAME ADDR:PORT: ..." on stderr
  };
  // Each accepted connection, with its slot in the counts (held as long as the connection is
  // open; the socket has a strand of its own). Runs on the listener's strand, never after
  // close() returned.
  using OnConnection = std::function<void(boost::asio::ip::tcp::socket, ConnectionSlot)>;

  Listener(boost::asio::io_context& io, Options options, OnConnection on_connection);
  ~Listener();  // closes
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds, listens and starts accepting; returns the bound endpoint (port 0 picks one).
  Result<boost::asio::ip::tcp::endpoint> listen(const boost::asio::ip::tcp::endpoint& endpoint);
  // Stops accepting; thread-safe. Open connections are the owner's to close.
  void close();
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Connections held now (tests, metrics).
  size_t open_connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar
