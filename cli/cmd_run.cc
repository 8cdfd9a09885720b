// boxcar run: one pipeline on this machine, no server. Results under .boxcar/runs/<run-id>/.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "agent/image_fetcher.h"
#include "agent/local/local_run.h"
#include "agent/step_setup.h"
#include "agent/step_limits.h"
#include "previews/preview_proxy.h"
#include "base/size.h"
#include "cli/commands.h"
#include "cli/egress_flags.h"
#include "cli/executor_choice.h"
#include "cli/flags.h"
#include "cli/git_head.h"
#include "cli/pipeline_file.h"
#include "cli/image_flags.h"
#include "cli/preview_listen.h"
#include "cli/pull_progress.h"
#include "cli/step_limit_flags.h"
#include "pipeline/load.h"

namespace boxcar::cli {
namespace {

constexpr const char* kUsage =
    "usage: boxcar run [--file F] [--workspace DIR] [--jobs N] [--executor native|host|oci]\n"
    "                  [--oci-runtime runc|crun|runsc|PATH] [--allow-host-network]\n"
    "                  [--secret NAME=VALUE]... [--keep-failed] [--json] [--quiet] [--timestamps]\n"
    "                  [--log-limit SIZE] [--branch B] [--event E] [--cache-size SIZE]\n"
    "                  [--preview-listen ADDR:PORT] [--preview-domain D]\n"
    "                  [--default-memory|--default-tmp|--max-memory|--max-tmp SIZE]\n"
    "                  [--default-pids|--default-cpus|--max-pids|--max-cpus N] [--max-preview-ttl D]\n"
    "                  [--image-cache DIR] [--image-cache-size SIZE] [--insecure-registry HOST:PORT]...\n"
    "                  [--registry-auth FILE] [--image-pull-timeout DURATION]\n"
    "                  [--egress none|public|all] [--egress-allow CIDR[:PORT]]... [--job-network-pool CIDR]\n"
    "  --cache-size: [[step.cache]] entries kept beside the image cache (DIR/../caches), least\n"
    "  recently used removed past it (default 10GiB)\n"
    "  previews of [[step.expose]] steps are served on --preview-listen: default 127.0.0.1:8470,\n"
    "  or a free port of 127.0.0.1 (printed) when that one is taken\n";

bool valid_env_name(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

int cmd_run(const Args& args) {
  auto flags = parse_flags(args, with_egress_flags(with_image_flags(with_step_limit_flags({{"--file", true, false, "-f"},
                                  {"--workspace", true, false, ""},
                                  {"--jobs", true, false, "-j"},
                                  {"--executor", true, false, ""},
                                  {"--oci-runtime", true, false, ""},
                                  {"--secret", true, true, ""},
                                  {"--keep-failed", false, false, ""},
                                  {"--json", false, false, ""},
                                  {"--timestamps", false, false, ""},
                                  {"--quiet", false, false, "-q"},
                                  {"--log-limit", true, false, ""},
                                  {"--branch", true, false, ""},
                                  {"--event", true, false, ""},
                                  {"--cache-size", true, false, ""},
                                  {"--preview-listen", true, false, ""},
                                  {"--preview-domain", true, false, ""},
                                  {"--help", false, false, "-h"}}))));
  if (!flags.ok()) return usage_error("run", flags.error().message);
  if (flags->has("--help")) {
    std::fputs(kUsage, stdout);
    std::fputs(kExecutorUsage, stdout);
    std::fputs(kStepLimitsUsage, stdout);
    std::fputs(kImageFlagsUsage, stdout);
    std::fputs(kEgressFlagsUsage, stdout);
    return kExitOk;
  }
  if (!flags->positional.empty()) {
    return usage_error("run", "unexpected argument \"" + flags->positional[0] + "\"");
  }

  size_t jobs = std::max(1u, std::thread::hardware_concurrency());
  if (auto j = flags->get("--jobs")) {
    char* end = nullptr;
    long n = std::strtol(j->c_str(), &end, 10);
    if (j->empty() || *end != 0 || n < 1 || n > 1024) {
      return usage_error("run", "--jobs must be a number from 1 to 1024, not \"" + *j + "\"");
    }
    jobs = static_cast<size_t>(n);
  }
  uint64_t log_limit = 64ull << 20;
  if (auto l = flags->get("--log-limit")) {
    auto parsed = parse_size(*l);
    if (!parsed || *parsed == 0) {
      return usage_error("run", "--log-limit must be a size like 64MiB or 2GiB, not \"" + *l + "\"");
    }
    log_limit = *parsed;
  }
  std::map<std::string, std::string> secrets;
  for (const auto& s : flags->all("--secret")) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || !valid_env_name(s.substr(0, eq))) {
      return usage_error("run", "--secret must be NAME=VALUE with NAME like NPM_TOKEN, not \"" +
                                    s.substr(0, s.find('=')) + "\"");
    }
    secrets[s.substr(0, eq)] = s.substr(eq + 1);
  }
  std::string event = flags->get("--event").value_or("manual");
  if (event != "push" && event != "pull_request" && event != "tag" && event != "manual") {
    return usage_error("run", "--event must be push, pull_request, tag or manual, not \"" + event + "\"");
  }

