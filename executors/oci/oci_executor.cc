#include "executors/oci/oci_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/mountinfo.h"
#include "base/tree_walk.h"
#include "executors/native/cgroup.h"
#include "executors/native/git_readonly.h"
#include "executors/native/layered_mounts.h"
#include "executors/native/mounts.h"
#include "executors/native/native_executor.h"
#include "executors/native/network.h"
#include "executors/native/resolv_conf.h"
#include "executors/native/sandbox_state.h"
#include "executors/native/user_ns.h"
#include "executors/native/upper_dirs.h"
#include "executors/native/uts.h"
#include "executors/oci/bundle.h"
#include "executors/oci/keeper.h"
#include "executors/oci/root.h"
#include "executors/oci/runtime.h"
#include "executors/oci/seccomp_profile.h"

namespace boxcar::executors {

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using native::SandboxState;

// Sandbox and executor names, unique in the process: the steps' cgroups of every executor
// of the process share one directory (CgroupRoot's instance).
std::atomic<uint64_t> g_sandboxes{0}, g_executors{0};

constexpr int kChannelBuffer = 8 << 20;  // one exec request (argv + env) must fit a record

// runc makes each step's cgroup in every v1 hierarchy, also those native's CgroupRoot leaves
// alone (devices, freezer, cpuset, ...), and removes only the step's own directory: the
// agents' directories above it stay. Removes the empty ones below `parent` there (a live
// executor's is made again by runc when needed).
void remove_empty_runtime_cgroups(const std::string& parent) {
  auto read = [](const char* path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  std::vector<std::pair<std::string, std::string>> mounts;  // mount point, super options
  for (const MountInfo& m : parse_mountinfo(read("/proc/self/mountinfo"))) {
    if (m.type == "cgroup") mounts.emplace_back(m.mount_point, "," + m.super_options + ",");
  }
  std::istringstream own(read("/proc/self/cgroup"));
  for (std::string line; std::getline(own, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controllers.empty() || controllers == "memory" || controllers == "pids" || controllers == "cpu" ||
        ("," + controllers + ",").find(",net_cls,") != std::string::npos) {
      continue;  // native's CgroupRoot keeps these (net_cls: the steps' classes)
    }
    for (const auto& [point, options] : mounts) {
      if (options.find("," + controllers + ",") == std::string::npos) continue;
      fs::path dir = fs::path(point) / path.substr(1) / parent;
      std::error_code ec;
      for (const auto& instance : fs::directory_iterator(dir, ec)) {
        if (!instance.is_directory()) continue;
        // A dead agent's steps too: runc's delete can race the exit of a container's last
        // process and leave the step's directory (a live agent's are busy, or made again).
        pid_t pid = static_cast<pid_t>(std::atoi(instance.path().filename().c_str()));
        if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
          std::error_code sub_ec;
          for (const auto& step : fs::directory_iterator(instance.path(), sub_ec)) {
            if (step.is_directory()) ::rmdir(step.path().c_str());
          }
        }
        ::rmdir(instance.path().c_str());
      }
    }
  }
}

struct OciShared {
  OciOptions options;
  std::string runtime;
  // What SandboxState and the cgroups need, shared with the native executor's code.
  std::shared_ptr<native::Shared> native = std::make_shared<native::Shared>();
  fs::path instance;  // this executor's directory below state_dir, locked while it lives
  unique_fd lock;
  oci::HostRoot host_root;
  std::string init_path, keeper_path, seccomp_json;
  std::vector<std::string> cap_names;
  Error setup_error;
  std::vector<unique_fd> keepers;  // pidfds of the sandboxes' keepers

  ~OciShared() {
    // Every sandbox was destroyed (its keeper told to tear down): wait for that to finish,
    // generously, so that nothing is left when the executor is gone.
    for (auto& k : keepers) {
      pollfd p{k.get(), POLLIN, 0};
      ::poll(&p, 1, 60000);
      siginfo_t info{};
      ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(k.get()), &info, WEXITED | WNOHANG);
    }
    if (!instance.empty() && !runtime.empty()) oci::remove_leftovers(runtime, (instance / "runc").string(), instance.string());
    remove_empty_runtime_cgroups(options.cgroup_parent);
  }

