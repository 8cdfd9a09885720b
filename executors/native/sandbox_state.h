// SandboxState: one native sandbox as seen from the agent: its control channel to init, the
// commands it runs and their output, stop/destroy and OOM, all driven by the io_context.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/steady_timer.hpp>

#include "executors/executor.h"
#include "executors/native/caps.h"
#include "executors/native/cgroup.h"
#include "executors/native/contain.h"
#include "executors/native/exec_control.h"
#include "executors/native/exec_tree.h"
#include "executors/native/native_executor.h"
#include "executors/native/seccomp_filter.h"
#include "executors/native/upper_dirs.h"

namespace boxcar::executors::native {

namespace asio = boost::asio;
using Descriptor = asio::posix::stream_descriptor;

// What every sandbox of one executor shares; read-only after construction but for the
// lazily made idmap user namespace.
struct Shared {
  NativeOptions options;
  CgroupRoot cgroups;
  std::optional<SeccompProgram> seccomp;
  Error setup_error;  // why prepare() fails, when it does
  CapSet caps = CapSet::step_default();
  unique_fd init_fd;  // boxcar-init in a sealed memfd, exec'd as every sandbox's pid 1
  std::mutex mu;
  unique_fd idmap_userns;  // guarded by mu
  // Image sandboxes' writable layers, <state_dir>/uppers/<instance>/; null (and image
  // sandboxes fail with uppers_error) when they could not be set up.
  std::unique_ptr<UpperDirs> uppers;
  Error uppers_error;

  ~Shared() { cgroups.remove_own(); }  // fails harmlessly while a step cgroup is left
};

// A setup_error outcome; `detail` only when it says more than the facility and errno.
Outcome setup_outcome(const std::string& facility, int err, const std::string& detail = {});

struct ExecState {
  ExecHandlers handlers;
  std::unique_ptr<Descriptor> out, err;
  int open_streams = 2;
  std::optional<int> status;
  bool finished = false;
  std::array<char, 65536> out_buf, err_buf;
  // Started when the command exits while something it left behind still holds its output.
  std::unique_ptr<asio::steady_timer> linger;
  // Until Msg::started: output waits (on_started comes first), and so do these.
  bool reading = false;
  unique_fd stdin_w;
  std::shared_ptr<const ExecTree> tree;  // ExecRequest::own_tree where trees are cgroups
  std::shared_ptr<NativeExecControl> control;
};

class SandboxState : public std::enable_shared_from_this<SandboxState> {
 public:
  SandboxState(asio::io_context& io, std::shared_ptr<Shared> shared)
      : io_(io), shared_(std::move(shared)), kill_timer_(io) {}

  ~SandboxState();

  // The sandbox could not be created: every exec reports `outcome`.
  void fail_setup(Outcome outcome);
  // The first child was forked: from now on the control channel drives the sandbox. `upper`
  // (an image sandbox's writable layer) goes with the cgroups once pid 1 is gone.
  void begin(StepCgroup cgroup, Spawned spawned, UpperDir upper = {});
  // Sandbox::exec, stop and destroy (see executor.h).
  Status exec(const ExecRequest& request, ExecHandlers handlers);
  void stop(Outcome::Kind reason, Millis grace);
  // A connection to `port` inside the sandbox's network namespace (entered through init's
  // pidfd), maybe still in progress (see Sandbox::connect_tcp). An Error until init is running,
  // and when nothing listens.
  Result<unique_fd> connect_tcp(uint16_t port);
  void destroy();
  // Sandbox::file_op (sandbox_files.cc): one helper forked by init per request.
  void file_op(FileRequest request, std::function<void(Result<FileReply>)> done);
  // Sandbox::freeze and usage (cgroup.h): the cgroups only, init is not asked (it is frozen).
  Status freeze(bool frozen);
  Result<SandboxUsage> usage() const;
  // Sandbox::watch (sandbox_files.cc): one long-lived helper forked by init per watch.
  Result<std::unique_ptr<WatchHandle>> watch(const WatchRequest& request, WatchHandlers handlers);
  // Whether a prewarmed sandbox can still be handed to a step.
  bool usable() const { return !destroyed_ && !setup_failure_ && !init_dead_ && !stop_reason_ && !oom_hit_; }
  // Renames a prewarmed sandbox for the step that takes it.
  void configure(const std::string& hostname);
  // Hands a prewarmed sandbox made with ContainConfig::deferred to the step that takes it: its
  // layered directories (`mounts` made by prepare_layered for `dirs`), then its hostname.
  Status hand_over(const std::string& hostname, const std::vector<LayeredDir>& dirs,
                   const std::vector<LayeredMount>& mounts);
  // Gives a prewarmed sandbox the net_cls class of the step that takes it (cgroup.h).
  Status set_net_class(uint32_t net_class) const { return cgroup_.set_net_class(net_class); }

 private:
  struct Pending {
    std::string body;
    unique_fd out, err;
    unique_fd in{}, tree{};  // Msg::exec's optional descriptors (ExecFlags)
  };

  // Requests go straight into the channel; pid 1 reads them once it is set up.
  Status send(Pending p);
  void signal_init(int sig);
  // Removes what the sandbox holds on the host: its cgroups and its upper directory.
  void release();
  void read_output(const std::shared_ptr<ExecState>& e, OutputStream which);
  void read_control();
  // `fds` came with the message: what it does not take is closed.
  void handle_message(const std::string& body, std::vector<unique_fd>& fds);
  // Msg::started: the command's control goes to on_started, then its output is read.
  void on_started(uint64_t id, int pid, unique_fd pidfd);
  void start_reading(const std::shared_ptr<ExecState>& e);
  // Removes the trees of ended commands once nothing is left in them.
  void sweep_trees();

  // pid 1 exists (our child; the first child mapped its ids and cgroups): watch it.
  void on_unshared(pid_t pid);
  void wait_for_init();  // pid 1's pidfd, until it exited
  void wait_for_oom();   // the OOM eventfd (cgroup v1)
  void on_oom();
  void on_init_exit();

  // Setup failed: every command ends now with that outcome.
  void finish_all();
  void maybe_finish(std::shared_ptr<ExecState> e);
  // The command exited but a process it started keeps its stdout or stderr open: read what is
  // already in the pipes and end the command anyway.
  void stop_lingering(const std::shared_ptr<ExecState>& e);  // by value: erased from execs_ below

  asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
  StepCgroup cgroup_;
  UpperDir upper_;
  std::unique_ptr<Descriptor> pidfd_, ctl_, oom_;
  asio::steady_timer kill_timer_;
  std::optional<Outcome> setup_failure_;
  std::optional<Outcome::Kind> stop_reason_;
  bool init_dead_ = false, destroyed_ = false, oom_hit_ = false, kill_requested_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<ExecState>> execs_;
  std::vector<std::shared_ptr<const ExecTree>> ended_trees_;  // daemons still in them
};

}  // namespace boxcar::executors::native
