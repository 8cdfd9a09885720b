// PreviewProxy: the HTTP front door of preview URLs. Routes a request by its Host header
// `{port}-{job}-{token}.{domain}` or by its path `/preview/{token}/...` to an exposed port
// inside a step's sandbox, then relays bytes both ways (so keep-alive and WebSocket upgrades
// pass through).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "base/connection_limits.h"
#include "base/result.h"
#include "agent/preview_publisher.h"
#include "executors/executor.h"

namespace boxcar::agent {

// A fresh preview token: 16 lowercase base32 characters (80 bits) from random_bytes.
std::string make_preview_token();

// The run id as a DNS label part: only [a-z0-9] (upper case folded), at most 40 characters.
std::string preview_job_label(std::string_view run_id);

// One proxy serves the previews of every job of a process (`boxcar run`, an agent, or all the
// in-process agents of `boxcar serve`).
class PreviewProxy : public PreviewPublisher {
 public:
  PreviewProxy(boost::asio::io_context& io, std::string domain);
  ~PreviewProxy() override;

  // Binds and starts accepting on `addr:port` ("127.0.0.1:8470"; port 0 picks one).
  Status listen(const std::string& listen_addr);
  uint16_t port() const;
  // How long a client may take to send its request header before the connection is closed
  // (default 10 s).
  void set_header_timeout(std::chrono::steady_clock::duration timeout);
  // How long a proxied connection may move no byte either way before it is closed (default
  // 5 min: longer than the API's 60 s, since a WebSocket to a dev server may stay quiet for
  // minutes; data flowing keeps it open however long).
  void set_idle_timeout(std::chrono::steady_clock::duration timeout);
  // Caps on the connections held at once, in all and per client address (before listen();
  // default: default_connection_limits(open-file limit, 2, 1024)). Over a cap a client gets a
  // 503 at once.
  void set_connection_limits(ConnectionLimits limits);
  // Stops accepting; open connections end with their peers.
  void close();
  // Runs on the io thread before each connection into a published sandbox: the sandbox API's
  // host thaws a paused sandbox there (SandboxHost::wake). What it returns is held for as long as
  // the connection lasts (an activity lease); null is fine. Unset: nothing runs.
  void set_wake(std::function<std::shared_ptr<void>(executors::Sandbox&)> wake);

  PreviewUrls publish(executors::Sandbox& sandbox, std::string_view job, uint16_t port) override;
  // The same, under a token it was published with before (a sandbox of the sandbox API started
  // again keeps its URLs); a token not of make_preview_token's form gets a new one.
  PreviewUrls publish_as(executors::Sandbox& sandbox, std::string_view job, uint16_t port, const std::string& token);
  void expire_at(executors::Sandbox& sandbox, std::chrono::steady_clock::time_point until) override;
  void withdraw(executors::Sandbox& sandbox) override;
  // Only the previews of `port` inside `sandbox` answer 404 from now on (a sandbox of the
  // sandbox API unexposing one port); its other ports stay published.
  void withdraw(executors::Sandbox& sandbox, uint16_t port);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar::agent