  // Forgets keepers that are done (a long-running agent starts many sandboxes).
  void prune_keepers() {
    std::erase_if(keepers, [](const unique_fd& k) {
      pollfd p{k.get(), POLLIN, 0};
      return ::poll(&p, 1, 0) == 1;
    });
  }
};

class OciSandbox final : public Sandbox {
 public:
  OciSandbox(std::shared_ptr<SandboxState> state, unique_fd life) : state_(std::move(state)), life_(std::move(life)) {}
  ~OciSandbox() override { destroy(); }
  Status exec(const ExecRequest& request, ExecHandlers handlers) override {
    return state_->exec(request, std::move(handlers));
  }
  void stop(Outcome::Kind reason, Millis grace) override { state_->stop(reason, grace); }
  void destroy() override {
    state_->destroy();
    life_.reset();  // the keeper deletes the container, unmounts and removes the bundle
  }
  Result<unique_fd> connect_tcp(uint16_t port) override { return state_->connect_tcp(port); }

 private:
  std::shared_ptr<SandboxState> state_;
  unique_fd life_;
};

class OciJob final : public Job {
 public:
  OciJob(asio::io_context& io, std::shared_ptr<OciShared> shared, JobSpec spec, unique_fd netns,
         native::ResolvFiles resolv, int userns)
      : io_(io),
        shared_(std::move(shared)),
        spec_(std::move(spec)),
        netns_(std::move(netns)),
        resolv_(std::move(resolv)),
        userns_(userns) {}
  ~OciJob() override { destroy(); }

  Result<std::unique_ptr<Sandbox>> start(const SandboxSpec& spec) override {
    if (destroyed_) return Error{"the job was destroyed", ESRCH};
    if (Status valid = validate(spec); !valid) return valid.error();
    if (spec.network == NetworkMode::host && !shared_->options.allow_host_network) {
      return Error{"sandbox \"" + spec.name +
                       "\": network \"host\" is not allowed by this agent (it would reach the host's network)",
                   EPERM};
    }
    auto state = std::make_shared<SandboxState>(io_, shared_->native);
    unique_fd life;
    if (Outcome failed = create(spec, *state, life); failed.kind == Outcome::Kind::setup_error) {
      state->fail_setup(std::move(failed));
    }
    return std::unique_ptr<Sandbox>(std::make_unique<OciSandbox>(std::move(state), std::move(life)));
  }

  std::string workspace_path() const override { return "/workspace"; }

  void destroy() override {
    destroyed_ = true;
    netns_.reset();
    resolv_ = {};  // running containers keep their binds of the files
  }

