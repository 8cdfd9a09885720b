// boxcar agent: claims jobs from a boxcar server and runs them (DESIGN.md sections 1 and 6).
// SIGTERM or SIGINT drains (running jobs finish, no new claims, exit 0 when idle); a second
// one cancels the running jobs and completes them as cancelled; a third kills their steps at once.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "agent/daemon/agent_daemon.h"
#include "agent/daemon/sandbox_service.h"
#include "agent/image_fetcher.h"
#include "base/url.h"
#include "base/tls_client.h"
#include "base/url.h"
#include "cli/agent_limit_flags.h"
#include "base/size.h"
#include "cli/commands.h"
#include "cli/connection_flags.h"
#include "cli/egress_flags.h"
#include "cli/executor_choice.h"
#include "cli/flags.h"
#include "cli/image_flags.h"
#include "cli/pipeline_limit_flags.h"
#include "cli/preview_listen.h"
#include "cli/sandbox_flags.h"
#include "cli/secret_flag.h"
#include "cli/step_limit_flags.h"

namespace boxcar::cli {
namespace {

constexpr const char* kUsage =
    "usage: boxcar agent --server URL --token-file F [--ca-file PEM] [--concurrency N] [--labels a,b]\n"
    "                    [--data DIR] [--executor native|host|oci]\n"
    "                    [--oci-runtime runc|crun|runsc|PATH] [--name NAME] [--jobs N]\n"
    "                    [--keep-failed] [--git-token-file F --git-token-hosts H1,H2]\n"
    "                    [--ssh-key FILE] [--allow-local-repos] [--cache-size SIZE]\n"
    "                    [--preview-listen ADDR:PORT] [--preview-domain D]\n"
    "                    [--max-pipeline-steps N] [--max-pipeline-bytes SIZE]\n"
    "                    [--max-pipeline-depth N] [--max-pipeline-file SIZE]\n"
    "                    [--default-*|--max-* LIMIT]... [--max-preview-ttl D]\n"
    "                    [--max-workspace SIZE] [--max-workspace-inodes N] [--max-previews N]\n"
    "                    [--preview-max-connections N] [--preview-max-connections-per-client N]\n"
    "                    [--egress none|public|all] [--egress-allow CIDR[:PORT]]... [--allow-host-network]\n"
    "                    [--job-network-pool CIDR] [--job-network-pool6 CIDR]\n"
    "                    [--sandbox-slots N] [--sandbox-listen ADDR:PORT] [--sandbox-advertise URL]\n"
    "                    [--sandbox-sync-interval DURATION]\n"
    "                    [--sandbox-warm N]\n"
    "  --concurrency N: jobs at once (default 1); 0 with --sandbox-slots: a sandbox-only agent\n"
    "  that claims no jobs\n"
    "  --token T or --token-file F or BOXCAR_AGENT_TOKEN; --git-token T or --git-token-file F\n"
    "  or BOXCAR_GIT_TOKEN (on the command line, secrets are visible to every local user in\n"
    "  ps); --git-token-hosts or BOXCAR_GIT_TOKEN_HOSTS: the git token goes only to https://\n"
    "  URLs of those hosts\n"
    "  the token is the server's registration token (its --agent-token): the agent registers\n"
    "  once and keeps its own credential in DIR/agent-credential.json; `boxcar agents` lists\n"
    "  agents, `boxcar agent revoke NAME` revokes one, `boxcar agent forget NAME` frees a\n"
    "  revoked name\n"
    "  --server https://...: the server's certificate is checked against --ca-file (or\n"
    "  BOXCAR_CA_FILE; default the system's CAs) and its name; http:// only to this machine\n"
    "  (localhost, 127.0.0.0/8, ::1): the token is never sent in clear over a network\n"
    "  --cache-size: [[step.cache]] entries kept in DIR/caches, least recently used removed\n"
    "  past it (default 10GiB)\n"
    "  --allow-local-repos: jobs may check out local paths and file:// URLs (and submodules)\n"
    "  previews of [[step.expose]] steps: http://{port}-{job}-{token}.{domain}:{port}/ on\n"
    "  --preview-listen (default 127.0.0.1:8470, or a free port if taken), domain localhost\n"
    "  --preview-max-connections, --preview-max-connections-per-client: connections the\n"
    "  preview port holds at once, in all and per client address; more get a 503 at once\n"
    "  (defaults: from the open-file limit, at most 1024, and 256)\n";

const SecretFlag kAgentToken{"--token", "BOXCAR_AGENT_TOKEN"};
const SecretFlag kGitToken{"--git-token", "BOXCAR_GIT_TOKEN"};

std::filesystem::path default_data_dir() {
  if (::geteuid() == 0) return "/var/lib/boxcar/agent";
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::filesystem::path(x) / "boxcar/agent";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".local/share/boxcar/agent";
  return "/tmp/boxcar-agent";
}

// "a,b,,c" -> a, b, c (labels, hosts).
std::vector<std::string> split_labels(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string label = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!label.empty()) out.push_back(label);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

int cmd_agent(const Args& args) {
  if (!args.empty() && (args[0] == "revoke" || args[0] == "forget")) {
    return cmd_agent_admin(args[0], Args(args.begin() + 1, args.end()));
  }
  std::vector<FlagSpec> specs = {{"--server", true, false, ""},
                                 {"--ca-file", true, false, ""},
                                 {"--concurrency", true, false, "-c"},
                                 {"--labels", true, false, ""},
                                 {"--data", true, false, ""},
                                 {"--executor", true, false, ""},
                                 {"--oci-runtime", true, false, ""},
                                 {"--name", true, false, ""},
                                 {"--jobs", true, false, "-j"},
                                 {"--keep-failed", false, false, ""},
                                 {"--git-token-hosts", true, false, ""},
                                 {"--allow-local-repos", false, false, ""},
                                 {"--ssh-key", true, false, ""},
                                 {"--cache-size", true, false, ""},
                                 {"--preview-listen", true, false, ""},
                                 {"--preview-domain", true, false, ""},
                                 {"--help", false, false, "-h"}};
  for (auto& spec : preview_connection_flag_specs()) specs.push_back(std::move(spec));
  for (const auto* secret : {&kAgentToken, &kGitToken}) {
    for (auto& spec : secret_flag_specs(*secret)) specs.push_back(std::move(spec));
  }
  for (auto& spec : pipeline_limit_flag_specs()) specs.push_back(std::move(spec));
  for (auto& spec : step_limit_flag_specs()) specs.push_back(std::move(spec));
  for (auto& spec : agent_limit_flag_specs()) specs.push_back(std::move(spec));
  specs = with_sandbox_flags(with_egress_flags(with_image_flags(std::move(specs))));
  auto flags = parse_flags(args, specs);
  if (!flags.ok()) return usage_error("agent", flags.error().message);
  if (flags->has("--help")) {
    std::fputs(kUsage, stdout);
    std::fputs(kExecutorUsage, stdout);
    std::fputs(kPipelineLimitsUsage, stdout);
    std::fputs(kStepLimitsUsage, stdout);
    std::fputs(kAgentLimitsUsage, stdout);
    std::fputs(kImageFlagsUsage, stdout);
    std::fputs(kEgressFlagsUsage, stdout);
    std::fputs(kSandboxFlagsUsage, stdout);
    return kExitOk;
  }
  if (!flags->positional.empty()) {
    return usage_error("agent", "unexpected argument \"" + flags->positional[0] + "\"");
  }
  agent::AgentConfig opts;
  agent::AgentWiring wiring;
  opts.server = flags->get("--server").value_or("");
  if (opts.server.empty()) return usage_error("agent", "--server URL is required (e.g. https://ci.example:8443)");
  auto url = parse_server_url(opts.server);
  if (!url.ok()) return usage_error("agent", url.error().message);
  auto token = read_secret(*flags, kAgentToken, "agent");
  if (!token) return usage_error("agent", token.error().message);
  opts.token = token->value_or("");
  if (opts.token.empty()) {
    return usage_error("agent", "the agent token is required: BOXCAR_AGENT_TOKEN, --token-file F or --token T");
  }
  if (Status st = check_token_transport(*url, "agent token"); !st.ok()) {
    return usage_error("agent", st.error().message);
  }
  if (url->tls) {
    const char* env_ca = std::getenv("BOXCAR_CA_FILE");
    auto tls = TlsClient::create({flags->get("--ca-file").value_or(env_ca ? env_ca : "")});
    if (!tls.ok()) return usage_error("agent", tls.error().message + " (--ca-file or BOXCAR_CA_FILE)");
    opts.tls = tls.value();
  }
  auto sandbox = read_sandbox_flags(*flags);
  if (!sandbox.ok()) return usage_error("agent", sandbox.error().message);
  opts.sandbox_slots = sandbox->slots;
  opts.sandbox_warm = sandbox->warm;
  opts.sandbox_listen = sandbox->listen;
  opts.sandbox_advertise = sandbox->advertise;
  opts.sandbox_git_allow_private = sandbox->git_allow_private;
  if (sandbox->sync_interval) opts.sandbox_sync_interval = *sandbox->sync_interval;
  if (auto c = flags->get("--concurrency"); c && *c == "0") {
    if (opts.sandbox_slots == 0) {
      return usage_error("agent", "--concurrency 0 claims no jobs, and --sandbox-slots 0 hosts no sandboxes: "
                                  "the agent would do nothing (give --sandbox-slots N for a sandbox-only agent)");
    }
    opts.concurrency = 0;
  } else if (c && !parse_count(*c, 256, opts.concurrency)) {
    return usage_error("agent", "--concurrency must be a number from 1 to 256 (0: sandboxes only), not \"" + *c + "\"");
  }
  if (auto j = flags->get("--jobs"); j && !parse_count(*j, 1024, opts.step_jobs)) {
    return usage_error("agent", "--jobs must be a number from 1 to 1024, not \"" + *j + "\"");
  }
  if (auto l = flags->get("--labels")) opts.labels = split_labels(*l);
  opts.name = flags->get("--name").value_or("");
  opts.data_dir = flags->get("--data").value_or(default_data_dir().string());
  opts.keep_failed_workspaces = flags->has("--keep-failed");
  if (auto size = flags->get("--cache-size")) {
    auto n = parse_size(*size);
    if (!n || *n < (1u << 20)) {
      return usage_error("agent", "--cache-size must be a size of at least 1MiB (like 10GiB), not \"" + *size + "\"");
    }
    opts.cache_max_bytes = *n;
  }
  auto step_limits = read_step_limits(*flags);
  if (!step_limits.ok()) return usage_error("agent", step_limits.error().message);
  opts.step_limits = *step_limits;
  auto max_image_write = read_max_image_write(*flags);
  if (!max_image_write.ok()) return usage_error("agent", max_image_write.error().message);
  auto agent_limits = read_agent_limits(*flags);
  if (!agent_limits.ok()) return usage_error("agent", agent_limits.error().message);
  opts.workspace_limits = agent_limits->workspace;
  opts.max_previews = agent_limits->max_previews;
  auto git_token = read_secret(*flags, kGitToken, "agent");
  if (!git_token) return usage_error("agent", git_token.error().message);
  opts.git_token = git_token->value_or("");
  const char* env_hosts = std::getenv("BOXCAR_GIT_TOKEN_HOSTS");
  opts.git_token_hosts = split_labels(flags->get("--git-token-hosts").value_or(env_hosts ? env_hosts : ""));
  if (!opts.git_token.empty() && opts.git_token_hosts.empty()) {
    return usage_error("agent", "--git-token needs --git-token-hosts HOST,... (or BOXCAR_GIT_TOKEN_HOSTS): "
                                "jobs name their repositories, and the token must not go to whatever host they name");
  }
  for (const auto& h : opts.git_token_hosts) {
    if (h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
        std::string::npos) {
      return usage_error("agent", "--git-token-hosts takes host names (like github.com), not \"" + h + "\"");
    }
  }
  opts.allow_local_repos = flags->has("--allow-local-repos");
  if (Status st = read_pipeline_limit_flags(*flags, opts.pipeline_limits); !st.ok()) {
    return usage_error("agent", st.error().message);
  }
  opts.ssh_key = flags->get("--ssh-key").value_or("");
  if (!opts.ssh_key.empty() && !std::filesystem::is_regular_file(opts.ssh_key)) {
    return usage_error("agent", "--ssh-key " + opts.ssh_key.string() + " is not a file");
  }

  auto egress = read_egress_flags(*flags);
  if (!egress.ok()) return usage_error("agent", egress.error().message);
  NativeChoiceOptions executor_options;
  executor_options.allow_host_network = egress->allow_host_network;
  executor_options.oci_runtime = flags->get("--oci-runtime");
  executor_options.max_image_write = *max_image_write;
  auto chosen = choose_executor(flags->get("--executor"), executor_options);
  if (!chosen.ok()) {
    return report("agent", chosen.error());
  }
  wiring.make_executor = chosen->make;
  auto image_options = read_image_flags(*flags, opts.data_dir / "images");
  if (!image_options.ok()) return usage_error("agent", image_options.error().message);

  // The preview port's caps come from the open-file limit: take all the hard limit allows first.
  raise_open_file_limit();
  auto preview_limits = preview_connection_limits(*flags);
  if (!preview_limits.ok()) return usage_error("agent", preview_limits.error().message);
  boost::asio::io_context io;
  auto proxy = open_preview_proxy(io, flags->get("--preview-listen"), flags->get("--preview-domain"), "agent",
                                  *preview_limits);
  if (!proxy.ok()) {
    return report("agent", proxy.error());
  }
  wiring.previews = proxy.value().get();
  auto images = agent::ImageFetcher::make(io, {image_options->store, image_options->registry, {},
                                         image_options->pull_timeout});
  if (!images.ok()) return report("agent", images.error());
  wiring.images = images.value().get();
  auto networks = open_job_networks(io, *egress, chosen->name != "host");
  if (!networks.ok()) return report("agent", networks.error());
  wiring.networks = networks.value().get();
  wiring.make_sandboxes = agent::sandbox_service_factory(proxy.value().get(), wiring.networks);
  std::fprintf(stderr, "boxcar agent: previews on port %u\n", proxy.value()->port());
  int exit_code = kExitOk;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  wiring.on_exit = [&](Status st) {
    if (!st.ok()) {
      std::fprintf(stderr, "boxcar agent: %s\n", st.error().message.c_str());
      exit_code = kExitInfra;
    }
    signals.cancel();
    proxy.value()->close();  // its accept loop would keep io.run() going
  };
  agent::AgentDaemon daemon(io, opts, wiring);
  if (Status st = daemon.start(); !st.ok()) {
    std::fprintf(stderr, "boxcar agent: %s\n", st.error().message.c_str());
    return kExitInfra;
  }

  int signals_seen = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        ++signals_seen;
        if (signals_seen == 1) {
          std::fprintf(stderr, "boxcar agent: draining: finishing running jobs, claiming no more "
                               "(again to cancel them)\n");
          daemon.drain();
        } else {
          std::fprintf(stderr, signals_seen == 2 ? "boxcar agent: cancelling running jobs (again to kill them)\n"
                                                 : "boxcar agent: killing running jobs\n");
          daemon.stop(signals_seen == 2 ? agent::Grace::step : agent::Grace::none);
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  io.run();
  return exit_code;
}

}  // namespace boxcar::cli
