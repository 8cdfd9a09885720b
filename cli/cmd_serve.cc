// boxcar serve: the CI service: the HTTP server on its store and, by default, one in-process
// agent that speaks the agent protocol over loopback exactly as a remote agent does.
// SIGTERM or SIGINT drains the agents (running jobs finish) and stops; a second one cancels.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <vector>

#include "agent/daemon/agent_daemon.h"
#include "agent/daemon/sandbox_service.h"
#include "agent/image_fetcher.h"
#include "base/duration.h"
#include "base/random_token.h"
#include "base/url.h"
#include "base/size.h"
#include "cli/agent_limit_flags.h"
#include "cli/api_token.h"
#include "base/tls_client.h"
#include "cli/commands.h"
#include "cli/connection_flags.h"
#include "cli/executor_choice.h"
#include "cli/flags.h"
#include "cli/egress_flags.h"
#include "cli/forge_status_flags.h"
#include "cli/image_flags.h"
#include "cli/pipeline_limit_flags.h"
#include "cli/preview_listen.h"
#include "cli/sandbox_flags.h"
#include "cli/secret_flag.h"
#include "cli/serve_data.h"
#include "server/secret_box.h"
#include "cli/serve_queue_flags.h"
#include "cli/step_limit_flags.h"
#include "server/server.h"
#include "http/tls_server_context.h"
#include "server/store/store.h"

