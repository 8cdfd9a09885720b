// SandboxSource: what the agent daemon needs of the sandbox API's sandboxes it hosts: the state
// its sync reports, and the server's word that one was deleted. SandboxService (the real
// SandboxHost and its data-plane listener) is one; the daemon's tests use a stand-in, so the
// sync loop is tested against a server without real sandboxes.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "executors/executor.h"
#include "protocol/sandbox_api.h"

namespace boxcar::agent {

struct AgentConfig;

class SandboxSource {
 public:
  virtual ~SandboxSource() = default;
  // Everything a sync sends: endpoint, key, free slots and memory, and every sandbox's report.
  virtual protocol::SandboxSync snapshot() const = 0;
  // The server no longer has sandbox `id`: everything of it goes (unknown ids are ignored).
  virtual void remove(const std::string& id) = 0;
  // Drain and stop: the data plane stops listening and the sandboxes are shut down (their
  // directories stay, for the next start to adopt). Idempotent.
  virtual void shutdown() = 0;
};

// Makes the sandboxes of an agent on its executor, from config.sandbox_* (AgentWiring::
// make_sandboxes). `changed` is to be called after every change of a sandbox's state or ports.
using SandboxFactory = std::function<Result<std::unique_ptr<SandboxSource>>(
    boost::asio::io_context& io, executors::Executor& executor, const AgentConfig& config,
    std::function<void()> changed)>;

}  // namespace boxcar::agent
