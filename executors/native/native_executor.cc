#include "executors/native/native_executor.h"
#include "executors/native/sandbox_rename.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>

#include <boost/asio/post.hpp>

#include "executors/native/cgroup.h"
#include "executors/native/contain.h"
#include "executors/native/image_root.h"
#include "executors/native/init_executable.h"
#include "executors/native/layered_mounts.h"
#include "executors/native/mounts.h"
#include "executors/native/network.h"
#include "executors/native/resolv_conf.h"
#include "executors/native/rootfs.h"
#include "executors/native/sandbox_state.h"
#include "executors/native/seccomp_filter.h"
#include "executors/native/user_ns.h"
#include "executors/native/uts.h"

namespace boxcar::executors {

namespace {

namespace asio = boost::asio;
using namespace native;

class NativeSandbox final : public Sandbox {
 public:
  explicit NativeSandbox(std::shared_ptr<SandboxState> state) : state_(std::move(state)) {}
  ~NativeSandbox() override { state_->destroy(); }
  Status exec(const ExecRequest& request, ExecHandlers handlers) override {
    return state_->exec(request, std::move(handlers));
  }
  void stop(Outcome::Kind reason, Millis grace) override { state_->stop(reason, grace); }
  void destroy() override { state_->destroy(); }
  Result<unique_fd> connect_tcp(uint16_t port) override { return state_->connect_tcp(port); }
  Status rename(const std::string& name) {
    if (!state_->usable()) return Error{"the sandbox is not running", ESRCH};
    state_->configure(hostname_for(name));  // init reads it before any later exec
    return {};
  }
  void file_op(FileRequest request, std::function<void(Result<FileReply>)> done) override {
    state_->file_op(std::move(request), std::move(done));
  }
  Status freeze(bool frozen) override { return state_->freeze(frozen); }
  Result<SandboxUsage> usage() override { return state_->usage(); }
  Result<std::unique_ptr<WatchHandle>> watch(const WatchRequest& request, WatchHandlers handlers) override {
    return state_->watch(request, std::move(handlers));
  }

 private:
  std::shared_ptr<SandboxState> state_;
};

// A job's network, workspace and, with NativeOptions::prewarm, one sandbox set up ahead
// of time. Shared with posted refills, which skip the work once the job is gone.
struct JobState {
  asio::io_context& io;
  std::shared_ptr<Shared> shared;
  JobSpec job_spec;
  unique_fd netns;
  ResolvFiles resolv;  // the job's resolv.conf files, for "host" roots to bind
  int userns;  // owned by Shared
  bool destroyed = false;
  // The prewarmed sandbox, set up like the step before it (its cgroups carry that step's
  // limits), with a placeholder hostname until it is taken. Every step has limits (the agent
  // applies its defaults), and the steps of a pipeline mostly share them: so a step whose
  // limits, network and tmpfs sizes equal the last one's starts at once.
  std::shared_ptr<SandboxState> warm{};
  SandboxSpec warm_like{};
  // An image's warm sandbox: its root mount (to name the step in /etc/hosts when taken; nothing
  // has run in it yet) and the inode of each layer directory when it was mounted, so a layer
  // collected and pulled again into the same path since is not used through a stale overlay.
  unique_fd warm_root{};
  std::vector<ino_t> warm_layer_inodes{};
  bool refill_posted = false;
  size_t expected_more = SIZE_MAX;  // Job::expect(): unknown until told

