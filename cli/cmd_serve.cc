// boxcar serve: the CI service: the HTTP server on its store and, by default, one in-process
// agent that speaks the agent protocol over loopback exactly as a remote agent does.
// SIGTERM or SIGINT drains the agents (running jobs finish) and stops; a second one cancels.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <openssl/rand.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <vector>

#include "agent/agent_daemon.h"
#include "base/duration.h"
#include "base/size.h"
#include "base/tls_client.h"
#include "cli/commands.h"
#include "cli/executor_choice.h"
#include "cli/flags.h"
#include "cli/preview_listen.h"
#include "server/server.h"
#include "server/tls_server_context.h"
#include "server/store.h"

namespace boxcar::cli {
namespace {

constexpr const char* kUsage =
    "usage: boxcar serve [--listen ADDR:PORT] [--db sqlite:PATH|postgres://...] [--data DIR]\n"
    "                    [--agents N] [--executor native|host] [--webhook-secret S]\n"
    "                    [--agent-token T] [--lease DURATION] [--allow-local-repos]\n"
    "                    [--tls-cert PEM --tls-key PEM]\n"
    "                    [--artifact-retention DURATION] [--artifact-max-file SIZE]\n"
    "                    [--artifact-max-job SIZE]   (defaults 720h, 1GiB, 4GiB)\n"
    "                    [--preview-listen ADDR:PORT] [--preview-domain D]\n"
    "                                (defaults 127.0.0.1:8470, or a free port if taken; localhost)\n"
    "  --webhook-secret, --agent-token also from BOXCAR_WEBHOOK_SECRET, BOXCAR_AGENT_TOKEN\n"
    "  --allow-local-repos: the in-process agents check out local paths and file:// URLs\n"
    "  --tls-cert, --tls-key: serve HTTPS only (TLS 1.2+) with this certificate chain and its\n"
    "  unencrypted key; the in-process agents trust exactly that certificate over loopback\n";

std::filesystem::path default_data_dir() {
  if (::geteuid() == 0) return "/var/lib/boxcar";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".local/share/boxcar";
  return "/tmp/boxcar";
}

std::string random_token() {
  unsigned char bytes[24];
  RAND_bytes(bytes, sizeof bytes);
  std::string hex;
  char buf[3];
  for (unsigned char b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    hex += buf;
  }
  return hex;
}

std::string from_env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

int cmd_serve(const Args& args) {
  auto flags = parse_flags(args, {{"--listen", true, false, ""},
                                  {"--db", true, false, ""},
                                  {"--data", true, false, ""},
                                  {"--agents", true, false, ""},
                                  {"--executor", true, false, ""},
                                  {"--webhook-secret", true, false, ""},
                                  {"--agent-token", true, false, ""},
                                  {"--lease", true, false, ""},
                                  {"--allow-local-repos", false, false, ""},
                                  {"--artifact-retention", true, false, ""},
                                  {"--artifact-max-file", true, false, ""},
                                  {"--artifact-max-job", true, false, ""},
                                  {"--preview-listen", true, false, ""},
                                  {"--preview-domain", true, false, ""},
                                  {"--tls-cert", true, false, ""},
                                  {"--tls-key", true, false, ""},
                                  {"--help", false, false, "-h"}});
  if (!flags.ok()) return usage_error("serve", flags.error().message);
  if (flags->has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (!flags->positional.empty()) {
    return usage_error("serve", "unexpected argument \"" + flags->positional[0] + "\"");
  }

  server::ServerOptions opts;
  auto tls_cert = flags->get("--tls-cert");
  auto tls_key = flags->get("--tls-key");
  if (tls_cert.has_value() != tls_key.has_value()) {
    return usage_error("serve", "--tls-cert and --tls-key go together (the certificate chain "
                                "and its private key, both PEM)");
  }
  if (tls_cert) {
    auto context = server::load_tls_server_context(*tls_cert, *tls_key);
    if (!context.ok()) return usage_error("serve", context.error().message);
    opts.tls = context.value();
  }
  std::string listen = flags->get("--listen").value_or("127.0.0.1:8080");
  size_t colon = listen.rfind(':');
  char* end = nullptr;
  long port = colon == std::string::npos ? -1 : std::strtol(listen.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || port < 0 || port > 65535 || *end != 0) {
    return usage_error("serve", "--listen must be ADDR:PORT (like 127.0.0.1:8080), not \"" + listen + "\"");
  }
  opts.listen_address = listen.substr(0, colon);
  opts.port = static_cast<uint16_t>(port);
  long agents = 1;
  if (auto a = flags->get("--agents")) {
    agents = std::strtol(a->c_str(), &end, 10);
    if (a->empty() || *end != 0 || agents < 0 || agents > 64) {
      return usage_error("serve", "--agents must be a number from 0 to 64, not \"" + *a + "\"");
    }
  }
  if (auto l = flags->get("--lease")) {
    auto d = parse_duration(*l);
    if (!d || *d < Millis(1000)) {
      return usage_error("serve", "--lease must be a duration of at least 1s (like 60s), not \"" + *l + "\"");
    }
    opts.lease_ms = d->count();
  }
  if (auto r = flags->get("--artifact-retention")) {
    auto d = parse_duration(*r);
    if (!d || *d < Millis(1000)) {
      return usage_error("serve", "--artifact-retention must be a duration (like 720h), not \"" + *r + "\"");
    }
    opts.artifact_retention_ms = d->count();
  }
  for (auto [flag, limit] : {std::pair{"--artifact-max-file", &opts.artifact_max_file},
                             std::pair{"--artifact-max-job", &opts.artifact_max_job}}) {
    if (auto v = flags->get(flag)) {
      auto n = parse_size(*v);
      if (!n || *n == 0) return usage_error("serve", std::string(flag) + " must be a size (like 1GiB), not \"" + *v + "\"");
      *limit = *n;
    }
  }
  opts.webhook_secret = flags->get("--webhook-secret").value_or(from_env("BOXCAR_WEBHOOK_SECRET"));
  opts.agent_token = flags->get("--agent-token").value_or(from_env("BOXCAR_AGENT_TOKEN"));
  std::filesystem::path data = flags->get("--data").value_or(default_data_dir().string());
  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  if (ec) {
    std::fprintf(stderr, "boxcar serve: cannot create data directory %s: %s\n", data.c_str(),
                 ec.message().c_str());
    return kExitInfra;
  }
  opts.artifact_dir = data / "artifacts";
  std::string db = flags->get("--db").value_or("sqlite:" + (data / "boxcar.db").string());

  std::optional<ExecutorChoice> chosen;
  if (agents > 0) {
    auto c = choose_executor(flags->get("--executor"));
    if (!c.ok()) {
      std::fprintf(stderr, "boxcar serve: %s\n", c.error().message.c_str());
      return c.error().err == kExitUsage ? kExitUsage : kExitInfra;
    }
    chosen = c.value();
  }

  auto store = server::open_store(db);
  if (!store.ok()) {
    std::fprintf(stderr, "boxcar serve: %s\n", store.error().message.c_str());
    return db.rfind("sqlite:", 0) == 0 || db.rfind("postgres", 0) == 0 ? kExitInfra : kExitUsage;
  }
  if (Status st = store.value()->migrate(); !st.ok()) {
    std::fprintf(stderr, "boxcar serve: migrating %s: %s\n", db.c_str(), st.error().message.c_str());
    return kExitInfra;
  }
  if (opts.agent_token.empty() && agents > 0) {
    opts.agent_token = random_token();
    std::fprintf(stderr, "boxcar serve: no --agent-token: generated one for the in-process "
                         "agent; remote agents need --agent-token\n");
  }
  if (opts.webhook_secret.empty()) {
    std::fprintf(stderr, "boxcar serve: no --webhook-secret: webhooks are refused (401)\n");
  }

  server::Server srv(*store.value(), opts);
  if (Status st = srv.start(); !st.ok()) {
    std::fprintf(stderr, "boxcar serve: %s\n", st.error().message.c_str());
    return kExitInfra;
  }
  std::fprintf(stderr, "boxcar serve: listening on %s (store %s, %ld in-process agent%s)\n",
               srv.url().c_str(), db.c_str(), agents, agents == 1 ? "" : "s");

  boost::asio::io_context io;
  // One proxy for every in-process agent, bound only when there are agents to serve previews.
  std::unique_ptr<agent::PreviewProxy> proxy;
  if (agents > 0) {
    auto p = open_preview_proxy(io, flags->get("--preview-listen"), flags->get("--preview-domain"), "serve");
    if (!p.ok()) {
      std::fprintf(stderr, "boxcar serve: %s\n", p.error().message.c_str());
      srv.stop();
      return p.error().err == kExitUsage ? kExitUsage : kExitInfra;
    }
    proxy = std::move(p.value());
    std::fprintf(stderr, "boxcar serve: previews of the in-process agents on port %u\n", proxy->port());
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  // The in-process agents reach the server over loopback, an address its certificate need not
  // name: they trust that one certificate, not a CA's word for a name.
  std::shared_ptr<TlsClient> agent_tls;
  if (tls_cert && agents > 0) {
    auto pinned = TlsClient::create({*tls_cert, /*pinned=*/true});
    if (!pinned.ok()) {
      std::fprintf(stderr, "boxcar serve: %s\n", pinned.error().message.c_str());
      srv.stop();
      return kExitUsage;
    }
    agent_tls = pinned.value();
  }
  std::vector<std::unique_ptr<agent::AgentDaemon>> daemons;
  long running = agents;
  int exit_code = kExitOk;
  for (long i = 0; i < agents; ++i) {
    agent::AgentOptions a;
    a.server = srv.url();
    a.token = opts.agent_token;
    a.tls = agent_tls;
    a.name = agent::default_agent_name() + "-local" + std::to_string(i);
    a.data_dir = data / ("agent-" + std::to_string(i));
    a.make_executor = chosen->make;
    a.previews = proxy.get();
    a.allow_local_repos = flags->has("--allow-local-repos");
    a.on_exit = [&](Status st) {
      if (!st.ok()) {
        std::fprintf(stderr, "boxcar serve: agent: %s\n", st.error().message.c_str());
        exit_code = kExitInfra;
      }
      if (--running == 0) {
        signals.cancel();
        if (proxy) proxy->close();  // its accept loop would keep io.run() going
      }
    };
    daemons.push_back(std::make_unique<agent::AgentDaemon>(io, a));
    if (Status st = daemons.back()->start(); !st.ok()) {
      std::fprintf(stderr, "boxcar serve: agent: %s\n", st.error().message.c_str());
      return kExitInfra;
    }
  }

  int signals_seen = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& sig_ec, int) {
        if (sig_ec) return;
        ++signals_seen;
        if (agents == 0) return;  // nothing to drain: io.run() returns once signals is idle
        std::fprintf(stderr, signals_seen == 1
                                 ? "boxcar serve: draining: running jobs finish, no new claims "
                                   "(again to cancel them)\n"
                                 : "boxcar serve: cancelling running jobs\n");
        for (auto& d : daemons) signals_seen == 1 ? d->drain() : d->stop();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  io.run();
  srv.stop();
  return exit_code;
}

}  // namespace boxcar::cli