namespace boxcar::cli {
namespace {

constexpr const char* kUsage =
    "usage: boxcar serve [--listen ADDR:PORT] [--db sqlite:PATH|postgres://...] [--data DIR]\n"
    "                    [--agents N] [--executor native|host|oci]\n"
    "                    [--oci-runtime runc|crun|runsc|PATH] [--webhook-secret-file F]\n"
    "                    [--gitlab-webhook-token-file F]   (default: the webhook secret)\n"
    "                    [--agent-token-file F] [--lease DURATION] [--allow-local-repos]\n"
    "                    [--api-token-file F] [--api-tokens FILE] [--public-read]\n"
    "                    [--public-url URL] [--secrets-key-file F]\n"
    "                    [--github-token-file F] [--github-api-url URL] [--gitea-token-file F]\n"
    "                    [--gitea-url URL]... [--gitlab-token-file F] [--gitlab-url URL]...\n"
    "                    [--tls-cert PEM --tls-key PEM]\n"
    "                    [--max-attempts N] [--job-retention DURATION] [--max-job-log SIZE]\n"
    "                    [--max-followers-per-job N] [--max-followers-per-client N]\n"
    "                    [--artifact-retention DURATION] [--artifact-max-file SIZE]\n"
    "                    [--artifact-max-job SIZE]   (defaults 720h, 1GiB, 4GiB)\n"
    "                    [--cache-size SIZE]   ([[step.cache]] entries kept by the server and\n"
    "                                           by each in-process agent, default 10GiB)\n"
    "                    [--preview-listen ADDR:PORT] [--preview-domain D]\n"
    "                                (defaults 127.0.0.1:8470, or a free port if taken; localhost)\n"
    "                    [--egress none|public|all] [--egress-allow CIDR[:PORT]]... [--allow-host-network]\n"
    "                    [--job-network-pool CIDR] [--job-network-pool6 CIDR]\n"
    "                    [--max-pipeline-steps N] [--max-pipeline-bytes SIZE]\n"
    "                    [--max-pipeline-depth N] [--max-pipeline-file SIZE]\n"
    "                    [--max-connections N] [--max-connections-per-client N]\n"
    "                    [--header-timeout DURATION] [--idle-timeout DURATION]\n"
    "                    [--preview-max-connections N] [--preview-max-connections-per-client N]\n"
    "                    [--sandbox-slots N] [--sandbox-listen ADDR:PORT] [--sandbox-advertise URL]\n"
    "                    [--sandbox-sync-interval DURATION] [--sandbox-lost-after DURATION]\n"
    "                    [--sandbox-warm N]\n"
    "                                (the first in-process agent hosts the sandbox API's sandboxes)\n"
    "  secrets: --webhook-secret, --gitlab-webhook-token, --agent-token, --api-token and --db\n"
    "  (a postgres URL holds a password) each also as --NAME-file FILE or from\n"
    "  BOXCAR_WEBHOOK_SECRET, BOXCAR_GITLAB_WEBHOOK_TOKEN, BOXCAR_AGENT_TOKEN, BOXCAR_API_TOKEN,\n"
    "  BOXCAR_DB; on the command line they are visible to every local user in ps\n"
    "  --gitlab-webhook-token: what GitLab sends in X-Gitlab-Token (default: the webhook secret)\n"
    "  --api-token: an admin token for the API and web UI; --api-tokens FILE: named tokens\n"
    "  with scopes (TOML [[token]]: name, sha256, scopes = read|write|admin|sandboxes); with\n"
    "  neither, serve writes an admin token to DATA/api-token (0600) and reuses it\n"
    "  --public-read: anyone may read jobs, logs and artifacts (not previews, not /metrics)\n"
    "  --public-url URL: the address users and forges reach this server by; requests naming\n"
    "  another host than it, the listen address or localhost are refused (DNS rebinding)\n"
    "  --secrets-key-file F: the AES-256-GCM key of the secrets this server keeps (`boxcar\n"
    "  secret set`): 64 hex digits, mode 0600; default DATA/secrets.key, made at the first start.\n"
    "  Back it up with the database: without it, the stored secrets cannot be read\n"
    "  --agent-token registers agents (each then holds its own credential); an admin token\n"
    "  lists and revokes them (`boxcar agents`, `boxcar agent revoke`)\n"
    "  --allow-local-repos: the in-process agents check out local paths and file:// URLs\n"
    "  --tls-cert, --tls-key: serve HTTPS only (TLS 1.2+) with this certificate chain and its\n"
    "  unencrypted key; the in-process agents trust exactly that certificate over loopback\n"
    "  --max-connections, --max-connections-per-client: connections the API holds at once, in\n"
    "  all and per client address (IPv6: per /64); more are answered 503 and closed at once\n"
    "  (defaults: from the open-file limit, at most 4096, and 256); the --preview-* pair caps\n"
    "  the preview port the same way (at most 1024, and 256)\n"
    "  --header-timeout (default 10s): a request header not complete by then closes the\n"
    "  connection; --idle-timeout (default 60s): how long a kept-alive connection may wait for\n"
    "  its next request (streams and uploads in progress are never cut)\n"
    "  the in-process agents' limits (each agent runs one job at a time):\n";

const SecretFlag kWebhookSecret{"--webhook-secret", "BOXCAR_WEBHOOK_SECRET"};
const SecretFlag kGitlabWebhookToken{"--gitlab-webhook-token", "BOXCAR_GITLAB_WEBHOOK_TOKEN"};
const SecretFlag kAgentToken{"--agent-token", "BOXCAR_AGENT_TOKEN"};
const SecretFlag kApiToken{"--api-token", "BOXCAR_API_TOKEN"};
// A database URL is a secret when it carries a password ("postgres://user:pw@host/db",
// "...?password=pw", "password=pw host=...").
bool db_has_password(const std::string& url) {
  return url.find("password") != std::string::npos || url_has_password(url);
}
const SecretFlag kDb{"--db", "BOXCAR_DB", db_has_password};

// "http(s)://host[:port]" without a path: what --public-url takes.
bool valid_public_url(const std::string& url) {
  auto parsed = parse_server_url(url);
  return parsed.ok() && parsed->prefix.empty();
}

// Every API token the server accepts: --api-token, --api-tokens, else the generated one.
Result<std::vector<server::ApiToken>> api_tokens(const ParsedFlags& flags,
                                                 const std::filesystem::path& data) {
  std::vector<server::ApiToken> tokens;
  auto secret = read_secret(flags, kApiToken, "serve");
  if (!secret) return secret.error();
  if (*secret) tokens.push_back(server::admin_token("api-token", **secret));
  if (auto file = flags.get("--api-tokens")) {
    auto listed = server::load_api_tokens(*file);
    if (!listed) return Error{"--api-tokens: " + listed.error().message};
    tokens.insert(tokens.end(), listed->begin(), listed->end());
  }
  if (!tokens.empty()) return tokens;
  auto file = api_token_file(data);
  auto generated = generated_api_token(file);
  if (!generated) return generated.error();
  std::fprintf(stderr,
               "boxcar serve: %s the admin API token in %s (clients: export "
               "BOXCAR_API_TOKEN=\"$(cat %s)\")\n",
               generated->created ? "wrote" : "using", file.c_str(), file.c_str());
  tokens.push_back(server::admin_token("api-token", generated->token));
  return tokens;
}

}  // namespace

int cmd_serve(const Args& args) {
  // Everything the server writes (database, WAL, blobs, spool files, tokens) is its own from
  // the first byte: no window in which another user could open it.
  ::umask(077);
  std::vector<FlagSpec> specs = {{"--listen", true, false, ""},
                                 {"--data", true, false, ""},
                                 {"--agents", true, false, ""},
                                 {"--executor", true, false, ""},
                                 {"--oci-runtime", true, false, ""},
                                 {"--api-tokens", true, false, ""},
                                 {"--public-read", false, false, ""},
                                 {"--public-url", true, false, ""},
                                 {"--secrets-key-file", true, false, ""},
                                 {"--lease", true, false, ""},
                                 {"--allow-local-repos", false, false, ""},
                                 {"--artifact-retention", true, false, ""},
                                 {"--artifact-max-file", true, false, ""},
                                 {"--artifact-max-job", true, false, ""},
                                 {"--cache-size", true, false, ""},
                                 {"--preview-listen", true, false, ""},
                                 {"--preview-domain", true, false, ""},
                                 {"--tls-cert", true, false, ""},
                                 {"--tls-key", true, false, ""},
                                 {"--help", false, false, "-h"}};
  for (auto& spec : api_connection_flag_specs()) specs.push_back(std::move(spec));
  for (auto& spec : preview_connection_flag_specs()) specs.push_back(std::move(spec));
  for (const auto* secret : {&kWebhookSecret, &kGitlabWebhookToken, &kAgentToken, &kApiToken, &kDb}) {
    for (auto& spec : secret_flag_specs(*secret)) specs.push_back(std::move(spec));
  }
  for (auto& spec : serve_queue_flag_specs()) specs.push_back(std::move(spec));
  for (auto& spec : forge_status_flag_specs()) specs.push_back(std::move(spec));
  for (auto& spec : pipeline_limit_flag_specs()) specs.push_back(std::move(spec));
  for (auto& spec : step_limit_flag_specs()) specs.push_back(std::move(spec));
  for (auto& spec : agent_limit_flag_specs()) specs.push_back(std::move(spec));
  specs = with_sandbox_flags(with_egress_flags(with_image_flags(std::move(specs))));
  auto flags = parse_flags(args, specs);
  if (!flags.ok()) return usage_error("serve", flags.error().message);
  if (flags->has("--help")) {
    std::fputs(kUsage, stdout);
    std::fputs(kExecutorUsage, stdout);
    std::fputs(kServeQueueUsage, stdout);
    std::fputs(kForgeStatusUsage, stdout);
    std::fputs(kPipelineLimitsUsage, stdout);
    std::fputs(kStepLimitsUsage, stdout);
    std::fputs(kAgentLimitsUsage, stdout);
    std::fputs(kImageFlagsUsage, stdout);
    std::fputs(kEgressFlagsUsage, stdout);
    std::fputs(kSandboxFlagsUsage, stdout);
    return kExitOk;
  }
  auto sandbox = read_sandbox_flags(*flags);
  if (!sandbox.ok()) return usage_error("serve", sandbox.error().message);
  auto step_limits = read_step_limits(*flags);
  if (!step_limits.ok()) return usage_error("serve", step_limits.error().message);
  auto max_image_write = read_max_image_write(*flags);
  if (!max_image_write.ok()) return usage_error("serve", max_image_write.error().message);
  auto agent_limits = read_agent_limits(*flags);
  if (!agent_limits.ok()) return usage_error("serve", agent_limits.error().message);
  if (!flags->positional.empty()) {
    return usage_error("serve", "unexpected argument \"" + flags->positional[0] + "\"");
  }

  server::ServerConfig opts;
  // Connection caps come from the open-file limit: take all the hard limit allows first.
  raise_open_file_limit();
  if (Status st = read_api_connection_flags(*flags, opts.http); !st.ok()) {
    return usage_error("serve", st.error().message);
  }
  auto preview_limits = preview_connection_limits(*flags);
  if (!preview_limits.ok()) return usage_error("serve", preview_limits.error().message);
  auto tls_cert = flags->get("--tls-cert");
  auto tls_key = flags->get("--tls-key");
  if (tls_cert.has_value() != tls_key.has_value()) {
    return usage_error("serve", "--tls-cert and --tls-key go together (the certificate chain "
                                "and its private key, both PEM)");
  }
  if (tls_cert) {
    auto context = server::load_tls_server_context(*tls_cert, *tls_key);
    if (!context.ok()) return report("serve", context.error());
    opts.http.tls = context.value();
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
                             std::pair{"--artifact-max-job", &opts.artifact_max_job},
                             std::pair{"--cache-size", &opts.cache_max_bytes}}) {
    if (auto v = flags->get(flag)) {
      auto n = parse_size(*v);
      if (!n || *n == 0) return usage_error("serve", std::string(flag) + " must be a size (like 1GiB), not \"" + *v + "\"");
      *limit = *n;
    }
  }
  if (Status st = apply_serve_queue_flags(*flags, opts); !st.ok()) {
    return usage_error("serve", st.error().message);
  }
  if (Status st = apply_forge_status_flags(*flags, opts); !st.ok()) {
    return usage_error("serve", st.error().message);
  }
  pipeline::Limits pipeline_limits;  // for the in-process agents
  if (Status st = read_pipeline_limit_flags(*flags, pipeline_limits); !st.ok()) {
    return usage_error("serve", st.error().message);
  }
  auto webhook_secret = read_secret(*flags, kWebhookSecret, "serve");
  if (!webhook_secret) return usage_error("serve", webhook_secret.error().message);
  opts.webhook_secret = webhook_secret->value_or("");
  auto gitlab_token = read_secret(*flags, kGitlabWebhookToken, "serve");
  if (!gitlab_token) return usage_error("serve", gitlab_token.error().message);
  opts.gitlab_webhook_token = gitlab_token->value_or("");
  auto agent_token = read_secret(*flags, kAgentToken, "serve");
  if (!agent_token) return usage_error("serve", agent_token.error().message);
  opts.agent_token = agent_token->value_or("");
  auto db_flag = read_secret(*flags, kDb, "serve");
  if (!db_flag) return usage_error("serve", db_flag.error().message);
  opts.public_read = flags->has("--public-read");
  opts.public_url = flags->get("--public-url").value_or("");
  while (!opts.public_url.empty() && opts.public_url.back() == '/') opts.public_url.pop_back();
  if (flags->has("--public-url") && !valid_public_url(opts.public_url)) {
    return usage_error("serve", "--public-url must be http(s)://HOST[:PORT] without a path (like "
                                "https://ci.example.com), not \"" + opts.public_url + "\"");
  }
  std::filesystem::path data = flags->get("--data").value_or(default_serve_data_dir().string());
  if (Status st = prepare_data_dir(data); !st.ok()) {
    std::fprintf(stderr, "boxcar serve: %s\n", st.error().message.c_str());
    return kExitInfra;
  }
  opts.artifact_dir = data / "artifacts";
  opts.cache_dir = data / "caches";
  std::string db = db_flag->value_or("sqlite:" + (data / "boxcar.db").string());
  if (db.rfind("sqlite:", 0) == 0) {
    std::string file = db.substr(7);
    for (const char* suffix : {"", "-wal", "-shm"}) {
      if (Status st = narrow_file(file + suffix); !st.ok()) {
        std::fprintf(stderr, "boxcar serve: %s\n", st.error().message.c_str());
        return kExitInfra;
      }
    }
  }
  auto tokens = api_tokens(*flags, data);
  if (!tokens) {
    std::fprintf(stderr, "boxcar serve: %s\n", tokens.error().message.c_str());
    return kExitUsage;
  }
  opts.api_tokens = std::move(*tokens);
  auto key_flag = flags->get("--secrets-key-file");
  auto key = server::load_secrets_key(key_flag ? std::filesystem::path(*key_flag) : data / "secrets.key",
                                      !key_flag);
  if (!key) {
    std::fprintf(stderr, "boxcar serve: %s\n", key.error().message.c_str());
    return kExitUsage;
  }
  if (key->created) {
    std::fprintf(stderr, "boxcar serve: wrote a new secrets key to %s: back it up with the "
                         "database (the secrets stored under it cannot be read without it)\n",
                 (data / "secrets.key").c_str());
  }
  opts.secrets_key = std::move(key->key);