  // `keep_root`: set to a copy of an image sandbox's root mount (a warm sandbox's). `deferred`:
  // a warm sandbox for a layered step, which gets its layers when a step takes it (hand_over).
  std::shared_ptr<SandboxState> create(const SandboxSpec& spec, const std::string& hostname,
                                       unique_fd* keep_root = nullptr, bool deferred = false) {
    auto state = std::make_shared<SandboxState>(io, shared);
    if (spec.image != "host" && spec.layers.empty()) {
      state->fail_setup(setup_outcome("image root", EINVAL, "image \"" + spec.image +
                                                                "\" has no layers: it was not pulled"));
      return state;
    }
    // Every sandbox has a v2 cgroup now (its tracking one), and executors of one process (an
    // agent's and a sandbox host's) share the instance directory: numbered per process.
    static std::atomic<uint64_t> sandboxes{0};
    std::string name = "s" + std::to_string(++sandboxes);
    auto cgroup = StepCgroup::create(shared->cgroups, name, spec, shared->options.id_base);
    if (!cgroup) {
      state->fail_setup(setup_outcome("cgroup", cgroup.error().err, cgroup.error().message));
      return state;
    }
    // An image's root: its layers under a writable layer of this sandbox's own (image_root.h).
    UpperDir upper;
    unique_fd image_root;
    if (!spec.layers.empty()) {
      auto made = make_image_root(spec, name, hostname, upper);
      if (!made) {
        state->fail_setup(setup_outcome("image root", made.error().err, made.error().message));
        return state;
      }
      image_root = std::move(*made);
      if (keep_root) keep_root->reset(::fcntl(image_root.get(), F_DUPFD_CLOEXEC, 3));
    }
    auto workspace = idmapped_mount(job_spec.workspace, userns);
    if (!workspace) {
      state->fail_setup(setup_outcome("workspace idmapped mount", workspace.error().err, workspace.error().message));
      return state;
    }
    // "host": the job's resolv.conf over the host's (an image's is written into its /etc above).
    unique_fd resolv_mount;
    if (auto file = resolv.file_for(spec.network); spec.layers.empty() && !file.empty()) {
      auto mounted = resolv_conf_mount(file);
      if (!mounted) {
        state->fail_setup(setup_outcome("resolv.conf", mounted.error().err, mounted.error().message));
        return state;
      }
      resolv_mount = std::move(*mounted);
    }
    // The step's own layers of /workspace (and of its caches): idmapped like the workspace, stacked
    // by pid 1 inside the sandbox's user namespace.
    auto layered = prepare_layered(deferred ? std::vector<LayeredDir>{} : spec.layered, userns, root_path(spec));
    if (!layered) {
      state->fail_setup(setup_outcome("layered directory", layered.error().err, layered.error().message));
      return state;
    }
    ContainConfig config;
    config.layered = &*layered;
    config.layered_workspace = layers_workspace(spec.layered);
    config.deferred = deferred;
    config.root_dir = (shared->options.state_dir / "root").string();
    config.workspace_fd = workspace->get();
    config.resolv_fd = resolv_mount.get();
    config.netns_fd = netns.get();
    config.network = spec.network;
    config.tmp_bytes = spec.tmp_bytes;
    config.shm_bytes = spec.shm_bytes;
    config.hostname = hostname;
    config.ids = IdRange{shared->options.id_base, shared->options.id_count};
    config.cgroup_procs = cgroup->procs_files();
    config.policy = CommandPolicy{&shared->caps, &*shared->seccomp};
    config.init_fd = shared->init_fd.get();
    config.image_fd = image_root.get();
    config.image_mount_point = (shared->options.state_dir / "image-root").string();
    auto spawned = spawn_sandbox(config);
    if (!spawned) {
      state->fail_setup(setup_outcome(spawned.error().message, spawned.error().err));
      return state;
    }
    // The first child holds its own copy of image_root until pid 1 has attached it.
    state->begin(std::move(*cgroup), std::move(*spawned), std::move(upper));
    return state;
  }

  Result<unique_fd> make_image_root(const SandboxSpec& spec, const std::string& name, const std::string& hostname,
                                    UpperDir& upper) {
    if (!shared->uppers) return shared->uppers_error;
    uid_t owner = shared->options.id_base;
    auto made = shared->uppers->create(name, owner);
    if (!made) return made.error();
    upper = std::move(*made);
    auto root = mount_image_layers(spec.layers, upper.upper(), upper.work());
    if (!root) return root.error();
    std::string resolv_conf = resolv_conf_for(spec.network, job_spec.resolv_conf);
    if (Status ready = prepare_image_root(root->get(), owner, hostname, resolv_conf); !ready) return ready.error();
    return root;
  }

  // Where pid 1 builds the sandbox's root (layered directories are placed under it).
  std::string root_path(const SandboxSpec& spec) const {
    return (shared->options.state_dir / (spec.layers.empty() ? "root" : "image-root")).string();
  }

  // A layered step's sandbox is set up ahead all but its layers, which are its own: they are
  // made when it takes the sandbox and handed to the waiting pid 1 (ContainConfig::deferred).
  static bool warmable(const SandboxSpec& spec) { return spec.network != NetworkMode::host; }

  static std::vector<ino_t> inodes_of(const std::vector<std::filesystem::path>& layers) {
    std::vector<ino_t> out;
    for (const auto& l : layers) {
      struct stat st{};
      out.push_back(::stat(l.c_str(), &st) == 0 ? st.st_ino : 0);
    }
    return out;
  }

