#include "agent/daemon/sandbox_service.h"

#include "base/connection_limits.h"

#include <cstdlib>

#include <boost/asio/ip/address.hpp>

#include "agent/daemon/agent_config.h"
#include "executors/native/sandbox_rename.h"

namespace boxcar::agent {

namespace {

// The data plane's JSON bodies (SANDBOXES.md §1.5); raw file routes stream past it.
constexpr size_t kDataPlaneBodyLimit = 16u << 20;

struct ListenAddress {
  std::string host;  // without brackets
  uint16_t port = 0;
};

// "127.0.0.1:0", "[::1]:8471": the CLI checked it already; this only splits it.
Result<ListenAddress> split_listen(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return Error{"the sandbox listen address must be ADDR:PORT, not \"" + text + "\""};
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  long port = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != 0 || colon + 1 == text.size() || port < 0 || port > 65535) {
    return Error{"the sandbox listen address must be ADDR:PORT, not \"" + text + "\""};
  }
  return ListenAddress{host, static_cast<uint16_t>(port)};
}

}  // namespace

SandboxFactory sandbox_service_factory(PreviewProxy* previews, network::NetworkHost* networks) {
  return [previews, networks](boost::asio::io_context& io, executors::Executor& executor, const AgentConfig& config,
                              std::function<void()> changed) -> Result<std::unique_ptr<SandboxSource>> {
    // The host executor isolates nothing, and the oci one cannot exec into a running sandbox.
    if (executor.name() != "native") {
      return Error{"sandboxes need the native executor, not " + std::string(executor.name()), 0,
                   ErrorCode::unavailable};
    }
    SandboxService::Options o;
    o.data_dir = config.data_dir;
    o.slots = config.sandbox_slots;
    o.git_allow_local = config.allow_local_repos;
    o.git_allow_private = config.sandbox_git_allow_private;
    o.warm = config.sandbox_warm;
    o.listen = config.sandbox_listen;
    o.advertise = config.sandbox_advertise;
    o.previews = previews;
    o.networks = networks;
    auto started = SandboxService::start(io, executor, std::move(o), std::move(changed));
    if (!started.ok()) return started.error();
    return std::unique_ptr<SandboxSource>(std::move(started.value()));
  };
}

SandboxService::SandboxService(boost::asio::io_context& io, executors::Executor& executor, Options options,
                               std::function<void()> changed)
    : options_(std::move(options)) {
  sandboxes::SandboxHostOptions h;
  h.data_dir = options_.data_dir;
  h.slots = options_.slots;
  h.git_allow_local = options_.git_allow_local;
  h.git_allow_private = options_.git_allow_private;
  h.warm = options_.warm;
  h.rename_sandbox = executors::rename_native_sandbox;  // the factory refuses other executors
  h.log = options_.log;
  h.on_change = std::move(changed);
  if (PreviewProxy* proxy = options_.previews) {
    h.publish_port = [proxy](executors::Sandbox& sandbox, const std::string& id, uint16_t port,
                             const std::string& token) {
      PreviewUrls urls = token.empty() ? proxy->publish(sandbox, id, port) : proxy->publish_as(sandbox, id, port, token);
      protocol::SandboxPort p;
      p.port = port;
      p.url = urls.host_url;
      p.path_url = urls.path_url;
      p.token = urls.token;
      return p;
    };
    h.withdraw_port = [proxy](executors::Sandbox& sandbox, uint16_t port) { proxy->withdraw(sandbox, port); };
  }
  if (options_.networks) {
    // One job network per sandbox, as one per job: its egress is the agent's policy, exactly
    // as for pipeline steps.
    h.make_netns = [this](const std::string& id) -> Result<int> {
      auto made = options_.networks->create_job("sandbox-" + id);
      if (!made.ok()) return made.error();
      int fd = made.value()->netns_fd();
      networks_[id] = std::move(made.value());
      return fd;
    };
    h.release_netns = [this](const std::string& id) { networks_.erase(id); };
  }
  host_ = std::make_unique<sandboxes::SandboxHost>(io, executor, std::move(h));
  // A preview hit on a paused sandbox thaws it first (SANDBOXES.md §2.7).
  if (PreviewProxy* proxy = options_.previews) {
    proxy->set_wake([host = host_.get()](executors::Sandbox& sandbox) { return host->wake(sandbox); });
  }
  sandboxes::add_lifecycle_routes(router_, *host_);
  sandboxes::add_exec_routes(router_, *host_);
  sandboxes::add_file_routes(router_, *host_);
  sandboxes::add_port_routes(router_, *host_);
  sandboxes::add_git_routes(router_, *host_);
  server::HttpServerOptions http;
  http.body_limit = kDataPlaneBodyLimit;
  // Every request comes from the server's gateway, so one address carries every tenant: a cap
  // per client address would let one tenant's held requests (waits, streams) shut out all the
  // others. The listener's total cap (from the open-file limit) is the one that protects.
  http.limits = default_connection_limits(open_file_limit(), 1, 4096);
  http.limits.max_per_client = http.limits.max_connections;
  http_ = std::make_unique<server::HttpServer>(io, router_, http);
}

Result<std::unique_ptr<SandboxService>> SandboxService::start(boost::asio::io_context& io,
                                                              executors::Executor& executor, Options options,
                                                              std::function<void()> changed) {
  auto listen = split_listen(options.listen);
  if (!listen.ok()) return Error{listen.error().message, 0, ErrorCode::usage};
  std::unique_ptr<SandboxService> s(new SandboxService(io, executor, std::move(options), std::move(changed)));
  if (Status st = s->host_->adopt(); !st.ok()) {
    return Error{"cannot adopt the sandboxes under " + (s->options_.data_dir / "sandboxes").string() + ": " +
                 st.error().message, st.error().err, st.error().code};
  }
  auto bound = s->http_->listen(listen->host, listen->port);
  if (!bound.ok()) {
    s->host_->shutdown();
    return Error{"cannot listen on " + s->options_.listen + " for the sandbox data plane: " + bound.error().message,
                 bound.error().err, ErrorCode::unavailable};
  }
  s->port_ = *bound;
  if (!s->options_.advertise.empty()) {
    s->endpoint_ = s->options_.advertise;
    while (!s->endpoint_.empty() && s->endpoint_.back() == '/') s->endpoint_.pop_back();
  } else {
    bool v6 = listen->host.find(':') != std::string::npos;
    s->endpoint_ = "http://" + (v6 ? "[" + listen->host + "]" : listen->host) + ":" + std::to_string(s->port_);
  }
  if (s->options_.log) {
    s->options_.log("sandbox data plane on " + s->endpoint_ + " (" + std::to_string(s->options_.slots) +
                    " sandboxes at most)");
  }
  return s;
}

SandboxService::~SandboxService() {
  if (options_.previews) options_.previews->set_wake(nullptr);  // the proxy may outlive the host
  shutdown();
}

protocol::SandboxSync SandboxService::snapshot() const {
  protocol::SandboxSync s;
  s.endpoint = endpoint_;
  s.key = host_->key();
  s.slots_free = static_cast<int64_t>(host_->free_slots());
  s.memory_free_bytes = host_->memory_free_bytes();
  s.sandboxes = host_->reports();
  return s;
}

void SandboxService::remove(const std::string& id) {
  if (!shut_down_) host_->remove(id);
}

void SandboxService::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  http_->stop();
  host_->shutdown();
  networks_.clear();
}

}  // namespace boxcar::agent
