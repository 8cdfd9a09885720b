// SandboxAgentCalls: the server's calls to the agents that host sandboxes (create and delete,
// SANDBOXES.md §1.1), on a thread of its own so a slow agent never holds up the API's threads.
// Each call carries the agent's data-plane key and X-Boxcar-Owner; clients are kept per
// (endpoint, key) and dropped when an agent reports a new key.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/system/error_code.hpp>

#include "http/http_client.h"
#include "server/store/store.h"

namespace boxcar::server {

class SandboxAgentCalls {
 public:
  SandboxAgentCalls();
  ~SandboxAgentCalls();  // stops the thread; calls in flight are dropped
  SandboxAgentCalls(const SandboxAgentCalls&) = delete;
  SandboxAgentCalls& operator=(const SandboxAgentCalls&) = delete;

  // `method` `path` (with `json_body` when not empty) to `agent`'s data plane; `done` runs once
  // on the calls' thread (ec set: no answer, e.g. the agent is unreachable).
  void call(const SandboxAgentRecord& agent, const std::string& owner, const std::string& method,
            const std::string& path, std::string json_body, Millis timeout,
            std::function<void(const boost::system::error_code& ec, HttpReply reply)> done);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar::server