  // Whether the warm sandbox was set up as `spec` asks: same image (the same layer
  // directories, not replaced since), limits, network and tmpfs sizes, and a net_cls cgroup
  // when the step needs one (its class id is set when the step takes it).
  bool warm_fits(const SandboxSpec& spec) const {
    const SandboxSpec& w = warm_like;
    return warm && warmable(spec) && w.network == spec.network && w.tmp_bytes == spec.tmp_bytes &&
           w.shm_bytes == spec.shm_bytes && w.memory_bytes == spec.memory_bytes && w.cpus == spec.cpus &&
           w.pids == spec.pids && (w.net_class != 0) == (spec.net_class != 0) && w.image == spec.image && w.layers == spec.layers &&
           w.layered.empty() == spec.layered.empty() &&
           (spec.layers.empty() || (warm_root && inodes_of(spec.layers) == warm_layer_inodes)) && warm->usable();
  }

  // The step's layers, made now and handed to the warm sandbox's waiting pid 1.
  Status hand_over(SandboxState& state, const SandboxSpec& spec, const std::string& hostname) {
    auto layered = prepare_layered(spec.layered, userns, root_path(spec));
    if (!layered) return layered.error();
    return state.hand_over(hostname, spec.layered, *layered);
  }

  void drop_warm() {
    if (warm) warm->destroy();
    warm.reset();
    warm_root.reset();
    warm_layer_inodes.clear();
  }

  // After the current handler: set up the next sandbox like `spec`.
  static void post_refill(const std::shared_ptr<JobState>& self, const SandboxSpec& spec) {
    if (!self->shared->options.prewarm || self->refill_posted || !warmable(spec) ||
        self->expected_more == 0) {
      return;
    }
    self->refill_posted = true;
    std::weak_ptr<JobState> weak = self;
    SandboxSpec like = spec;
    asio::post(self->io, [weak, like] {
      auto job = weak.lock();
      if (!job || job->destroyed) return;
      job->refill_posted = false;
      job->drop_warm();
      job->warm_layer_inodes = inodes_of(like.layers);
      job->warm = job->create(like, "sandbox", &job->warm_root, !like.layered.empty());
      job->warm_like = like;
    });
  }

  void destroy() {
    destroyed = true;
    drop_warm();
    netns.reset();
    resolv = {};  // running sandboxes keep their binds of the files
  }
};

class NativeJob final : public Job {
 public:
  explicit NativeJob(std::shared_ptr<JobState> state) : state_(std::move(state)) {}
  ~NativeJob() override { state_->destroy(); }

  Result<std::unique_ptr<Sandbox>> start(const SandboxSpec& spec) override {
    JobState& job = *state_;
    if (job.destroyed) return Error{"the job was destroyed", ESRCH};
    if (Status valid = validate(spec); !valid) return valid.error();
    if (spec.network == NetworkMode::host && !job.shared->options.allow_host_network) {
      return Error{"sandbox \"" + spec.name +
                       "\": network \"host\" is not allowed by this agent (it would reach the host's network)",
                   EPERM};
    }
    std::shared_ptr<SandboxState> state;
    std::string hostname = hostname_for(spec.name);
    // An image root names its host in /etc/hosts: the warm one is renamed before it is taken.
    if (job.warm_fits(spec) &&
        (spec.layers.empty() || name_image_host(job.warm_root.get(), job.shared->options.id_base, hostname))) {
      state = std::move(job.warm);
      job.warm.reset();
      job.warm_root.reset();
      if (spec.layered.empty()) {
        state->configure(hostname);
      } else if (Status handed = job.hand_over(*state, spec, hostname); !handed) {
        state->destroy();
        state = job.create(spec, hostname);  // reports why as the step's setup error
      }
      // Before anything runs in it: its init (and whatever it starts) carries the step's class.
      if (spec.net_class != job.warm_like.net_class) {
        if (Status set = state->set_net_class(spec.net_class); !set) {
          state->destroy();
          state = job.create(spec, hostname);
        }
      }
    } else {
      state = job.create(spec, hostname);
    }
    JobState::post_refill(state_, spec);
    return std::unique_ptr<Sandbox>(std::make_unique<NativeSandbox>(std::move(state)));
  }

  std::string workspace_path() const override { return "/workspace"; }

  void destroy() override { state_->destroy(); }

  void expect(size_t more) override {
    state_->expected_more = more;
    if (more == 0) state_->drop_warm();
  }

 private:
  std::shared_ptr<JobState> state_;
};

class NativeExecutor final : public Executor {
 public:
  NativeExecutor(asio::io_context& io, std::shared_ptr<Shared> shared) : io_(io), shared_(std::move(shared)) {}

  std::string_view name() const override { return "native"; }
  bool isolated() const override { return true; }