  auto image_options = read_image_flags(*flags, data / "images");
  if (!image_options.ok()) return usage_error("serve", image_options.error().message);
  auto egress = read_egress_flags(*flags);
  if (!egress.ok()) return usage_error("serve", egress.error().message);
  std::optional<ExecutorChoice> chosen;
  if (agents > 0) {
    NativeChoiceOptions executor_options;
    executor_options.allow_host_network = egress->allow_host_network;
    executor_options.oci_runtime = flags->get("--oci-runtime");
    executor_options.max_image_write = *max_image_write;
    auto c = choose_executor(flags->get("--executor"), executor_options);
    if (!c.ok()) {
      return report("serve", c.error());
    }
    chosen = c.value();
  }

  auto store = server::open_store(db);
  if (!store.ok()) return report("serve", store.error());
  if (Status st = store.value()->migrate(); !st.ok()) {
    std::fprintf(stderr, "boxcar serve: migrating %s: %s\n", redact_url(db).c_str(), st.error().message.c_str());
    return kExitInfra;
  }
  if (opts.agent_token.empty() && agents > 0) {
    auto generated = random_token();
    if (!generated) {
      std::fprintf(stderr, "boxcar serve: %s\n", generated.error().message.c_str());
      return kExitInfra;
    }
    opts.agent_token = *generated;
    std::fprintf(stderr, "boxcar serve: no --agent-token: generated one for the in-process "
                         "agent; remote agents need --agent-token\n");
  }
  if (opts.webhook_secret.empty()) {
    std::fprintf(stderr, "boxcar serve: no --webhook-secret: %s webhooks are refused (401)\n",
                 opts.gitlab_webhook_token.empty() ? "all" : "GitHub and Gitea");
  }

