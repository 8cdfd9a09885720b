// Connecting to a port inside a step's sandbox from the io_context without ever blocking it,
// even when the server's accept queue is full and the kernel leaves our SYN unanswered.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::agent {

using SandboxConnectHandler = std::function<void(Result<boost::asio::ip::tcp::socket> socket)>;

// Connects to `port` on the sandbox's own loopback (Sandbox::connect_tcp). `sandbox` is used
// only during this call, so it may be destroyed as soon as the call returns. `done` runs exactly
// once, on `io` and never inside this call, with the connected socket or an Error: `err` is
// ECONNREFUSED when nothing listens, ETIMEDOUT when the connection is not up within `timeout`,
// or whatever else connect_tcp or the connect reported.
void async_connect_sandbox(boost::asio::io_context& io, executors::Sandbox& sandbox, uint16_t port,
                           std::chrono::steady_clock::duration timeout, SandboxConnectHandler done);

}  // namespace boxcar::agent