  auto limits = read_step_limits(*flags);
  if (!limits.ok()) return usage_error("run", limits.error().message);
  auto max_image_write = read_max_image_write(*flags);
  if (!max_image_write.ok()) return usage_error("run", max_image_write.error().message);
  auto image_options = read_image_flags(*flags, default_image_cache());
  if (!image_options.ok()) return usage_error("run", image_options.error().message);

  std::error_code ec;
  std::filesystem::path workspace = flags->get("--workspace").value_or(".");
  workspace = std::filesystem::canonical(workspace, ec);
  if (ec || !std::filesystem::is_directory(workspace)) {
    return usage_error("run", "workspace \"" + flags->get("--workspace").value_or(".") +
                                  "\" is not a directory");
  }

  auto loaded = load_pipeline_file(flags->get("--file"), workspace);
  if (!loaded) return kExitUsage;

  // In a local run, declared secrets not given with --secret come from the environment; one
  // in neither fails its step before it runs (the engine names it), and the others still run.
  for (const auto& step : loaded->pipeline.steps) {
    for (const auto& name : step.secrets) {
      if (secrets.count(name)) continue;
      if (const char* v = std::getenv(name.c_str())) secrets[name] = v;
    }
  }

  auto egress = read_egress_flags(*flags);
  if (!egress.ok()) return usage_error("run", egress.error().message);
  NativeChoiceOptions native;
  native.allow_host_network = egress->allow_host_network;
  native.oci_runtime = flags->get("--oci-runtime");
  native.max_image_write = *max_image_write;
  auto chosen = choose_executor(flags->get("--executor"), native);
  if (!chosen.ok()) {
    return report("run", chosen.error());
  }

