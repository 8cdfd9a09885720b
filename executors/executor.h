// Executor: the lifecycle contract every way of running steps implements (host, native, oci).
//
//   Executor::prepare(job)  -> Job       the job's workspace and network
//   Job::start(spec)        -> Sandbox   one step's sandbox
//   Sandbox::exec(request)  -> output and an Outcome, streamed on the io_context
//   Sandbox::stop(reason)   SIGTERM to everything inside, a grace period, then SIGKILL
//   Sandbox::connect_tcp    a connection to a port inside (ready checks)
//   Sandbox/Job::destroy()  nothing left behind
//
// All callbacks run on the io_context the executor was made with; nothing here blocks it.
// The seam exists so the scheduler can be tested with a fake executor and so an isolated
// executor can replace the host one without the agent knowing.
#pragma once

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/duration.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/file_request.h"
#include "executors/watch_request.h"
#include "executors/outcome.h"
#include "executors/spec.h"

namespace boxcar::executors {

enum class OutputStream { out, err };

struct ExecRequest {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH of `env` if it has no '/'
  std::vector<std::string> env;   // "NAME=value": the whole environment, nothing inherited
  std::string workdir = ".";      // relative to the workspace
  // Who runs it, as an image's config says it (Docker's --user): "" or "root" is uid 0; "name",
  // "uid", "name:group", "uid:gid" are looked up in the sandbox's own /etc/passwd and /etc/group.
  // Executors without users of their own (host) ignore it.
  std::string user{};
  // The sandbox API (sandboxes/): fd 0 is a pipe written through ExecControl::write_stdin
  // (false: /dev/null).
  bool stdin_pipe{false};
  // A cgroup-v2 tree of the command's own inside the sandbox's, so that ExecControl::signal and
  // kill_tree reach everything it started, daemons that setsid() away included. Where cgroup
  // v2 is not writable the executor falls back to the process group (ExecControl::tree_is_cgroup
  // says which).
  bool own_tree{false};
};

// A command once started (ExecHandlers::on_started). Called on the io_context; once on_exit ran,
// signal/kill_tree return an Error and write_stdin reports done(false).
class ExecControl {
 public:
  virtual ~ExecControl() = default;
  // The command's pid inside the sandbox's pid namespace (what `ps` in the sandbox shows).
  virtual int pid() const = 0;
  // `sig` to the command itself (tree = false) or to every process of its tree (tree = true).
  virtual Status signal(int sig, bool tree) = 0;
  // SIGKILL to the whole tree at once (cgroup.kill: atomic against forks).
  virtual Status kill_tree() = 0;
  // Whether the tree is a cgroup (own_tree and cgroup v2 writable) or only the process group.
  virtual bool tree_is_cgroup() const = 0;
  // ExecRequest::stdin_pipe: `data` is written in order, without blocking the io_context;
  // done(false) when the command closed its end or close_stdin() came first. An empty `data`
  // only waits for what is queued.
  virtual void write_stdin(std::string data, std::function<void(bool ok)> done) = 0;
  // End of input: the pipe is closed once what is queued was written.
  virtual void close_stdin() = 0;
};

// What a sandbox uses, read from its cgroups (Sandbox::usage). A figure the host cannot give
// (no memory cgroup: the sandbox has no memory limit) is 0.
struct SandboxUsage {
  uint64_t cpu_ms = 0;             // CPU time of every process it ran, since it started
  uint64_t memory_bytes = 0;       // memory charged now (page cache included)
  uint64_t memory_peak_bytes = 0;  // the most it was charged
  uint64_t pids = 0;               // processes (tasks) in it now, init included
  uint64_t oom_kills = 0;          // processes the OOM killer killed in it
};

struct ExecHandlers {
  // Output as it arrives, in chunks of any size. May be empty (output discarded).
  std::function<void(OutputStream, std::string_view)> on_output;
  // Called once, after every byte of output was delivered. When the sandbox was stopped with
  // a reason (timeout, cancelled) the outcome carries that reason, not the signal.
  std::function<void(const Outcome&)> on_exit;
  // Called once when the command was started, before any on_output, by executors that can
  // control a running command (native; oci shares its code, with process groups as trees);
  // host never calls it.
  std::function<void(std::shared_ptr<ExecControl>)> on_started{};
};

class Sandbox {
 public:
  virtual ~Sandbox() = default;

