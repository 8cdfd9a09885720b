#include "server/server.h"

#include <algorithm>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "server/api.h"
#include "server/api_sandboxes.h"
#include "server/auth.h"
#include "server/forge_status_sender.h"
#include "http/http_server.h"
#include "http/notifier.h"

namespace boxcar::server {

namespace net = boost::asio;

struct Server::State {
  State(Store& s, const ServerConfig& config)
      : store(s), options(config),
        followers(options.max_followers_per_job, options.max_followers_per_client),
        ctx{store, options, metrics, queue_changed, job_changed, followers},
        sweeper(net::make_strand(io)) {}

  Store& store;
  ServerConfig options;
  Metrics metrics;
  Notifier queue_changed;
  Notifier job_changed;
  LogFollowers followers;  // before io: the followers io holds give their places back to it
  ApiContext ctx;
  Router router;
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::unique_ptr<HttpServer> http;
  net::steady_timer sweeper;
  std::vector<std::thread> threads;
  // Commit statuses go out on a thread of their own: a slow forge never holds up the API. It
  // waits on job_changed, not queue_changed, whose waiters /metrics counts as idle agents.
  std::unique_ptr<ForgeStatusSender> statuses;
  // The sandbox API's calls to agents (create, delete), on a thread of their own.
  SandboxAgentCalls sandbox_calls;
  uint16_t port = 0;
  uint16_t agent_port = 0;  // the in-process agents' own listener; 0: none
  bool running = false;
  std::chrono::steady_clock::time_point next_artifact_sweep{};
  std::chrono::steady_clock::time_point next_retention_sweep{};
};

namespace {

// Load balancers probe /healthz by whatever address they know: it answers every Host.
void add_health_route(Router& router, ApiContext& ctx) {
  router.add(http::verb::get, "/healthz", [&ctx](HttpRequest&, std::shared_ptr<Responder> res) {
    auto counts = ctx.store.count_by_state();
    if (!counts) {
      return res->reply(HttpResponse::text(503, "store unavailable: " + counts.error().message));
    }
    res->reply(HttpResponse::text(200, "ok\n"));
  });
}

// A read token scrapes /metrics (Prometheus: authorization.credentials_file); --public-read
// does not open it.
void add_metrics_route(Router& router, ApiContext& ctx) {
  router.add(http::verb::get, "/metrics", [&ctx](HttpRequest&, std::shared_ptr<Responder> res) {
    auto counts = ctx.store.count_by_state();
    if (!counts) return res->reply(store_error(counts.error()));
    res->reply(HttpResponse::text(200, ctx.metrics.render(*counts, ctx.queue_changed.waiters(),
                                                      ctx.followers.total()),
                                  "text/plain; version=0.0.4; charset=utf-8"));
  }, requires_scope(ctx, Scope::read));
}

// The loopback address of the listen address's family.
std::string loopback_of(const std::string& listen_address) {
  return listen_address.find(':') != std::string::npos ? "::1" : "127.0.0.1";
}

// Every lease_ms/4 (or job_retention_ms/2 when shorter): re-queue (or fail) jobs whose agent
// stopped heartbeating, wake claims, and run retention when it is due.
void sweep(Server::State& s);

}  // namespace

Server::Server(Store& store, const ServerConfig& config)
    : state_(std::make_unique<State>(store, config)) {
  State& s = *state_;
  add_health_route(s.router, s.ctx);
  s.router.guard([&options = s.options](const HttpRequest& head) { return check_host(options, head); });
  add_job_routes(s.router, s.ctx);
  add_log_routes(s.router, s.ctx);
  add_agent_routes(s.router, s.ctx);
  add_webhook_routes(s.router, s.ctx);
  add_web_ui_routes(s.router, s.ctx);
  add_artifact_routes(s.router, s.ctx);
  add_cache_routes(s.router, s.ctx);
  add_preview_routes(s.router, s.ctx);
  add_metrics_route(s.router, s.ctx);
  add_agents_admin_routes(s.router, s.ctx);
  add_secret_routes(s.router, s.ctx);
  add_rerun_routes(s.router, s.ctx);
  add_sandbox_routes(s.router, s.ctx, s.sandbox_calls);
  add_sandbox_sync_route(s.router, s.ctx);
  add_sandbox_gateway(s.router, s.ctx);
  HttpServerOptions http_options = s.options.http;
  http_options.on_response = [&metrics = s.metrics](unsigned code) {
    metrics.count_http_response(code);
  };
  s.http = std::make_unique<HttpServer>(s.io, s.router, std::move(http_options));
}

Server::~Server() { stop(); }

Status Server::start() {
  State& s = *state_;
  if (s.running) return Error{"the server is already running"};
  if (s.options.lease_ms < 100) return Error{"lease_ms must be at least 100"};
  auto port = s.http->listen(s.options.listen_address, s.options.port);
  if (!port) return port.error();
  s.port = *port;
  if (s.options.agent_listener) {
    // 64 agents at most, each with a few kept-alive connections (claim, heartbeat, uploads).
    ConnectionLimits own{1024, 1024};
    auto agents = s.http->listen(loopback_of(s.options.listen_address), 0, own);
    if (!agents) return agents.error();
    s.agent_port = *agents;
  }
  s.statuses = std::make_unique<ForgeStatusSender>(
      s.store, s.options, s.metrics, std::vector<Notifier*>{&s.job_changed});
  if (Status st = s.statuses->start(); !st.ok()) return st.error();
  s.work.emplace(s.io.get_executor());
  net::post(s.sweeper.get_executor(), [&s] { sweep(s); });
  int threads = std::max(1, s.options.threads);
  for (int i = 0; i < threads; ++i) s.threads.emplace_back([&s] { s.io.run(); });
  s.running = true;
  return {};
}

void Server::stop() {
  State& s = *state_;
  if (!s.running) return;
  s.running = false;
  s.statuses->stop();
  s.http->stop();
  net::post(s.sweeper.get_executor(), [&s] { s.sweeper.cancel(); });
  s.work.reset();
  // Held claims and followers were closed above; stop() also ends anything still pending.
  s.io.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

uint16_t Server::port() const { return state_->port; }

std::string Server::url() const {
  std::string host = state_->options.listen_address;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return (state_->options.http.tls ? "https://" : "http://") + host + ":" + std::to_string(state_->port);
}

std::string Server::agent_url() const {
  if (state_->agent_port == 0) return url();
  std::string host = loopback_of(state_->options.listen_address);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return (state_->options.http.tls ? "https://" : "http://") + host + ":" +
         std::to_string(state_->agent_port);
}

Metrics& Server::metrics() { return state_->metrics; }

void Server::notify_enqueued() { state_->queue_changed.notify(); }

namespace {

void sweep(Server::State& s) {
  auto expired = s.store.expire_leases(now_ms());
  if (expired && !expired->empty()) {
    s.queue_changed.notify();
    s.job_changed.notify();
  }
  if (!s.options.artifact_dir.empty() && std::chrono::steady_clock::now() >= s.next_artifact_sweep) {
    s.next_artifact_sweep = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(std::max<int64_t>(s.options.artifact_sweep_ms, 10));
    sweep_artifacts(s.ctx);
  }
  if (s.options.job_retention_ms > 0 && std::chrono::steady_clock::now() >= s.next_retention_sweep) {
    bool more = false;
    sweep_job_retention(s.ctx, more);
    // Twice per retention window (so a short one is kept to), once a minute at most, and at the
    // next tick while a backlog is left.
    int64_t every = std::max<int64_t>(std::min(s.options.job_retention_ms / 2, s.options.artifact_sweep_ms), 10);
    s.next_retention_sweep = std::chrono::steady_clock::now() +
                             std::chrono::milliseconds(more ? 0 : every);
  }
  sweep_expired_sandboxes(s.ctx, s.sandbox_calls);
  int64_t tick = std::max<int64_t>(s.options.lease_ms / 4, 25);
  if (s.options.job_retention_ms > 0) {
    tick = std::min(tick, std::max<int64_t>(s.options.job_retention_ms / 2, 25));
  }
  s.sweeper.expires_after(std::chrono::milliseconds(tick));
  s.sweeper.async_wait([&s](boost::system::error_code ec) {
    if (!ec) sweep(s);
  });
}

}  // namespace

}  // namespace boxcar::server