  auto expanded = pipeline::expand(loaded->pipeline);
  if (auto errors = agent::step_limit_errors(expanded, *limits); !errors.empty()) {
    for (const auto& e : errors) std::fprintf(stderr, "boxcar run: %s\n", describe(e).c_str());
    return kExitUsage;
  }
  GitHead head = read_git_head(workspace);
  agent::LocalRunOptions run;
  run.workspace = workspace;
  run.jobs = jobs;
  run.secrets = std::move(secrets);
  run.log_limit = log_limit;
  run.commit = head.commit;
  run.branch = flags->get("--branch").value_or(head.branch);
  run.event = event;
  // As on the server: every step gets these, empty where the repository does not say.
  run.run_env = {{"BOXCAR_REF", head.ref}, {"BOXCAR_TAG", head.tag}, {"BOXCAR_REPO", head.origin},
                 {"BOXCAR_PR_NUMBER", ""}, {"BOXCAR_PR_BASE", ""}, {"BOXCAR_PR_HEAD", ""}};
  run.limits = *limits;
  run.json = flags->has("--json");
  run.timestamps = flags->has("--timestamps");
  run.quiet = flags->has("--quiet");
  run.keep_failed = flags->has("--keep-failed");
  // Layers and cache entries beside the image cache: on disk (not /run's memory), and never
  // inside the repository (its checkout is every step's lowest layer; overlayfs refuses layers
  // inside each other).
  std::filesystem::path beside_images = std::filesystem::weakly_canonical(image_options->store.dir, ec).parent_path();
  if (auto rel = beside_images.lexically_relative(workspace); !rel.empty() && *rel.begin() != "..") {
    // /var/tmp is everyone's: a directory of this user's own, which nobody else may have made.
    beside_images = "/var/tmp/boxcar-" + std::to_string(::geteuid());
    struct stat st{};
    if (::mkdir(beside_images.c_str(), 0700) != 0 && errno != EEXIST) {
      return report("run", Error{"cannot create " + beside_images.string() + ": " + std::strerror(errno), errno});
    }
    if (::lstat(beside_images.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() ||
        (st.st_mode & 077) != 0) {
      return report("run", Error{beside_images.string() + " is not a private directory of this user's (0700, "
                                 "owned by uid " + std::to_string(::geteuid()) + "): remove it, or give "
                                 "--image-cache a directory outside the repository"});
    }
  }
  run.layers_base = beside_images / "layers";
  // [[step.cache]] entries: beside the image cache too, opened only for a pipeline that has one.
  std::optional<agent::CacheStore> caches;
  bool any_cache = false;
  for (const auto& cs : expanded.steps) any_cache = any_cache || !cs.step.caches.empty();
  if (any_cache) {
    agent::CacheStoreOptions cache_options;
    cache_options.dir = beside_images / "caches";
    if (auto size = flags->get("--cache-size")) {
      auto n = parse_size(*size);
      if (!n || *n < (1u << 20)) {
        return usage_error("run", "--cache-size must be a size of at least 1MiB (like 10GiB), not \"" + *size + "\"");
      }
      cache_options.max_bytes = *n;
    }
    auto opened = agent::CacheStore::open(std::move(cache_options));
    if (!opened.ok()) return report("run", opened.error());
    caches.emplace(std::move(*opened));
    run.caches = &*caches;
    run.repository = head.origin.empty() ? workspace.string() : head.origin;
  }

  boost::asio::io_context io;
  auto executor = chosen->make(io);
  // Only a pipeline with [[step.expose]] binds the preview port.
  std::unique_ptr<agent::PreviewProxy> proxy;
  bool exposes = false;
  for (const auto& cs : expanded.steps) exposes = exposes || !cs.step.expose.empty();
  if (exposes) {
    auto opened = open_preview_proxy(io, flags->get("--preview-listen"), flags->get("--preview-domain"), "run");
    if (!opened.ok()) {
      return report("run", opened.error());
    }
    proxy = std::move(opened.value());
    run.previews = proxy.get();
    run.released = [&proxy] { proxy->close(); };
  }

  // Only a pipeline with images opens the image store.
  std::unique_ptr<agent::ImageFetcher> images;
  if (!agent::image_refs(expanded).empty()) {
    // A terminal sees each layer's download redrawn in place; otherwise the run's notices
    // ("pulling", "ready after") say enough, and --json keeps its stream to run events.
    images::PullProgress progress;
    if (!run.json && PullProgressPrinter::mode_for(stderr, false) == PullProgressPrinter::Mode::terminal) {
      auto printer = std::make_shared<PullProgressPrinter>(stderr, PullProgressPrinter::Mode::terminal);
      progress = [printer](const images::PullEvent& e) { (*printer)(e); };
    }
    auto fetcher = agent::ImageFetcher::make(io, {image_options->store, image_options->registry, std::move(progress),
                                         image_options->pull_timeout});
    if (!fetcher.ok()) return report("run", fetcher.error());
    images = std::move(fetcher.value());
    run.images = images.get();
  }

  auto networks = open_job_networks(io, *egress, chosen->name != "host");
  if (!networks.ok()) return report("run", networks.error());
  run.networks = networks.value().get();

  auto ended = agent::run_locally(io, *executor, std::move(expanded), run, stdout);
  if (!ended.ok()) {
    std::fprintf(stderr, "boxcar run: %s\n", ended.error().message.c_str());
    return kExitInfra;
  }
  switch (*ended) {
    case agent::LocalRunEnd::success: return kExitOk;
    case agent::LocalRunEnd::failed: return kExitFailed;
    case agent::LocalRunEnd::step_error: return kExitInfra;
    case agent::LocalRunEnd::interrupted: return kExitInterrupted;
  }
  return kExitInfra;
}

}  // namespace boxcar::cli