  // Starts a command. Returns an error (nothing started) if the command cannot be started
  // at all, e.g. the sandbox is stopped; a missing program is an Outcome (exit 127).
  virtual Status exec(const ExecRequest& request, ExecHandlers handlers) = 0;

  // Ends every process of the sandbox, daemons included: SIGTERM, `grace`, then SIGKILL.
  // Running commands report `reason` (Kind::timeout or Kind::cancelled). Idempotent.
  virtual void stop(Outcome::Kind reason, Millis grace) = 0;

  // Kills what is left at once and releases everything. No handler runs afterwards.
  virtual void destroy() = 0;

  // A TCP connection to `port` on the sandbox's own loopback (inside its network namespace):
  // how ready checks and previews reach a step's servers. Never blocks: the fd is non-blocking
  // and the connection may still be in progress (a server with a full accept queue leaves it so
  // for seconds); the caller waits for it to become writable and reads SO_ERROR
  // (agent/sandbox_connect.h does). An Error when it fails at once: nothing listens there (yet),
  // or the sandbox is not running.
  virtual Result<unique_fd> connect_tcp(uint16_t port) = 0;

  // A file operation as the sandbox's root sees it, resolved only inside the sandbox's own mount
  // namespace (executors/file_request.h): the host never walks a path the sandbox controls.
  // `done` runs once, on the io_context. Executors without it answer an Error.
  virtual void file_op(FileRequest request, std::function<void(Result<FileReply>)> done) {
    (void)request;
    done(Error{"file operations are not supported by this executor"});
  }

  // Freezes (true) or thaws (false) every process of the sandbox, init included, keeping their
  // memory: nothing inside runs until it is thawed, and nothing inside can tell. Returns once
  // the kernel reports the whole sandbox frozen (or thawed). Executors without it answer an
  // Error with errno ENOTSUP.
  virtual Status freeze(bool frozen) {
    (void)frozen;
    return Error{"freezing is not supported by this executor", ENOTSUP, ErrorCode::unavailable};
  }
  // What it uses now (works on a frozen sandbox, without thawing it). Executors without it
  // answer an Error with errno ENOTSUP.
  virtual Result<SandboxUsage> usage() {
    return Error{"usage is not supported by this executor", ENOTSUP, ErrorCode::unavailable};
  }
  // Watches a directory inside the sandbox (executors/watch_request.h) until the handle is
  // destroyed, the directory goes, or the sandbox stops; handlers run on the io_context.
  // Executors without it answer an Error (ENOTSUP).
  virtual Result<std::unique_ptr<WatchHandle>> watch(const WatchRequest& request, WatchHandlers handlers) {
    (void)request;
    (void)handlers;
    return Error{"watching files is not supported by this executor", ENOTSUP};
  }
};

struct JobSpec {
  std::string id;                   // unique per run; used in names of host resources
  std::filesystem::path workspace;  // the checkout, shared read-write by the job's steps
  // The job's network namespace, made by the agent with its route out (network/job_network.h):
  // borrowed, the executor dups it for as long as it needs it. -1: the executor makes one of its
  // own with loopback only. Executors without network isolation (host) ignore it.
  int netns_fd = -1;
  // The /etc/resolv.conf of the job's steps on the job network (host root and image root alike;
  // a step with network = "none" gets one that says it has no network). "": the root's own.
  std::string resolv_conf{};
};

class Job {
 public:
  virtual ~Job() = default;
  virtual Result<std::unique_ptr<Sandbox>> start(const SandboxSpec& spec) = 0;
  // Where the workspace appears to commands (BOXCAR_WORKSPACE): the host path for the
  // host executor, "/workspace" inside a container.
  virtual std::string workspace_path() const = 0;
  virtual void destroy() = 0;
  // A hint: about how many more sandboxes the job will ask for after the current start() (the
  // steps still pending). An executor that sets sandboxes up ahead prepares none at 0, so the
  // last step of a run does not pay for one nobody takes.
  virtual void expect(size_t /*more*/) {}
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string_view name() const = 0;
  // True when steps are isolated from the host (false for `host`, which warns about it).
  virtual bool isolated() const = 0;
  virtual Result<std::unique_ptr<Job>> prepare(const JobSpec& spec) = 0;
};

}  // namespace boxcar::executors
