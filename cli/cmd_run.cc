// boxcar run: one pipeline on this machine, no server. Results under .boxcar/runs/<run-id>/.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <chrono>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "agent/local/json_reporter.h"
#include "previews/preview_proxy.h"
#include "agent/local/run_directory.h"
#include "agent/scheduler.h"
#include "agent/local/terminal_reporter.h"
#include "base/size.h"
#include "cli/commands.h"
#include "cli/executor_choice.h"
#include "cli/flags.h"
#include "cli/git_head.h"
#include "cli/pipeline_file.h"
#include "cli/preview_listen.h"
#include "cli/step_limit_flags.h"
#include "pipeline/load.h"
#include "pipeline/plan.h"

namespace boxcar::cli {
namespace {

constexpr const char* kUsage =
    "usage: boxcar run [--file F] [--workspace DIR] [--jobs N] [--executor native|host]\n"
    "                  [--allow-host-network]\n"
    "                  [--secret NAME=VALUE]... [--keep-failed] [--json] [--quiet] [--timestamps]\n"
    "                  [--log-limit SIZE] [--branch B] [--event E]\n"
    "                  [--preview-listen ADDR:PORT] [--preview-domain D]\n"
    "                  [--default-memory|--default-tmp|--max-memory|--max-tmp SIZE]\n"
    "                  [--default-pids|--default-cpus|--max-pids|--max-cpus N] [--max-preview-ttl D]\n"
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
  auto flags = parse_flags(args, with_step_limit_flags({{"--file", true, false, "-f"},
                                  {"--workspace", true, false, ""},
                                  {"--jobs", true, false, "-j"},
                                  {"--executor", true, false, ""},
                                  {"--secret", true, true, ""},
                                  {"--keep-failed", false, false, ""},
                                  {"--json", false, false, ""},
                                  {"--timestamps", false, false, ""},
                                  {"--quiet", false, false, "-q"},
                                  {"--log-limit", true, false, ""},
                                  {"--branch", true, false, ""},
                                  {"--event", true, false, ""},
                                  {"--preview-listen", true, false, ""},
                                  {"--preview-domain", true, false, ""},
                                  {"--allow-host-network", false, false, ""},
                                  {"--help", false, false, "-h"}}));
  if (!flags.ok()) return usage_error("run", flags.error().message);
  if (flags->has("--help")) {
    std::fputs(kUsage, stdout);
    std::fputs(kStepLimitsUsage, stdout);
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

  std::error_code ec;
  std::filesystem::path workspace = flags->get("--workspace").value_or(".");
  workspace = std::filesystem::canonical(workspace, ec);
  if (ec || !std::filesystem::is_directory(workspace)) {
    return usage_error("run", "workspace \"" + flags->get("--workspace").value_or(".") +
                                  "\" is not a directory");
  }

  auto loaded = load_pipeline_file(flags->get("--file"), workspace);
  if (!loaded) return kExitUsage;

  // In a local run, declared secrets not given with --secret come from the environment.
  for (const auto& step : loaded->pipeline.steps) {
    for (const auto& name : step.secrets) {
      if (secrets.count(name)) continue;
      if (const char* v = std::getenv(name.c_str())) {
        secrets[name] = v;
      } else {
        return usage_error("run", "step \"" + step.name + "\" needs secret " + name +
                                      ": pass --secret " + name + "=VALUE or export " + name);
      }
    }
  }

  NativeChoiceOptions native;
  native.allow_host_network = flags->has("--allow-host-network");
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
  pipeline::RunContext ctx;
  ctx.branch = flags->get("--branch").value_or(head.branch);
  ctx.event = event;
  pipeline::Plan plan(expanded, ctx);

  auto run_dir = agent::RunDirectory::create(workspace);
  if (!run_dir.ok()) {
    std::fprintf(stderr, "boxcar run: %s\n", run_dir.error().message.c_str());
    return kExitInfra;
  }

  std::unique_ptr<agent::RunObserver> observer;
  if (flags->has("--json")) {
    observer = std::make_unique<agent::JsonReporter>(stdout);
  } else {
    agent::TerminalReporterOptions topts;
    topts.color = agent::TerminalReporter::want_color(STDOUT_FILENO);
    topts.timestamps = flags->has("--timestamps");
    topts.quiet = flags->has("--quiet");
    if (std::filesystem::exists(std::filesystem::symlink_status(workspace / ".git"))) {
      topts.summary_note = chosen->name == "host"
                               ? "the host executor cannot protect .git: a step could change what your git runs"
                               : ".git was read-only to steps";
    }
    observer = std::make_unique<agent::TerminalReporter>(stdout, topts);
  }

  boost::asio::io_context io;
  auto executor = chosen->make(io);
  if (!executor->isolated()) {
    observer->notice("executor \"" + std::string(executor->name()) +
                     "\": steps run as plain processes on this machine, with no isolation "
                     "and no memory, pids, cpu or /tmp limits");
  }
  if (flags->has("--keep-failed") && !executor->isolated()) {
    observer->notice("--keep-failed: the host executor keeps nothing but the workspace");
  }
  auto job = executor->prepare({run_dir->id(), workspace});
  if (!job.ok()) {
    std::fprintf(stderr, "boxcar run: cannot prepare the job: %s\n", job.error().message.c_str());
    return kExitInfra;
  }

  // Only a pipeline with [[step.expose]] binds the preview port.
  std::unique_ptr<agent::PreviewProxy> proxy;
  bool exposes = false;
  for (const auto& cs : expanded.steps) exposes = exposes || !cs.step.expose.empty();
  if (exposes) {
    auto opened = open_preview_proxy(io, flags->get("--preview-listen"), flags->get("--preview-domain"), "run");
    if (!opened.ok()) {
      job.value()->destroy();
      return report("run", opened.error());
    }
    proxy = std::move(opened.value());
  }

  agent::SchedulerOptions opts;
  opts.previews = proxy.get();
  opts.jobs = jobs;
  opts.secrets = secrets;
  opts.log_dir = run_dir->logs();
  opts.workspace = workspace;
  opts.artifact_dir = run_dir->artifacts();
  opts.log_limit = log_limit;
  opts.job_id = run_dir->id();
  opts.commit = head.commit;
  opts.branch = ctx.branch;
  opts.event = event;
  opts.limits = *limits;
  agent::Scheduler scheduler(io, *job.value(), expanded, plan, opts, *observer);

  int interrupts = 0;
  bool pipeline_done = false;
  int interrupts_in_pipeline = 0;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& sig_ec, int) {
        if (sig_ec) return;
        ++interrupts;
        if (pipeline_done) {
          observer->notice("interrupted: closing the previews");
        } else {
          observer->notice(interrupts == 1 ? "interrupted: cancelling every step (again to kill at once)"
                                           : "interrupted again: killing every step");
        }
        scheduler.cancel();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  bool success = false;
  auto started = std::chrono::steady_clock::now();
  auto finish = [&] {
    signals.cancel();
    if (proxy) proxy->close();
    job.value()->destroy();
    io.stop();
  };
  scheduler.start([&](bool ok) {
    success = ok;
    pipeline_done = true;
    interrupts_in_pipeline = interrupts;
    auto total = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started);
    if (Status st = run_dir->write_summary(success, scheduler.summaries(), total); !st.ok()) {
      observer->notice(st.error().message);
    }
    if (scheduler.open_previews() == 0) return finish();
    // The pipeline is over but its previews stay up for their preview_ttl, or until Ctrl-C.
    observer->notice(std::to_string(scheduler.open_previews()) +
                     " preview(s) still open: press Ctrl-C to close them");
    scheduler.hold_previews([&] { finish(); });
  });
  io.run();
  // Let the executor finish tearing the sandboxes down (reaping, cgroup removal) so nothing of
  // the run outlives the command; bounded, and over at once when there is nothing left to do.
  io.restart();
  io.run_for(std::chrono::seconds(3));
  // Ctrl-C while only previews remain closes them: the pipeline's own result stands.
  if (interrupts_in_pipeline > 0) return kExitInterrupted;
  for (const auto& s : scheduler.summaries()) {
    if (s.state == pipeline::StepState::error) return kExitInfra;
  }
  return success ? kExitOk : kExitFailed;
}

}  // namespace boxcar::cli
