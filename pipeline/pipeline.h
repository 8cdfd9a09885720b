// The pipeline file as plain values (DESIGN.md section 3), before and after matrix expansion.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/duration.h"
#include "base/host_pattern.h"

namespace boxcar::pipeline {

// Where a value came from in the file, for errors that point at the line.
struct SourcePos {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

using EnvMap = std::map<std::string, std::string>;

enum class WhenStatus { success, failure, always };

struct When {
  std::vector<std::string> branch;  // globs; empty = any branch
  std::vector<std::string> event;   // push | pull_request | tag | manual; empty = any
  WhenStatus status = WhenStatus::success;
};

struct Resources {
  std::optional<uint64_t> memory;  // bytes
  std::optional<double> cpus;
  std::optional<uint64_t> pids;
  std::optional<uint64_t> tmp;     // bytes of the /tmp tmpfs
};

// `ready` of a service or an exposed port: a TCP connect or an HTTP GET answering 2xx/3xx.
struct ReadyCheck {
  std::optional<int> tcp;           // port
  std::optional<std::string> http;  // path, e.g. "/health"
  Millis timeout{30'000};
};

struct Service {
  std::string name;
  // A script run in the step's own sandbox; or, with `image`, in a sandbox of that image.
  std::string run;
  // "" : the service runs in the step's sandbox. An image reference: a sidecar in its own
  // sandbox from that image, on the job's network (the step reaches it on 127.0.0.1), started
  // with the image's entrypoint and `command` (default: the image's Cmd) unless `run` is set.
  std::string image;
  std::vector<std::string> command;
  EnvMap env;  // on top of the image's Env and the step's env
  std::optional<ReadyCheck> ready;
  SourcePos pos;
};

struct Expose {
  int port = 0;
  std::string name;  // defaults to the step name
  ReadyCheck ready;  // defaults to a tcp check of `port`
  SourcePos pos;
};

enum class Network { job, none, host };

// [[step.cache]]: restored before the step, saved after it succeeds when `key` missed.
struct Cache {
  // Templates: ${matrix.x}, ${branch}, ${hash:GLOB[,GLOB...]} (sha256 of the files the globs
  // match in the step's workspace as the step finds it, paths and contents, in path order).
  std::string key;
  std::vector<std::string> restore_keys;  // prefixes (templates too), tried newest first, in order
  // Workspace-relative paths, or "~/..." under the step's home; globs are not expanded.
  std::vector<std::string> paths;
  SourcePos pos;
};

// One step as written, matrix not yet expanded; defaults already applied.
struct Step {
  std::string name;
  std::string run;
  std::string image = "host";
  // Empty: the engine picks at step start, `bash --noprofile --norc -eo pipefail -c` where the
  // step's root has bash, else `/bin/sh -e -c` (a failing command early in a pipe fails the
  // step wherever it can). Set: exactly this argv, the script appended.
  std::vector<std::string> shell;
  std::string workdir = ".";
  EnvMap env;  // pipeline [env] < [defaults].env < step env, already layered
  std::vector<std::string> secrets;
  Millis timeout{3'600'000};
  Millis grace{10'000};
  int retry = 0;
  bool retry_on_timeout = false;
  bool allow_failure = false;
  std::vector<std::string> needs;  // names as written (base names of matrix steps)
  std::optional<When> when;        // nullopt = run when every need succeeded
  std::map<std::string, std::vector<std::string>> matrix;  // axis -> values (as strings)
  Resources resources;
  Network network = Network::job;
  // The only names the step may reach beyond the job (and the addresses the agent's resolver
  // answered for them); none: the agent's egress policy as it is.
  std::optional<std::vector<HostPattern>> egress;
  std::vector<std::string> artifacts;  // globs relative to the workspace
  std::vector<Cache> caches;           // [[step.cache]], in file order
  std::vector<Service> services;
  std::vector<Expose> expose;
  Millis preview_ttl{1'800'000};
  SourcePos pos;
};

struct PushFilter {
  std::vector<std::string> branches;  // globs
  std::vector<std::string> tags;      // globs
};

struct PullRequestFilter {
  std::vector<std::string> branches;  // globs of the target branch
};

// [on]: which webhook events start the pipeline. Absent table = every push.
struct Triggers {
  std::optional<PushFilter> push;
  std::optional<PullRequestFilter> pull_request;
  bool declared = false;  // false: [on] was absent, so every push triggers
  // A newer push to the same ref (or pull request update) cancels this pipeline's queued and
  // running jobs on the server; false keeps them (e.g. deploys that must not stop half way).
  bool cancel_superseded = true;
};

struct Pipeline {
  int version = 1;
  std::string name;
  std::string file;  // path as given, used in messages
  EnvMap env;
  Triggers on;
  std::vector<Step> steps;  // in file order, matrix not expanded
};

// A step after matrix expansion: what the planner and the agent work with.
struct ConcreteStep {
  std::string name;       // "test (cc=gcc, opt=O2)" for an expansion, else the step's name
  std::string base_name;  // the step's own name
  std::map<std::string, std::string> matrix_values;  // empty unless expanded
  Step step;  // with ${matrix.x} interpolated into name, run, env, image, workdir
  std::vector<size_t> needs;  // indices into ExpandedPipeline::steps
};

struct ExpandedPipeline {
  std::string name;
  std::string file;
  std::vector<ConcreteStep> steps;
};

}  // namespace boxcar::pipeline