  const std::string& tree_error() const { return shared_->cgroups.tree_error(); }

  Result<std::unique_ptr<Job>> prepare(const JobSpec& spec) override {
    if (!shared_->seccomp || !shared_->setup_error.message.empty()) return shared_->setup_error;
    struct stat st{};
    if (::stat(spec.workspace.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error{"job " + spec.id + ": workspace " + spec.workspace.string() + " is not a directory", ENOTDIR};
    }
    int userns;
    {
      std::lock_guard lock(shared_->mu);
      if (!shared_->idmap_userns) {
        auto ns = make_idmap_userns(IdRange{shared_->options.id_base, shared_->options.id_count});
        if (!ns) return ns.error();
        shared_->idmap_userns = std::move(*ns);
      }
      userns = shared_->idmap_userns.get();
    }
    // A workspace on a filesystem that cannot be idmapped fails here, once, not per step.
    if (auto probe = idmapped_mount(spec.workspace, userns); !probe) return probe.error();
    // The agent's job network when it made one; else loopback only, of our own.
    auto netns = spec.netns_fd >= 0 ? adopt_job_netns(spec.netns_fd) : make_job_netns();
    if (!netns) return netns.error();
    auto resolv = ResolvFiles::write(shared_->options.state_dir / "resolv", shared_->cgroups.instance_name(),
                                     spec.resolv_conf);
    if (!resolv) return resolv.error();
    auto state = std::shared_ptr<JobState>(new JobState{.io = io_,
                                                        .shared = shared_,
                                                        .job_spec = spec,
                                                        .netns = std::move(*netns),
                                                        .resolv = std::move(*resolv),
                                                        .userns = userns});
    return std::unique_ptr<Job>(std::make_unique<NativeJob>(std::move(state)));
  }

 private:
  asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace

Status native_available() {
  if (::geteuid() != 0) {
    return Error{"the native executor needs root (it creates namespaces and cgroups)", EPERM,
                 ErrorCode::unavailable};
  }
  std::ifstream max_ns("/proc/sys/user/max_user_namespaces");
  long max = -1;
  if (max_ns >> max && max == 0) {
    return Error{"user namespaces are disabled (user.max_user_namespaces = 0)", EPERM,
                 ErrorCode::unavailable};
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::_exit(::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC) == 0 ? 0 : errno);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    int e = pid < 0 ? errno : WEXITSTATUS(status);
    return Error{std::string("cannot create user, pid and mount namespaces here (") + std::strerror(e) + ")", e,
                 ErrorCode::unavailable};
  }
  return {};
}

std::string native_tree_fallback(const Executor& executor) {
  auto* native = dynamic_cast<const NativeExecutor*>(&executor);
  return native ? native->tree_error() : std::string();
}

std::unique_ptr<Executor> make_native_executor(asio::io_context& io, NativeOptions options) {
  auto shared = std::make_shared<Shared>();
  shared->options = std::move(options);
  std::error_code ec;
  std::filesystem::create_directories(shared->options.state_dir / "root", ec);
  std::filesystem::create_directories(shared->options.state_dir / "image-root", ec);
  ::chmod(shared->options.state_dir.c_str(), 0711);
  // Only image steps need it: "host" steps still run when it fails.
  const auto& o = shared->options;
  if (auto uppers = UpperDirs::open(o.uppers_dir.empty() ? o.state_dir / "uppers" : o.uppers_dir, o.max_image_write)) {
    shared->uppers = std::move(*uppers);
  } else {
    shared->uppers_error = uppers.error();
  }
  shared->cgroups = CgroupRoot::discover(shared->options.cgroup_parent);
  shared->cgroups.remove_stale();
  remove_stale_resolv_files(shared->options.state_dir / "resolv");
  if (Status root = prepare_root_template((shared->options.state_dir / "root").string()); !root) {
    shared->setup_error = root.error();
  }
  if (auto init = make_init_memfd()) {
    shared->init_fd = std::move(*init);
  } else {
    shared->setup_error = init.error();
  }
  auto program = build_seccomp_program();
  if (program) {
    shared->seccomp = std::move(*program);
  } else {
    shared->setup_error = program.error();
  }
  return std::make_unique<NativeExecutor>(io, std::move(shared));
}

Status rename_native_sandbox(Sandbox& sandbox, const std::string& name) {
  auto* native = dynamic_cast<NativeSandbox*>(&sandbox);
  if (native == nullptr) return Error{"only a native sandbox can be renamed", EINVAL};
  return native->rename(name);
}

}  // namespace boxcar::executors
