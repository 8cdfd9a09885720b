// Cgroups: one step's memory, pids and cpu limits, its OOM counter and its net_cls class id.
// cgroup v2 where the host has the controller there, v1 otherwise (hybrid hosts: v1 controllers
// beside an empty v2 tree); net_cls is v1 only (net_cls.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/executor.h"
#include "executors/native/exec_tree.h"
#include "executors/native/facility.h"
#include "executors/spec.h"

namespace boxcar::executors::native {

// Where the steps' cgroups go: <mount>/<agent's cgroup>/<parent>/<agent instance>/ per
// controller. Making one removes what dead agents left below <parent>.
class CgroupRoot {
 public:
  static CgroupRoot discover(const std::string& parent);
  // Kills the processes of dead agents' step cgroups and removes those cgroups.
  void remove_stale() const;
  // Removes this agent instance's (empty) directories, when the executor goes away.
  void remove_own() const;
  struct Controller {
    std::string name;   // memory, pids, cpu, net_cls
    std::string dir;    // the agent instance's directory; empty when unavailable
    bool v2 = false;
  };
  const std::vector<Controller>& controllers() const { return controllers_; }
  std::string instance_name() const { return instance_; }
  // Whether the agent instance `name` ("<pid>-<start time>") is still running.
  static bool instance_alive(const std::string& name);
  // Why the net_cls controller is unavailable ("" when it is available).
  const std::string& net_cls_error() const { return net_cls_error_; }
  // The agent instance's cgroup-v2 directory for the sandboxes' tracking cgroups, which hold
  // the commands' own trees (exec_tree.h); "" without a v2 hierarchy.
  const std::string& tree_root() const { return tree_root_; }
  // Why commands' trees fall back to process groups on this host ("" when they are cgroups):
  // checked once, when the root is discovered.
  const std::string& tree_error() const { return tree_error_; }

 private:
  std::vector<Controller> controllers_;
  std::vector<std::string> parents_;  // <mount>/<agent's cgroup>/<parent> per hierarchy
  std::string instance_;
  std::string net_cls_error_;
  std::string tree_root_;
  std::string tree_error_;
};

// One step's cgroups: created with the limits before any of its processes exist.
class StepCgroup {
 public:
  StepCgroup() = default;
  StepCgroup(StepCgroup&&) = default;
  StepCgroup& operator=(StepCgroup&&) = default;
  ~StepCgroup();

  // Creates the cgroups needed for the spec's limits (none when it has none) and, when
  // spec.net_class is not 0, its net_cls cgroup with that class id: an Error naming net_cls when
  // that cannot be had (a step must never run outside its egress policy).
  // With `tree_owner`, where the root supports trees (tree_error() empty), also the sandbox's
  // v2 tracking cgroup (no controllers of its own where the host's v2 tree has none), its
  // cgroup.procs delegated to `tree_owner`, the sandbox's root on the host, so that init may
  // start commands in trees below. Without (the oci executor): no trees, commands' trees are
  // their process groups.
  static Result<StepCgroup> create(const CgroupRoot& root, const std::string& name,
                                   const SandboxSpec& spec, std::optional<uid_t> tree_owner = std::nullopt);
  // A command's own tree below the tracking cgroup; an Error when the sandbox has none.
  Result<ExecTree> make_exec_tree(const std::string& name) const;
  bool has_trees() const { return !tree_dir_.empty(); }
  // Moves `pid` into every cgroup of the step.
  Status add(pid_t pid) const;
  // Gives the step's net_cls cgroup another class id: the kernel retags every process in it and
  // their sockets. For a sandbox set up ahead, when a step takes it (before anything runs).
  Status set_net_class(uint32_t net_class) const;
  // The cgroup.procs file of each of the step's cgroups.
  std::vector<std::string> procs_files() const;
  // An eventfd that becomes readable when the memory cgroup hits OOM (v1), or an empty fd.
  unique_fd take_oom_eventfd() { return std::move(oom_eventfd_); }
  // How many processes the OOM killer killed in the step so far.
  uint64_t oom_kills() const;
  // cgroup.freeze of the v2 tracking cgroup (init and every command's tree are below it),
  // waiting until cgroup.events says the whole subtree is (un)frozen. An Error when the step
  // has no tracking cgroup (cgroup v2 not writable here: tree_error()), saying so.
  Status freeze(bool frozen) const;
  // cpu from the tracking cgroup's cpu.stat (present without controllers), memory and pids from
  // the step's memory and pids cgroups when it has them (a limit made them), else the processes
  // counted in the tracking tree; oom_kills() as above.
  Result<SandboxUsage> usage() const;
  // Removes the (empty) cgroups; a no-op the second time.
  void remove();

 private:
  static Result<StepCgroup> create_limited(const CgroupRoot& root, const std::string& name,
                                           const SandboxSpec& spec);

  std::vector<std::string> dirs_;
  std::string memory_dir_;
  std::string pids_dir_;  // the pids controller's, when the spec limits pids
  std::string net_cls_dir_;
  std::string tree_dir_;  // the v2 tracking cgroup; maybe also in dirs_ (a v2 controller's)
  uid_t tree_owner_ = 0;
  bool memory_v2_ = false;
  unique_fd oom_eventfd_;
  unique_fd oom_control_;
};

// Child side, once in its cgroups: a cgroup namespace rooted there, so the step sees "/".
Failure enter_cgroup_namespace();

}  // namespace boxcar::executors::native
