// SandboxService: the sandbox API's sandboxes on one agent, served (shared/SANDBOXES.md §1.1):
// a SandboxHost on the agent's executor, re-adopting <data>/sandboxes/ as stopped at start,
// and the data plane, an HttpServer of its own on --sandbox-listen whose router carries the
// lifecycle, exec, file and port routes. It wires the host into the process: each sandbox with
// network "job" gets a job network of the agent's NetworkHost (the egress policy of pipeline
// steps), and its exposed ports are published on the process's PreviewProxy. The daemon syncs
// what it reports (SandboxSource).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "agent/daemon/sandbox_source.h"
#include "http/http_server.h"
#include "network/job_network.h"
#include "previews/preview_proxy.h"
#include "sandboxes/sandbox_host.h"

namespace boxcar::agent {

// AgentWiring::make_sandboxes for an agent of this process: ports on `previews`, networks from
// `networks` (null: every sandbox is loopback only, as with --egress none). Both must outlive
// the agent. An executor other than the native one is answered ErrorCode::unavailable.
SandboxFactory sandbox_service_factory(PreviewProxy* previews, network::NetworkHost* networks);

class SandboxService : public SandboxSource {
 public:
  struct Options {
    std::filesystem::path data_dir;  // the agent's; sandboxes/ is under it
    size_t slots = 1000;
    size_t warm = 0;  // --sandbox-warm
    std::string listen = "127.0.0.1:0";  // ADDR:PORT ([v6]:PORT)
    std::string advertise;               // "": http:// the bound address
    PreviewProxy* previews = nullptr;
    network::NetworkHost* networks = nullptr;
    std::function<void(std::string_view)> log;
    bool git_allow_local = false;    // --allow-local-repos
    bool git_allow_private = false;  // --sandbox-git-allow-private
  };

  // Adopts, then listens: an error (the address cannot be bound, the data directory cannot be
  // made) and nothing is left running.
  static Result<std::unique_ptr<SandboxService>> start(boost::asio::io_context& io, executors::Executor& executor,
                                                       Options options, std::function<void()> changed);
  ~SandboxService() override;

  protocol::SandboxSync snapshot() const override;
  void remove(const std::string& id) override;
  void shutdown() override;

  // The URL syncs report (--sandbox-advertise, or http://the bound address).
  const std::string& endpoint() const { return endpoint_; }
  uint16_t port() const { return port_; }
  sandboxes::SandboxHost& host() { return *host_; }

 private:
  SandboxService(boost::asio::io_context& io, executors::Executor& executor, Options options,
                 std::function<void()> changed);

  Options options_;
  std::map<std::string, std::unique_ptr<network::JobNetwork>> networks_;  // by sandbox id
  std::unique_ptr<sandboxes::SandboxHost> host_;
  server::Router router_;
  std::unique_ptr<server::HttpServer> http_;  // after router_: destroyed first
  std::string endpoint_;
  uint16_t port_ = 0;
  bool shut_down_ = false;
};

}  // namespace boxcar::agent