 private:
  // Sets the sandbox up and hands it to its keeper; a setup_error outcome when that failed
  // (what was mounted for it is gone again then).
  Outcome create(const SandboxSpec& spec, SandboxState& state, unique_fd& life) {
    OciShared& s = *shared_;
    const OciOptions& o = s.options;
    std::string name = "s" + std::to_string(++g_sandboxes);
    fs::path bundle = s.instance / "bundles" / name;
    std::vector<std::string> mounted;
    native::UpperDir upper;  // removed on failure; else SandboxState's, as native's
    auto failed = [&](const std::string& facility, int err, const std::string& detail = {}) {
      for (auto it = mounted.rbegin(); it != mounted.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
      std::atomic<bool> never{false};
      remove_tree(bundle, never);  // never through a mount that failed to go
      return native::setup_outcome(facility, err, detail);
    };
    // Private to host root and the sandbox's root: runc's init resolves the root and the
    // workspace below it as uid id_base, and nobody else enters it, so no local user reads the
    // workspace or the image root through these mounts, or plants files in the image's 1777
    // directories the step will use (the path is predictable).
    if (::mkdir(bundle.c_str(), 0700) != 0) return failed("bundle directory", errno, bundle.string());
    if (::chown(bundle.c_str(), o.id_base, o.id_base) != 0) return failed("bundle directory", errno, bundle.string());

    auto cgroup = native::StepCgroup::create(s.native->cgroups, name, spec);
    if (!cgroup) return failed("cgroup", cgroup.error().err, cgroup.error().message);

    // The workspace: idmapped, with .git read-only on it, attached where runc binds it from.
    auto workspace = native::idmapped_mount(spec_.workspace, userns_);
    if (!workspace) return failed("workspace idmapped mount", workspace.error().err, workspace.error().message);
    fs::path ws = bundle / "workspace";
    ::mkdir(ws.c_str(), 0755);
    if (native::Failure f = native::attach(workspace->get(), ws.c_str(), "workspace mount")) return failed(f.facility, f.err);
    mounted.push_back(ws.string());
    if (native::Failure f = native::make_git_read_only(ws.string())) return failed(f.facility, f.err);

    oci::BundleConfig c;
    if (!spec.layered.empty()) {
      if (Outcome f = layered_mounts(spec, bundle, ws, c, mounted); f.kind == Outcome::Kind::setup_error) {
        for (auto it = mounted.rbegin(); it != mounted.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
        std::atomic<bool> never{false};
        remove_tree(bundle, never);
        return f;
      }
    }
    c.hostname = native::hostname_for(spec.name);
    if (spec.layers.empty()) {
      c.root = s.host_root.path;
      c.system_dirs = s.host_root.system_dirs;
      c.resolv_conf = resolv_.file_for(spec.network).string();
      // runc resolves a bind's destination, links included, inside the root: a host's
      // /etc/resolv.conf that is a link (systemd-resolved's) would send the bind elsewhere, or
      // fail on the read-only root. native mounts over the link itself.
      struct stat st{};
      if (!c.resolv_conf.empty() && (::lstat("/etc/resolv.conf", &st) != 0 || !S_ISREG(st.st_mode))) {
        return failed("resolv.conf", ENOTSUP,
                      "the host's /etc/resolv.conf is not a regular file (a symlink?), so the oci executor cannot "
                      "bind the job's resolver over it for an image = \"host\" step; use the native executor, "
                      "or an image");
      }
    } else {
      // The writable layer is native's (upper_dirs.h): on disk, of --max-image-write's size.
      if (!s.native->uppers) return failed("image root", s.native->uppers_error.err, s.native->uppers_error.message);
      auto made = s.native->uppers->create(name, o.id_base);
      if (!made) return failed("image root", made.error().err, made.error().message);
      upper = std::move(*made);
      auto image = oci::make_image_root(spec.layers, upper.upper(), upper.work(), o.id_base, c.hostname,
                                        native::resolv_conf_for(spec.network, spec_.resolv_conf));
      if (!image) return failed("image root", image.error().err, image.error().message);
      fs::path root = bundle / "rootfs";
      ::mkdir(root.c_str(), 0755);
      if (native::Failure f = native::attach(image->get(), root.c_str(), "image root mount")) return failed(f.facility, f.err);
      mounted.push_back(root.string());
      c.root = root.string();
      c.root_readonly = false;
    }
    c.workspace = ws.string();
    c.init_path = s.init_path;
    c.caps_mask = s.native->caps.mask();
    c.cap_names = s.cap_names;
    c.id_base = o.id_base;
    c.id_count = o.id_count;
    c.network = spec.network;
    c.netns_path = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(netns_.get());
    c.net_class = spec.net_class;
    c.tmp_bytes = spec.tmp_bytes;
    c.shm_bytes = spec.shm_bytes;
    c.memory_bytes = spec.memory_bytes;
    c.pids = spec.pids;
    c.cpus = spec.cpus;
    // Relative: below the runtime's own cgroup, which is the agent's, so it is the very
    // cgroup made above, whose OOM events SandboxState reads.
    c.cgroups_path = o.cgroup_parent + "/" + s.native->cgroups.instance_name() + "/" + name;
    c.seccomp_json = s.seccomp_json;
    {
      std::ofstream out(bundle / "config.json");
      out << oci::make_config_json(c);
      if (!out.flush()) return failed("bundle config.json", EIO, (bundle / "config.json").string());
    }

    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) return failed("control channel", errno);
    unique_fd ours(sp[0]), theirs(sp[1]);
    for (int fd : sp) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kChannelBuffer, sizeof kChannelBuffer);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kChannelBuffer, sizeof kChannelBuffer);
    }
    oci::KeeperConfig k{s.keeper_path, s.runtime, (s.instance / "runc").string(), bundle.string(), name, mounted,
                        theirs.get()};
    auto keeper = oci::spawn_keeper(k);
    if (!keeper) return failed("keeper", keeper.error().err, keeper.error().message);
    theirs.reset();
    s.prune_keepers();
    s.keepers.emplace_back(::fcntl(keeper->pidfd.get(), F_DUPFD_CLOEXEC, 3));
    life = std::move(keeper->life);
    // SandboxState removes the upper once init is gone (the overlay still on it goes with the
    // keeper's unmount: a LoopFs stays until then) and names the limit when the step filled it.
    state.begin(std::move(*cgroup), native::Spawned{keeper->pid, std::move(keeper->pidfd), std::move(ours)},
                std::move(upper));
    return Outcome{};
  }

  // The layered directories: their idmapped layers attached under the bundle (as the workspace
  // is), and an overlay mount of each in config.json, which runc's init mounts inside the
  // container's user namespace with `userxattr` (native mounts the same in its pid 1).
  Outcome layered_mounts(const SandboxSpec& spec, const fs::path& bundle, const fs::path& ws, oci::BundleConfig& c,
                         std::vector<std::string>& mounted) {
    auto layered = native::prepare_layered(spec.layered, userns_, "");
    if (!layered) return native::setup_outcome("layered directory", layered.error().err, layered.error().message);
    for (size_t i = 0; i < layered->size(); ++i) {
      const native::LayeredMount& m = (*layered)[i];
      fs::path dir = bundle / ("layered-" + std::to_string(i));
      // runc's init resolves these as the container's root (id_base), as the bundle.
      uid_t owner = shared_->options.id_base;
      if (::mkdir(dir.c_str(), 0700) != 0 || ::chown(dir.c_str(), owner, owner) != 0) {
        return native::setup_outcome("layered directory", errno, dir.string());
      }
      std::string lowerdir;
      auto attach_at = [&](int fd, const fs::path& at, bool read_only) -> native::Failure {
        ::mkdir(at.c_str(), 0700);
        if (native::Failure f = native::attach(fd, at.c_str(), "layered directory mount")) return f;
        mounted.push_back(at.string());
        return read_only ? native::set_attr(at.c_str(), MOUNT_ATTR_RDONLY, false, "layered directory mount")
                         : native::ok();
      };
      if (native::Failure f = attach_at(m.layer.get(), dir / "L", false)) return native::setup_outcome(f.facility, f.err);
      for (size_t k = 0; k < m.lowers.size(); ++k) {
        fs::path at = dir / std::to_string(k);
        if (native::Failure f = attach_at(m.lowers[k].get(), at, true)) return native::setup_outcome(f.facility, f.err);
        lowerdir += (lowerdir.empty() ? "" : ":") + at.string();
      }
      if (lowerdir.empty()) {  // overlayfs needs one lower: an empty one
        fs::path empty = dir / "E";
        if (::mkdir(empty.c_str(), 0755) != 0 || ::chown(empty.c_str(), owner, owner) != 0) {
          return native::setup_outcome("layered directory", errno, empty.string());
        }
        lowerdir = empty.string();
      }
      // runc hands the options it does not know to mount(2) as one page of data.
      if (lowerdir.size() > 3500) {
        return native::setup_outcome("layered directory", E2BIG,
                                     "the oci executor cannot pass " + std::to_string(m.lowers.size()) +
                                         " lower layers to runc in one mount (" + std::to_string(lowerdir.size()) +
                                         " bytes of lowerdir, a page at most); use the native executor");
      }
      c.layered_mounts.push_back({spec.layered[i].target, "overlay", "overlay",
                                  {"nosuid", "nodev", "lowerdir=" + lowerdir, "upperdir=" + (dir / "L/upper").string(),
                                   "workdir=" + (dir / "L/work").string(), "userxattr"}});
    }
    if (native::layers_workspace(spec.layered)) {
      c.layered_workspace = true;
      // The checkout's .git, read-only on the idmapped workspace (made so above), over the overlay.
      unique_fd ws_fd(::open(ws.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      for (const std::string& p : native::git_metadata_paths(ws_fd.get())) {
        c.layered_mounts.push_back({"/workspace/" + p, "bind", (ws / p).string(), {"rbind", "nosuid", "nodev"}});
      }
    }
    return Outcome{};
  }

  asio::io_context& io_;
  std::shared_ptr<OciShared> shared_;
  JobSpec spec_;
  unique_fd netns_;
  native::ResolvFiles resolv_;
  int userns_;  // owned by native::Shared
  bool destroyed_ = false;
};

class OciExecutor final : public Executor {
 public:
  OciExecutor(asio::io_context& io, std::shared_ptr<OciShared> shared) : io_(io), shared_(std::move(shared)) {}

  std::string_view name() const override { return "oci"; }
  bool isolated() const override { return true; }

  Result<std::unique_ptr<Job>> prepare(const JobSpec& spec) override {
    if (!shared_->setup_error.message.empty()) return shared_->setup_error;
    struct stat st{};
    if (::stat(spec.workspace.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error{"job " + spec.id + ": workspace " + spec.workspace.string() + " is not a directory", ENOTDIR};
    }
    native::Shared& n = *shared_->native;
    int userns;
    {
      std::lock_guard lock(n.mu);
      if (!n.idmap_userns) {
        auto ns = native::make_idmap_userns(native::IdRange{n.options.id_base, n.options.id_count});
        if (!ns) return ns.error();
        n.idmap_userns = std::move(*ns);
      }
      userns = n.idmap_userns.get();
    }
    // A workspace on a filesystem that cannot be idmapped fails here, once, not per step.
    if (auto probe = native::idmapped_mount(spec.workspace, userns); !probe) return probe.error();
    // The agent's job network when it made one; else loopback only, of our own.
    auto netns = spec.netns_fd >= 0 ? native::adopt_job_netns(spec.netns_fd) : native::make_job_netns();
    if (!netns) return netns.error();
    // In the instance's directory: a dead agent's goes with it (remove_dead_instances).
    auto resolv = native::ResolvFiles::write(shared_->instance / "resolv", n.cgroups.instance_name(), spec.resolv_conf);
    if (!resolv) return resolv.error();
    return std::unique_ptr<Job>(
        std::make_unique<OciJob>(io_, shared_, spec, std::move(*netns), std::move(*resolv), userns));
  }

 private:
  asio::io_context& io_;
  std::shared_ptr<OciShared> shared_;
};

// Every capability there is: init holds them all in its user namespace, as native's init
// does, and drops all but the commands' set in each command (CAP_SETPCAP is what lets it).
std::vector<std::string> all_cap_names() {
  std::vector<std::string> names;
  for (cap_value_t v = 0; v < static_cast<cap_value_t>(cap_max_bits()); ++v) {
    char* n = cap_to_name(v);
    std::string name = n ? n : "";
    cap_free(n);
    if (name.rfind("cap_", 0) != 0) continue;  // a number: unknown to libcap, and to runc
    for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    names.push_back(name);
  }
  return names;
}

// Removes what executors of dead agents left in `state_dir`: a directory whose lock nobody
// holds any more.
void remove_dead_instances(const std::string& runtime, const fs::path& state_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_dir, ec)) {
    fs::path lock_path = entry.path() / "lock";
    unique_fd lock(::open(lock_path.c_str(), O_RDWR | O_CLOEXEC));
    if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) continue;
    oci::remove_leftovers(runtime, (entry.path() / "runc").string(), entry.path().string());
  }
}

}  // namespace