  opts.agent_listener = agents > 0;  // the in-process agents' own port: a flood cannot starve them
  server::Server srv(*store.value(), opts);
  if (Status st = srv.start(); !st.ok()) {
    std::fprintf(stderr, "boxcar serve: %s\n", st.error().message.c_str());
    return kExitInfra;
  }
  std::fprintf(stderr, "boxcar serve: listening on %s (store %s, %ld in-process agent%s)\n",
               srv.url().c_str(), redact_url(db).c_str(), agents, agents == 1 ? "" : "s");

  boost::asio::io_context io;
  // One proxy for every in-process agent, bound only when there are agents to serve previews.
  std::unique_ptr<agent::PreviewProxy> proxy;
  if (agents > 0) {
    auto p = open_preview_proxy(io, flags->get("--preview-listen"), flags->get("--preview-domain"), "serve",
                                *preview_limits);
    if (!p.ok()) {
      srv.stop();
      return report("serve", p.error());
    }
    proxy = std::move(p.value());
    std::fprintf(stderr, "boxcar serve: previews of the in-process agents on port %u\n", proxy->port());
  }
  // One layer store for every in-process agent: an image is pulled once for them all.
  std::unique_ptr<agent::ImageFetcher> images;
  if (agents > 0) {
    auto fetcher = agent::ImageFetcher::make(io, {image_options->store, image_options->registry, {},
                                         image_options->pull_timeout});
    if (!fetcher.ok()) {
      srv.stop();
      return report("serve", fetcher.error());
    }
    images = std::move(fetcher.value());
  }
  // One pool of job networks (and one resolver) for every in-process agent.
  std::unique_ptr<network::NetworkHost> networks;
  if (agents > 0) {
    auto opened = open_job_networks(io, *egress, chosen->name != "host");
    if (!opened.ok()) {
      srv.stop();
      return report("serve", opened.error());
    }
    networks = std::move(opened.value());
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
  auto local_name = agent::default_agent_name();
  if (!local_name) {
    std::fprintf(stderr, "boxcar serve: %s\n", local_name.error().message.c_str());
    srv.stop();
    return kExitInfra;
  }
  std::vector<std::unique_ptr<agent::AgentDaemon>> daemons;
  long running = agents;
  int exit_code = kExitOk;
  for (long i = 0; i < agents; ++i) {
    agent::AgentConfig a;
    agent::AgentWiring w;
    a.server = srv.url();
    a.connect_url = srv.agent_url();
    a.token = opts.agent_token;
    a.tls = agent_tls;
    a.name = *local_name + "-local" + std::to_string(i);
    a.data_dir = data / ("agent-" + std::to_string(i));
    a.cache_max_bytes = opts.cache_max_bytes;
    w.make_executor = chosen->make;
    w.previews = proxy.get();
    w.images = images.get();
    w.networks = networks.get();
    if (i == 0) {  // one data plane and one set of slots per process
      a.sandbox_slots = sandbox->slots;
      a.sandbox_warm = sandbox->warm;
      a.sandbox_listen = sandbox->listen;
      a.sandbox_advertise = sandbox->advertise;
      a.sandbox_git_allow_private = sandbox->git_allow_private;
      // Three syncs fit in --sandbox-lost-after, so this agent never reads lost while it is up.
      a.sandbox_sync_interval = sandbox->sync_interval.value_or(Millis(opts.sandbox_lost_after_ms / 3));
      w.make_sandboxes = agent::sandbox_service_factory(proxy.get(), networks.get());
    }
    a.allow_local_repos = flags->has("--allow-local-repos");
    a.pipeline_limits = pipeline_limits;
    a.step_limits = *step_limits;
    a.workspace_limits = agent_limits->workspace;
    a.max_previews = agent_limits->max_previews;
    w.on_exit = [&](Status st) {
      if (!st.ok()) {
        std::fprintf(stderr, "boxcar serve: agent: %s\n", st.error().message.c_str());
        exit_code = kExitInfra;
      }
      if (--running == 0) {
        signals.cancel();
        if (proxy) proxy->close();  // its accept loop would keep io.run() going
      }
    };
    daemons.push_back(std::make_unique<agent::AgentDaemon>(io, a, w));
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
        for (auto& d : daemons) {
          if (signals_seen == 1) d->drain();
          else d->stop(signals_seen == 2 ? agent::Grace::step : agent::Grace::none);
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  io.run();
  srv.stop();
  return exit_code;
}

}  // namespace boxcar::cli
