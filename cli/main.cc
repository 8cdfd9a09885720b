// boxcar: a self-hosted CI runner. main dispatches through a table of subcommands.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/suggest.h"
#include "cli/commands.h"

namespace boxcar::cli {
namespace {

struct Command {
  const char* name;
  int (*run)(const Args&);
  const char* help;
};

constexpr Command kCommands[] = {
    {"run", cmd_run, "run the pipeline of this directory on this machine"},
    {"validate", cmd_validate, "check a pipeline file; errors point at file:line:col"},
    {"plan", cmd_plan, "show the steps and their order (--format text|json|dot)"},
    {"serve", cmd_serve, "run the CI server (webhooks, API, job queue) with an in-process agent"},
    {"agent", cmd_agent, "claim jobs from a server and run them (agent revoke|forget NAME: admin)"},
    {"agents", cmd_agents, "list a server's registered agents (admin)"},
    {"submit", cmd_submit, "queue a job on a server; prints its id"},
    {"jobs", cmd_jobs, "list a server's jobs"},
    {"logs", cmd_logs, "print a job's log (-f follows it live)"},
    {"cancel", cmd_cancel, "cancel a job"},
    {"rerun", cmd_rerun, "re-run a finished job (--failed: only its failed steps); prints the new id"},
    {"artifacts", cmd_artifacts, "list a job's artifacts (--download DIR fetches them)"},
    {"image", cmd_image, "the image cache: image pull REF | ls | rm REF | prune"},
    {"sandbox", cmd_sandbox, "sandboxes as a service: sandbox create | exec | cp | spawn | expose | rm ..."},
    {"secret", cmd_secret, "secrets a server keeps for steps: secret set NAME | ls | rm NAME (admin)"},
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: boxcar <command> [flags]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.help);
  std::fprintf(out, "\nboxcar <command> --help shows a command's flags.\n");
}

}  // namespace

}  // namespace boxcar::cli

int main(int argc, char** argv) {
  using namespace boxcar::cli;
  if (argc < 2) {
    print_usage(stderr);
    return kExitUsage;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return kExitOk;
  }
  if (name == "--version" || name == "version") {
    std::printf("boxcar 0.1.0\n");
    return kExitOk;
  }
  Args args(argv + 2, argv + argc);
  for (const auto& c : kCommands) {
    if (name == c.name) return c.run(args);
  }
  std::vector<std::string> names;
  for (const auto& c : kCommands) names.push_back(c.name);
  std::string msg = "boxcar: unknown command \"" + name + "\"";
  if (auto m = boxcar::closest_match(name, names)) msg += " (did you mean \"" + *m + "\"?)";
  std::fprintf(stderr, "%s\nrun \"boxcar --help\" for the list of commands\n", msg.c_str());
  return kExitUsage;
}