Status oci_available(const std::string& runtime) {
  if (Status native = native_available(); !native) {
    Error e = native.error();
    e.message = "the oci executor: " + e.message;
    return e;
  }
  if (auto found = oci::find_runtime(runtime); !found) return found.error();
  // A rule the runtime could not be told must stop the executor here, not weaken each step.
  if (auto profile = oci::seccomp_profile_json(); !profile) return profile.error();
  return {};
}

std::unique_ptr<Executor> make_oci_executor(asio::io_context& io, OciOptions options) {
  auto shared = std::make_shared<OciShared>();
  shared->options = std::move(options);
  const OciOptions& o = shared->options;
  native::Shared& n = *shared->native;
  n.options.id_base = o.id_base;
  n.options.id_count = o.id_count;
  n.options.cgroup_parent = o.cgroup_parent;
  n.cgroups = native::CgroupRoot::discover(o.cgroup_parent);
  n.cgroups.remove_stale();
  shared->cap_names = all_cap_names();
  if (auto profile = oci::seccomp_profile_json()) {
    shared->seccomp_json = std::move(*profile);
  } else {
    shared->setup_error = profile.error();
    return std::make_unique<OciExecutor>(io, std::move(shared));
  }

  auto runtime = oci::find_runtime(o.runtime);
  if (!runtime) {
    shared->setup_error = runtime.error();
    return std::make_unique<OciExecutor>(io, std::move(shared));
  }
  shared->runtime = *runtime;
  std::error_code ec;
  fs::create_directories(o.state_dir, ec);
  ::chmod(o.state_dir.c_str(), 0711);
  remove_dead_instances(shared->runtime, o.state_dir);
  remove_empty_runtime_cgroups(o.cgroup_parent);
  // After the dead instances' overlays were unmounted above: a dead agent's uppers go here.
  // Only image steps need them: "host" steps still run when this fails.
  if (auto uppers = native::UpperDirs::open(o.uppers_dir.empty() ? o.state_dir / "uppers" : o.uppers_dir,
                                            o.max_image_write)) {
    n.uppers = std::move(*uppers);
  } else {
    n.uppers_error = uppers.error();
  }
  fs::path instance = o.state_dir / (n.cgroups.instance_name() + "-" + std::to_string(++g_executors));
  fs::create_directories(instance / "bundles", ec);
  ::chmod(instance.c_str(), 0711);
  ::chmod((instance / "bundles").c_str(), 0711);
  shared->lock.reset(::open((instance / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!shared->lock || ::flock(shared->lock.get(), LOCK_EX | LOCK_NB) != 0) {
    shared->setup_error = Error{"oci executor: cannot lock " + (instance / "lock").string() + ": " + std::strerror(errno), errno};
    return std::make_unique<OciExecutor>(io, std::move(shared));
  }
  shared->instance = instance;
  shared->init_path = (instance / "boxcar-init").string();
  shared->keeper_path = (instance / "boxcar-keeper").string();
  if (Status init = oci::write_init_file(shared->init_path); !init) shared->setup_error = init.error();
  if (Status keeper = oci::write_keeper_program(shared->keeper_path); !keeper) shared->setup_error = keeper.error();
  auto root = oci::prepare_host_root(o.state_dir / "host-root", oci::kInitInside);
  if (root) shared->host_root = std::move(*root);
  else shared->setup_error = root.error();
  return std::make_unique<OciExecutor>(io, std::move(shared));
}

}  // namespace boxcar::executors
