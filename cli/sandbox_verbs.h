// `boxcar sandbox VERB`: what every verb gets (its parsed flags, operands, and a client of the
// server) and the verbs themselves, one file per concern: cmd_sandbox.cc (the table and the
// lifecycle verbs), cmd_sandbox_exec.cc (exec and processes), cmd_sandbox_files.cc (files, ports).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "cli/flags.h"
#include "cli/sandbox_args.h"
#include "client/sandbox_client.h"

namespace boxcar::cli {

struct SandboxCall {
  std::string verb;
  ParsedFlags flags;          // the flags before any "--"
  std::vector<std::string> operands;
  SplitArgs split;            // the whole argument list split at "--" (exec, spawn)
  bool json = false;
  std::unique_ptr<client::SandboxClient> api;

  // Prints the error ("boxcar sandbox VERB: message", and with --json a JSON object on stdout
  // {"error", "code", "exit_code"}) and returns its exit code: 2 for what the user must change
  // (usage, 4xx), 3 for infrastructure (unreachable server, 5xx).
  int fail(const Error& error) const;
  int usage(const std::string& message) const;
  // Prints a JSON value as one line on stdout.
  void print_json(const boost::json::value& v) const;
};

int sandbox_create(SandboxCall& c);
int sandbox_list(SandboxCall& c);
int sandbox_get(SandboxCall& c);
int sandbox_rm(SandboxCall& c);  // `rm ID`: the sandbox; `rm [-r] ID PATH`: a file in it
// pause | resume | stop ID (the verb names the route), metrics ID: cmd_sandbox_state.cc.
int sandbox_state(SandboxCall& c);
int sandbox_metrics(SandboxCall& c);
int sandbox_exec(SandboxCall& c);
int sandbox_spawn(SandboxCall& c);
int sandbox_ps(SandboxCall& c);
int sandbox_logs(SandboxCall& c);
int sandbox_kill(SandboxCall& c);
int sandbox_wait(SandboxCall& c);
int sandbox_cp(SandboxCall& c);
int sandbox_ls(SandboxCall& c);
int sandbox_cat(SandboxCall& c);
int sandbox_mkdir(SandboxCall& c);
int sandbox_mv(SandboxCall& c);
int sandbox_rm_path(SandboxCall& c);
int sandbox_watch(SandboxCall& c);  // cmd_sandbox_watch.cc
int sandbox_expose(SandboxCall& c);
int sandbox_unexpose(SandboxCall& c);
int sandbox_ports(SandboxCall& c);
int sandbox_git(SandboxCall& c);  // cmd_sandbox_git.cc

// A duration flag ("30s") in milliseconds; an Error (usage) naming the flag otherwise.
Result<std::chrono::milliseconds> duration_flag(const SandboxCall& c, const std::string& flag);

}  // namespace boxcar::cli
